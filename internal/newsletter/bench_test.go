package newsletter_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"steward/internal/clock"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/newsletter"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// seedSubscribers writes n confirmed subscribers of list who consented to
// purpose, straight into the tables (subjects and their purpose state
// belong to package subject; going through its API would make seeding
// 100,000 people take longer than the thing measured).
// The addresses go in as the plaintext of an older release and are sealed
// by the subject store's Reseal, as a migrated database's are.
func seedSubscribers(tb testing.TB, e *env, db *store.DB, list, purpose string, n int) {
	tb.Helper()
	ctx := context.Background()
	now := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	const chunk = 200
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		var subj, state, subs []string
		var a1, a2, a3 []any
		for i := start; i < end; i++ {
			id := fmt.Sprintf("s_bench%013d", i)
			k := len(a1)
			subj = append(subj, fmt.Sprintf("($%d, 'email', $%d, 'newsletter', 1, $%d)", k+1, k+2, k+3))
			a1 = append(a1, id, fmt.Sprintf("reader%d@example.org", i), now)
			k = len(a2)
			state = append(state, fmt.Sprintf("($%d, $%d, TRUE, $%d, $%d)", k+1, k+2, k+3, k+4))
			a2 = append(a2, id, purpose, now, now)
			k = len(a3)
			subs = append(subs, fmt.Sprintf("($%d, $%d, $%d, 'confirmed', 'form', 1, $%d, $%d, $%d)", k+1, k+2, k+3, k+4, k+5, k+6))
			a3 = append(a3, "ns_bench"+strconv.Itoa(i), list, id, now, now, now)
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO subjects (id, kind, email, source, policy_version, created_at) VALUES ` + strings.Join(subj, ","), a1},
			{`INSERT INTO subject_purpose_state (subject_id, purpose, consent, consent_at, updated_at) VALUES ` + strings.Join(state, ","), a2},
			{`INSERT INTO newsletter_subscriptions (id, list_id, subject_id, status, source, policy_version, created_at, confirmed_at, updated_at) VALUES ` + strings.Join(subs, ","), a3},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
				tx.Rollback()
				tb.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	if _, err := e.subjects.Reseal(ctx, e.door); err != nil {
		tb.Fatal(err)
	}
}

// campaignEnv wires the service with two job runners: one that runs only
// campaign batches (measured) and one that owns mail delivery (never run
// here), so the figure is the time to queue, not to deliver over SMTP.
func campaignEnv(tb testing.TB, db *store.DB, batchSize int) (*env, *jobs.Runner) {
	tb.Helper()
	e := newEnv(tb, db, "mixi.yaml", false, nil)
	// Replace the outbox with one that enqueues delivery jobs, as a
	// deployment with SMTP does, on a runner nobody runs.
	delivery := jobs.NewRunner(db, clock.Real{}, nil)
	ob, err := mail.NewOutbox(db, clock.Real{}, delivery, e.door, mail.Config{SMTPURL: "smtp://127.0.0.1:1?tls=none", From: "Steward <steward@example.org>"}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	campaigns := jobs.NewRunner(db, clock.Real{}, nil)
	cp := policy.Published{Policy: e.policy, Version: policy.Version{Number: 1}}
	d := newsletter.Deps{DB: db, Clock: clock.Real{}, Policy: cp, Guards: policy.NewGuards(db, cp, e.audit, nil), Door: e.door, Subjects: e.subjects, Ledger: e.ledger,
		Links: e.links, Outbox: ob, Jobs: campaigns, Audit: e.audit, BaseURL: "https://steward.example.org", BatchSize: batchSize}
	svc, err := newsletter.New(d)
	if err != nil {
		tb.Fatal(err)
	}
	e.svc = svc
	return e, campaigns
}

func runCampaign(tb testing.TB, e *env, r *jobs.Runner, subject string) (newsletter.Campaign, time.Duration) {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	c, err := e.svc.CreateCampaign(ctx, "s_staff", "updates", newsletter.CampaignInput{Subject: subject, Text: "Hello, readers."})
	if err != nil {
		tb.Fatal(err)
	}
	for {
		n, err := r.RunDue(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	took := time.Since(start)
	got, err := e.svc.Campaign(ctx, c.ID)
	if err != nil {
		tb.Fatal(err)
	}
	return got, took
}

// TestCampaignQueuesEveryone checks batching end to end on 250
// subscribers in batches of 100: every one is queued exactly once, across
// batches, with one delivery job per batch, and the guard still decides
// per recipient.
func TestCampaignQueuesEveryone(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		const n = 250
		e, r := campaignEnv(t, db, 100)
		seedSubscribers(t, e, db, "updates", "marketing", n)
		// One subscriber objected, one is suppressed: both skipped.
		if _, err := db.Exec(`UPDATE subject_purpose_state SET objection = TRUE WHERE subject_id = 's_bench0000000000007'`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO subject_state (subject_id, marketing_suppressed, updated_at) VALUES ('s_bench0000000000207', TRUE, $1)`, time.Now()); err != nil {
			t.Fatal(err)
		}
		c, _ := runCampaign(t, e, r, "News")
		if c.Status != "sent" || c.Queued != n-2 || c.Skipped != 2 {
			t.Fatalf("campaign: %+v, want %d queued and 2 skipped", c, n-2)
		}
		var msgs, sends int
		db.QueryRow(`SELECT COUNT(*) FROM mail_outbox WHERE campaign_id = $1`, c.ID).Scan(&msgs)
		db.QueryRow(`SELECT COUNT(DISTINCT subject_id) FROM newsletter_sends WHERE campaign_id = $1`, c.ID).Scan(&sends)
		if msgs != n-2 || sends != n {
			t.Errorf("outbox messages %d, recipients recorded %d, want %d and %d", msgs, sends, n-2, n)
		}
		var deliveries int
		db.QueryRow(`SELECT COUNT(*) FROM jobs WHERE kind = $1`, mail.JobKind).Scan(&deliveries)
		if deliveries != 3 {
			t.Errorf("%d delivery jobs, want 3 (one per batch)", deliveries)
		}
	})
}

