package mail_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"steward/internal/clock"
	"steward/internal/door/doortest"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

func campaignMsg(i int, campaign string) mail.Message {
	to := fmt.Sprintf("reader%d@example.org", i)
	return mail.Message{SubjectID: fmt.Sprintf("sub_%d", i), To: to, Subject: "News", Text: "Hello " + to, Kind: "campaign",
		Purpose: "marketing", CampaignID: campaign, ListID: "updates.site.example",
		Unsubscribe: &mail.Unsubscribe{URL: fmt.Sprintf("https://site.example/newsletters/unsubscribe?token=t%d", i)}}
}

func countRows(t *testing.T, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEnqueueBatch: a batch is stored in multi-row inserts (three
// statements for 250 messages, one of them prepared and run twice) with
// ONE delivery job, which sends every message once over a shared SMTP
// session; an invalid message refuses the whole batch.
func TestEnqueueBatch(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		const n = 250
		ms := make([]mail.Message, n)
		for i := range ms {
			ms[i] = campaignMsg(i, "c1")
		}
		seed(t, db, ms...)
		var ids []string
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			var err error
			ids, err = e.outbox.EnqueueBatch(ctx, tx, ms)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(ids) != n {
			t.Fatalf("EnqueueBatch returned %d ids, want %d", len(ids), n)
		}
		seen := map[string]bool{}
		for i, id := range ids {
			s := e.get(t, id)
			if seen[id] || s.To != ms[i].To || s.Status != mail.StatusQueued || s.CampaignID != "c1" || s.ListID != "<updates.site.example>" ||
				s.Unsubscribe == nil || s.Unsubscribe.URL != ms[i].Unsubscribe.URL || !s.CreatedAt.Equal(t0) || s.MessageID == "" {
				t.Fatalf("message %d stored as %+v", i, s)
			}
			seen[id] = true
		}
		if got := countRows(t, db, `SELECT COUNT(*) FROM jobs WHERE kind = $1 AND priority = -10`, mail.JobKind); got != 1 {
			t.Fatalf("%d delivery jobs at campaign priority, want 1 for the batch", got)
		}
		e.runDue(t, 1)
		msgs := srv.Messages()
		if len(msgs) != n {
			t.Fatalf("server got %d messages, want %d", len(msgs), n)
		}
		got := map[string]int{}
		for _, m := range msgs {
			got[strings.Join(m.To, ",")]++
			if m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || m.Header.Get("Precedence") != "bulk" {
				t.Fatalf("campaign headers missing: %v", m.Header)
			}
		}
		for _, m := range ms {
			if got[m.To] != 1 {
				t.Errorf("%s received %d copies, want 1", m.To, got[m.To])
			}
		}
		if sent := countRows(t, db, `SELECT COUNT(*) FROM mail_outbox WHERE status = 'sent' AND attempts = 1`); sent != n {
			t.Errorf("%d messages recorded sent after one attempt, want %d", sent, n)
		}
		if s := srv.Sessions(); s > 2 {
			t.Errorf("the batch used %d SMTP sessions, want it to share one", s)
		}

		// One invalid message refuses the batch and stores nothing.
		bad := seed(t, db, campaignMsg(900, "c2"), campaignMsg(901, "c2"), campaignMsg(902, "c2"))
		bad[2].To = "x@example.org\r\nBcc: eve@example.org"
		_, err := e.outbox.EnqueueBatch(ctx, db, bad)
		if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != "to" || !strings.Contains(err.Error(), "3 of 3") {
			t.Fatalf("EnqueueBatch with a bad address: %v (field %q), want invalid on to naming message 3 of 3", err, fault.FieldOf(err))
		}
		if got := countRows(t, db, `SELECT COUNT(*) FROM mail_outbox WHERE campaign_id = 'c2'`); got != 0 {
			t.Errorf("a refused batch stored %d messages", got)
		}
		// Values shared by a batch are checked once, but a later message
		// that differs is checked again.
		for _, c := range []struct {
			field string
			edit  func(*mail.Message)
		}{
			{"subject", func(m *mail.Message) { m.Subject = "News\r\nBcc: eve@example.org" }},
			{"kind", func(m *mail.Message) { m.Kind = "Bad Kind" }},
			{"campaign_id", func(m *mail.Message) { m.CampaignID = "a b" }},
			{"list_id", func(m *mail.Message) { m.ListID = "not a list id" }},
		} {
			ms := seed(t, db, campaignMsg(910, "c3"), campaignMsg(911, "c3"))
			c.edit(&ms[1])
			if _, err := e.outbox.EnqueueBatch(ctx, db, ms); !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != c.field {
				t.Errorf("second message with a bad %s: %v (field %q), want invalid", c.field, err, fault.FieldOf(err))
			}
		}
		if ids, err := e.outbox.EnqueueBatch(ctx, db, nil); err != nil || len(ids) != 0 {
			t.Errorf("EnqueueBatch(nil) = %v, %v", ids, err)
		}
	})
}