// BenchmarkCampaign100k queues one campaign to 100,000 confirmed
// subscribers, loading each batch's states in one query and checking the
// guard per recipient, through the outbox (multi-row inserts, one delivery
// job per batch). Run:
//
//	go test -run '^$' -bench Campaign100k -benchtime 1x ./internal/newsletter/
//
// STEWARD_BENCH_SUBSCRIBERS changes the count; STEWARD_BENCH_ENGINE=postgres
// runs it on PostgreSQL.
func BenchmarkCampaign100k(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("STEWARD_BENCH_SUBSCRIBERS")); err == nil && v > 0 {
		n = v
	}
	var db *store.DB
	if os.Getenv("STEWARD_BENCH_ENGINE") == "postgres" {
		db = storetest.Postgres(b, mods())
	} else {
		db = storetest.SQLite(b, mods())
	}
	if v := os.Getenv("STEWARD_BENCH_CACHE_KB"); v != "" && db.Engine == store.SQLite {
		// Page cache experiment: one connection, so the pragma holds.
		db.SetMaxOpenConns(1)
		if _, err := db.Exec(`PRAGMA cache_size = -` + v); err != nil {
			b.Fatal(err)
		}
	}
	e, r := campaignEnv(b, db, 0)
	seedSubscribers(b, e, db, "updates", "marketing", n)
	b.ResetTimer()
	for i := range b.N {
		cpu := cpuTime()
		c, took := runCampaign(b, e, r, fmt.Sprintf("News %d", i))
		cpu = cpuTime() - cpu
		if c.Queued != n {
			b.Fatalf("queued %d of %d", c.Queued, n)
		}
		b.ReportMetric(took.Seconds(), "s/campaign")
		b.ReportMetric(float64(took.Microseconds())/float64(n), "µs/recipient")
		b.ReportMetric(cpu.Seconds(), "cpu-s/campaign")
	}
}