func TestEnqueueBatchHeldWithoutSMTP(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, mail.Config{}, quiet())
		ids, err := e.outbox.EnqueueBatch(context.Background(), db, seed(t, db, campaignMsg(1, "c"), basic("t@example.org")))
		if err != nil || len(ids) != 2 {
			t.Fatal(ids, err)
		}
		for _, id := range ids {
			if s := e.get(t, id); s.Status != mail.StatusHeld {
				t.Errorf("%s: %s, want held", id, s.Status)
			}
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM jobs`); n != 0 {
			t.Errorf("held batch enqueued %d jobs", n)
		}
	})
}

// One unusable message among many: EnqueueUsable queues the others as one
// batch and reports the refused one with an empty id; EnqueueBatch refuses
// the whole call and stores nothing.
func TestEnqueueUsableSkipsTheUnusable(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		ms := seed(t, db, campaignMsg(1, "c"), campaignMsg(2, "c"), campaignMsg(3, "c"))
		ms[1].To = "not an address"
		if _, err := e.outbox.EnqueueBatch(ctx, db, ms); err == nil {
			t.Fatal("EnqueueBatch took an unusable address")
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM mail_outbox`); n != 0 {
			t.Fatalf("a refused batch stored %d messages", n)
		}
		ids, err := e.outbox.EnqueueUsable(ctx, db, ms)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 3 || ids[0] == "" || ids[1] != "" || ids[2] == "" {
			t.Fatalf("ids = %q, want the second empty", ids)
		}
		for _, i := range []int{0, 2} {
			if s := e.get(t, ids[i]); s.To != ms[i].To || s.Status != mail.StatusQueued {
				t.Errorf("message %d stored as %+v", i, s)
			}
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM mail_outbox`); n != 2 {
			t.Errorf("%d messages stored, want 2", n)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM jobs`); n != 1 {
			t.Errorf("%d delivery jobs, want one for the batch", n)
		}
	})
}

// TestBatchRetryNeverSendsTwice: a temporary refusal of one recipient
// stops the run; the retry sends the rest and nothing a second time. A
// permanent refusal fails that message only.
func TestBatchRetryNeverSendsTwice(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		ms := make([]mail.Message, 6)
		for i := range ms {
			ms[i] = campaignMsg(i, "c1")
		}
		seed(t, db, ms...)
		srv.Reject(ms[2].To, 451, "mailbox busy")
		srv.Reject(ms[4].To, 550, "no such user")
		ids, err := e.outbox.EnqueueBatch(ctx, db, ms)
		if err != nil {
			t.Fatal(err)
		}
		e.runDue(t, 1)
		busy := e.get(t, ids[2])
		if busy.Status != mail.StatusQueued || !strings.Contains(busy.LastError, "451") || strings.Contains(busy.LastError, "reader2@") {
			t.Fatalf("the refused message: %+v; want queued with the code, without the address", busy)
		}
		// Delivery goes in id order and stops at the temporary failure.
		order := append([]string(nil), ids...)
		sort.Strings(order)
		before := len(srv.Messages())
		for _, id := range order {
			if id == ids[2] {
				break
			}
			if s := e.get(t, id); s.Status != mail.StatusSent && s.Status != mail.StatusFailed {
				t.Errorf("%s before the failure: %s", id, s.Status)
			}
		}
		e.runDue(t, 0) // backing off
		srv.Reject(ms[2].To, 0, "")
		e.clk.Advance(jobs.DefaultBackoffBase)
		e.runDue(t, 1)
		got := map[string]int{}
		for _, m := range srv.Messages() {
			got[m.To[0]]++
		}
		for i, m := range ms {
			want := 1
			if i == 4 {
				want = 0
			}
			if got[m.To] != want {
				t.Errorf("%s received %d copies, want %d", m.To, got[m.To], want)
			}
		}
		if len(srv.Messages()) <= before && before < 5 {
			t.Errorf("the retry sent nothing new")
		}
		if s := e.get(t, ids[4]); s.Status != mail.StatusFailed || !strings.Contains(s.LastError, "550") {
			t.Errorf("permanently refused message: %+v, want failed with 550", s)
		}
		if s := e.get(t, ids[2]); s.Status != mail.StatusSent || s.Attempts != 2 {
			t.Errorf("retried message: %s after %d attempts, want sent after 2", s.Status, s.Attempts)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM jobs`); n != 0 {
			t.Errorf("%d jobs left after the batch was delivered", n)
		}
	})
}

// TestBatchGivesUpOnLastAttempt: when the server stays down through the
// job's last attempt, every message of the batch ends failed, none stays
// queued without a job.
func TestBatchGivesUpOnLastAttempt(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		srv.Stop()
		ids, err := e.outbox.EnqueueBatch(context.Background(), db, seed(t, db, campaignMsg(1, "c"), campaignMsg(2, "c"), campaignMsg(3, "c")))
		if err != nil {
			t.Fatal(err)
		}
		for range 12 {
			e.runDue(t, 1)
			e.clk.Advance(jobs.DefaultBackoffMax)
		}
		e.runDue(t, 0)
		for _, id := range ids {
			if s := e.get(t, id); s.Status != mail.StatusFailed || !strings.Contains(s.LastError, "gave up after 12 attempts") {
				t.Errorf("%s: %s (%s), want failed after giving up", id, s.Status, s.LastError)
			}
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM jobs`); n != 0 {
			t.Errorf("%d jobs left", n)
		}
	})
}

// TestBeforeSend: a check registered for a kind stops a message queued
// earlier when the answer changed meanwhile; the message is marked
// suppressed in the transaction the check ran in, nothing reaches the
// server, and mail of other kinds is not checked. A failing check leaves
// the message for a later attempt.
func TestBeforeSend(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE check_log (outbox_id TEXT PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		var mu sync.Mutex
		objected := map[string]bool{}
		failing := false
		checked := map[string]int{}
		e.outbox.BeforeSend("campaign", func(ctx context.Context, q store.Q, m mail.Stored) (bool, string, error) {
			mu.Lock()
			defer mu.Unlock()
			checked[m.Kind]++
			if failing {
				return false, "", errors.New("state store unavailable")
			}
			if !objected[m.SubjectID] {
				return false, "", nil
			}
			_, err := q.ExecContext(ctx, `INSERT INTO check_log (outbox_id) VALUES ($1)`, m.ID)
			return true, "objection to direct-marketing", err
		})
		batch, err := e.outbox.EnqueueBatch(ctx, db, seed(t, db, campaignMsg(1, "c"), campaignMsg(2, "c"), campaignMsg(3, "c")))
		if err != nil {
			t.Fatal(err)
		}
		single := e.enqueue(t, campaignMsg(4, "c"))
		notice := e.enqueue(t, basic("notice@example.org"))
		// Reader 2 and reader 4 object after their mail was queued.
		mu.Lock()
		objected["sub_2"], objected["sub_4"] = true, true
		mu.Unlock()
		e.runDue(t, 3)
		for _, m := range srv.Messages() {
			if m.To[0] == "reader2@example.org" || m.To[0] == "reader4@example.org" {
				t.Errorf("%s received the campaign after objecting", m.To[0])
			}
		}
		if n := len(srv.Messages()); n != 3 {
			t.Errorf("server got %d messages, want 3 (two readers and the notice)", n)
		}
		for _, id := range []string{batch[1], single} {
			s := e.get(t, id)
			if s.Status != mail.StatusSuppressed || s.LastError != "objection to direct-marketing" || s.SentAt != nil {
				t.Errorf("%s: %+v, want suppressed with the reason", id, s)
			}
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM check_log`); n != 2 {
			t.Errorf("the checks' own records: %d rows, want 2 (committed with the suppression)", n)
		}
		if s := e.get(t, notice); s.Status != mail.StatusSent {
			t.Errorf("notice: %s, want sent", s.Status)
		}
		mu.Lock()
		if checked["notice"] != 0 || checked["campaign"] != 4 {
			t.Errorf("checks ran %v, want 4 campaign messages and no notice", checked)
		}
		failing = true
		mu.Unlock()
		if n := countRows(t, db, `SELECT COUNT(*) FROM jobs`); n != 0 {
			t.Errorf("%d jobs left", n)
		}

		// A check that fails leaves the message queued, for a retry.
		id := e.enqueue(t, campaignMsg(5, "c"))
		e.runDue(t, 1)
		if s := e.get(t, id); s.Status != mail.StatusQueued || !strings.Contains(s.LastError, "state store unavailable") {
			t.Errorf("after a failing check: %+v, want queued with the error", s)
		}
		mu.Lock()
		failing = false
		mu.Unlock()
		e.clk.Advance(jobs.DefaultBackoffBase)
		e.runDue(t, 1)
		if s := e.get(t, id); s.Status != mail.StatusSent {
			t.Errorf("after the check recovered: %s, want sent", s.Status)
		}
		// Suppressed mail is purged like sent mail.
		e.clk.Advance(48 * time.Hour)
		if _, err := e.outbox.Purge(ctx, db, e.clk.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM mail_outbox`); n != 0 {
			t.Errorf("%d messages survived the purge", n)
		}
	})
}

// TestRestartWithSMTPSendsHeldMail: mail held while no SMTP server was
// configured, and mail queued by a process that stopped before delivering
// it, both go out once after a restart with a server; held mail older than
// ResumeHeldWithin stays held.
func TestRestartWithSMTPSendsHeldMail(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		srv := mailtest.Start(t)
		open := func(cfg mail.Config) (*mail.Outbox, *jobs.Runner) {
			t.Helper()
			cfg.From = "Example Site <privacy@site.example>"
			r := jobs.NewRunner(db, clk, quiet())
			o, err := mail.NewOutbox(db, clk, r, doortest.New(t, db, clk, nil, nil), cfg, quiet())
			if err != nil {
				t.Fatal(err)
			}
			return o, r
		}
		// First run: no SMTP server.
		seed(t, db, basic("stale@example.org"), basic("reset@example.org"), campaignMsg(1, "c"), campaignMsg(2, "c"),
			basic("queued@example.org"), basic("late@example.org"))
		held, _ := open(mail.Config{})
		stale, err := held.Enqueue(ctx, db, basic("stale@example.org"))
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(8 * 24 * time.Hour)
		reset, err := held.Enqueue(ctx, db, basic("reset@example.org"))
		if err != nil {
			t.Fatal(err)
		}
		news, err := held.EnqueueBatch(ctx, db, []mail.Message{campaignMsg(1, "c"), campaignMsg(2, "c")})
		if err != nil {
			t.Fatal(err)
		}
		// Second run: a server, but the process stops before its runner
		// delivers anything.
		srvURL := srv.URL()
		configured, _ := open(mail.Config{SMTPURL: srvURL})
		queued, err := configured.Enqueue(ctx, db, basic("queued@example.org"))
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := configured.Get(ctx, reset); s.Status != mail.StatusQueued {
			t.Fatalf("held mail after a start with SMTP: %s, want queued", s.Status)
		}
		// Third run: a restart with the server.
		restarted, r := open(mail.Config{SMTPURL: srvURL})
		if n, err := restarted.Resume(ctx); err != nil || n != 0 {
			t.Errorf("a second Resume queued %d (%v), want 0", n, err)
		}
		if _, err := r.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, m := range srv.Messages() {
			got[m.To[0]]++
		}
		for _, addr := range []string{"reset@example.org", "reader1@example.org", "reader2@example.org", "queued@example.org"} {
			if got[addr] != 1 {
				t.Errorf("%s received %d copies after the restart, want 1", addr, got[addr])
			}
		}
		for _, id := range append([]string{reset, queued}, news...) {
			if s, _ := restarted.Get(ctx, id); s.Status != mail.StatusSent {
				t.Errorf("%s: %s, want sent", id, s.Status)
			}
		}
		if s, _ := restarted.Get(ctx, stale); s.Status != mail.StatusHeld || got["stale@example.org"] != 0 {
			t.Errorf("eight-day-old held mail: %s, sent %d times; want held, never sent", s.Status, got["stale@example.org"])
		}
		// ResumeHeldWithin < 0 sends no held mail at all.
		late, _ := held.Enqueue(ctx, db, basic("late@example.org"))
		open(mail.Config{SMTPURL: srvURL, ResumeHeldWithin: -1})
		if s, _ := held.Get(ctx, late); s.Status != mail.StatusHeld {
			t.Errorf("with ResumeHeldWithin < 0: %s, want held", s.Status)
		}
	})
}

// TestBatchHandsOverToUrgentMail: a batch job delivers for a time slice,
// then hands the rest of its batch to a new job, so transactional mail
// queued meanwhile goes out before the rest of the campaign.
func TestBatchHandsOverToUrgentMail(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		mail.SetBatchSlice(e.outbox, time.Nanosecond) // one message per job
		seed(t, db, basic("reset@example.org"))
		var once sync.Once
		e.outbox.BeforeSend("campaign", func(ctx context.Context, q store.Q, m mail.Stored) (bool, string, error) {
			var err error
			once.Do(func() { _, err = e.outbox.Enqueue(ctx, q, basic("reset@example.org")) })
			return false, "", err
		})
		if _, err := e.outbox.EnqueueBatch(ctx, db, seed(t, db, campaignMsg(1, "c"), campaignMsg(2, "c"), campaignMsg(3, "c"))); err != nil {
			t.Fatal(err)
		}
		e.runDue(t, 4) // three slices of the batch and the reset
		var order []string
		for _, m := range srv.Messages() {
			order = append(order, m.To[0])
		}
		if len(order) != 4 || order[1] != "reset@example.org" {
			t.Fatalf("delivery order %v, want the reset second, right after the first slice", order)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM mail_outbox WHERE status = 'sent'`); n != 4 {
			t.Errorf("%d messages sent, want 4", n)
		}
	})
}

// TestBatchRateLimit: a batch is paced by the send rate like single
// messages are.
func TestBatchRateLimit(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL(), RatePerSecond: 20}, quiet())
		ms := make([]mail.Message, 30)
		for i := range ms {
			ms[i] = campaignMsg(i, "c")
		}
		if _, err := e.outbox.EnqueueBatch(context.Background(), db, seed(t, db, ms...)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		e.runDue(t, 1)
		// A burst of 20, then 10 more at 20 per second.
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Fatalf("a batch of 30 at 20/s took %v, want at least 0.4 s", d)
		}
		if n := len(srv.Messages()); n != 30 {
			t.Fatalf("server got %d messages, want 30", n)
		}
	})
}
