package retention_test

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"steward/internal/activity"
	"steward/internal/app/services"
	"steward/internal/app/services/servicestest"
	"steward/internal/clock"
	"steward/internal/policy"
	"steward/internal/retention"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/support"
)

type env struct {
	ctx context.Context
	db  *store.DB
	svc *services.Services
	clk *clock.Fake
	pol *policy.Policy
}

func each(t *testing.T, policyName string, fn func(t *testing.T, e *env)) {
	storetest.Each(t, schema.Migrations(), func(t *testing.T, db *store.DB) {
		pol := servicestest.Example(t, policyName)
		svc, clk := servicestest.Build(t, db, pol, services.Config{}, nil)
		fn(t, &env{ctx: context.Background(), db: db, svc: svc, clk: clk, pol: pol})
	})
}

func (e *env) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.QueryRowContext(e.ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// collect records one page view, linked to the member where the policy
// links activity.
func (e *env) collect(t *testing.T, subjectID, page string) {
	t.Helper()
	site := e.svc.Activity.Sites()[0]
	err := e.svc.Activity.Collect(e.ctx, activity.Input{Site: site.ID, Type: "pageview", URL: site.Origins[0] + page},
		activity.Request{IP: netip.MustParseAddr("81.2.69.142"), UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
			Origin: site.Origins[0], SubjectID: subjectID})
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	if err := e.svc.Activity.Flush(e.ctx); err != nil {
		t.Fatal(err)
	}
}

// seed gives a member rows in every dated table the flows reach: their
// verification mail, a page view, a support request with a file.
func (e *env) seed(t *testing.T, email string) string {
	t.Helper()
	id := servicestest.Member(t, e.svc, email, "Member "+email)
	e.collect(t, id, "/article/"+strings.Split(email, "@")[0])
	if _, err := e.svc.Support.Open(e.ctx, id, "Invoice", "my invoice is wrong",
		[]support.Upload{{Name: "call.txt", Body: strings.NewReader("recording of " + email)}}); err != nil {
		t.Fatal(err)
	}
	return id
}

func lines(r retention.Report, cat string) (due, held int64) {
	for _, l := range r.Lines {
		if l.Category == cat {
			due += l.Due
			held += l.Held
		}
	}
	return due, held
}

func (e *env) subjectRows(t *testing.T, id string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, tb := range []string{"activity_member_events", "support_requests", "support_messages", "support_files", "mail_outbox"} {
		out[tb] = e.count(t, `SELECT COUNT(*) FROM `+tb+` WHERE subject_id = $1`, id)
	}
	return out
}

// TestRetentionEachDeclaredPeriodIsEnforced: under each example policy and
// a fake clock, every category the sweep dates keeps its rows until its
// time (just inside: the dry run lists nothing of it and the sweep removes
// nothing) and loses them after (just past: the dry run lists them, the
// sweep removes exactly what the dry run listed, files and all, and the
// audit log records the counts); a held subject's rows stay throughout.
func TestRetentionEachDeclaredPeriodIsEnforced(t *testing.T) {
	for _, name := range []string{"jmir.yaml", "mixi.yaml"} {
		t.Run(name, func(t *testing.T) {
			each(t, name, func(t *testing.T, e *env) {
				ann := e.seed(t, "ann@example.org")
				bob := e.seed(t, "bob@example.org")
				if _, err := e.svc.Retention.Place(e.ctx, "staff1", retention.Hold{SubjectID: bob, Reason: "litigation 2026-17", Source: "staff",
					ExpiresAt: e.clk.Now().AddDate(4, 0, 0)}); err != nil {
					t.Fatal(err)
				}
				bobBefore := e.subjectRows(t, bob)
				t0 := e.clk.Now()
				blobsBefore, err := e.svc.Blobs.List(e.ctx, "")
				if err != nil {
					t.Fatal(err)
				}
				// The period categories the sweep dates, by when they end.
				plan, err := e.svc.Retention.Plan(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				rules := map[string]policy.Retention{}
				for _, l := range plan.Lines {
					if r, _ := e.pol.Retention(l.Category); r.Kind == policy.RetainPeriod && l.Event == "collected" {
						rules[l.Category] = r
					}
				}
				if len(rules) < 2 {
					t.Fatalf("the sweep dates only %v", rules)
				}
				cats := make([]string, 0, len(rules))
				for c := range rules {
					cats = append(cats, c)
				}
				sort.Slice(cats, func(i, j int) bool { return rules[cats[j]].Longer(rules[cats[i]]) })
				swept := map[string]bool{}
				for _, cat := range cats {
					end := rules[cat].Period.AddTo(t0)
					// Just inside.
					e.clk.Set(end.Add(-time.Hour))
					p, err := e.svc.Retention.Plan(e.ctx)
					if err != nil {
						t.Fatal(err)
					}
					if due, _ := lines(p, cat); due != 0 {
						t.Errorf("%s (%s): %d rows due an hour before their time", cat, rules[cat], due)
					}
					// Just past.
					e.clk.Set(end.Add(time.Hour))
					p, err = e.svc.Retention.Plan(e.ctx)
					if err != nil {
						t.Fatal(err)
					}
					due, _ := lines(p, cat)
					if due == 0 && !swept[cat] {
						t.Errorf("%s (%s): nothing due an hour past its time: %+v", cat, rules[cat], p.Lines)
					}
					for _, l := range p.Lines {
						if l.Category == cat && bobBefore[l.Table] > 0 && l.Held == 0 {
							t.Errorf("%s/%s: the held subject's rows are not counted as held", cat, l.Table)
						}
					}
					rep, err := e.svc.Retention.Sweep(e.ctx)
					if err != nil {
						t.Fatal(err)
					}
					for _, pl := range p.Lines {
						for _, rl := range rep.Lines {
							if pl.Table == rl.Table && pl.Category == rl.Category && pl.Due != rl.Due {
								t.Errorf("%s/%s: dry run listed %d, sweep removed %d", pl.Category, pl.Table, pl.Due, rl.Due)
							}
						}
					}
					if got, _ := lines(rep, cat); got != due {
						t.Errorf("%s: removed %d, dry run said %d", cat, got, due)
					}
					after, err := e.svc.Retention.Plan(e.ctx)
					if err != nil {
						t.Fatal(err)
					}
					if got := after.Removed(); got != 0 {
						t.Errorf("after the sweep %d rows are still due: %+v", got, after.Lines)
					}
					for c := range rules {
						if !rules[c].Longer(rules[cat]) {
							swept[c] = true
						}
					}
				}
				// Ann's dated rows are gone, files included; Bob's stay.
				for tb, n := range e.subjectRows(t, ann) {
					if n != 0 && tb != "mail_outbox" {
						t.Errorf("%s: %d rows of ann left", tb, n)
					}
				}
				if got := e.subjectRows(t, bob); got["support_files"] != bobBefore["support_files"] || got["support_requests"] != 1 {
					t.Errorf("held subject's rows: %v, before %v", got, bobBefore)
				}
				blobs, err := e.svc.Blobs.List(e.ctx, "")
				if err != nil {
					t.Fatal(err)
				}
				if len(blobs) != len(blobsBefore)-1 {
					t.Errorf("blobs: %d before, %d after; want ann's one gone", len(blobsBefore), len(blobs))
				}
				// Each sweep is in the audit log with counts, never data.
				var detail string
				if err := e.db.QueryRowContext(e.ctx, `SELECT detail FROM audit_log WHERE action = 'retention.swept' AND detail LIKE '%removed.support%' ORDER BY seq DESC LIMIT 1`).Scan(&detail); err != nil {
					t.Fatalf("no sweep with support counts in the audit log: %v", err)
				}
				if !strings.Contains(detail, `"removed.support":"`) || strings.Contains(detail, "example.org") {
					t.Errorf("audit detail %s", detail)
				}
			})
		})
	}
}

// TestCheckRefusesRetentionNoSweepCanApply: a period on a category that a
// table holds with no dating column, or a category kept for less than the
// rows holding it, is refused at the policy's retention line.
func TestCheckRefusesRetentionNoSweepCanApply(t *testing.T) {
	reg, err := schema.Registry()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"jmir.yaml", "mixi.yaml"} {
		if err := retention.Check(servicestest.Example(t, name), reg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	raw := string(servicestest.Example(t, "jmir.yaml").Raw())
	cases := []struct{ from, to, want string }{
		{"  identity: account-lifetime\n", "  identity: 13 months\n", "jmir.yaml:240:"},
		{"  location: 13 months\n", "  location: 6 months\n", "jmir.yaml:246:"},
		// No aggregate is counted from location's own table.
		{"  location: 13 months\n", "  location: 13 months, then monthly aggregates\n", "jmir.yaml:246:"},
	}
	for _, c := range cases {
		if !strings.Contains(raw, c.from) {
			t.Fatalf("policy lacks %q", c.from)
		}
		pol, err := policy.Parse("jmir.yaml", []byte(strings.Replace(raw, c.from, c.to, 1)))
		if err != nil {
			t.Fatal(err)
		}
		err = retention.Check(pol, reg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a problem at %s", strings.TrimSpace(c.to), err, c.want)
		}
	}
}

// TestDryRunNamesTheOldestRow: each line the dry run lists says when its
// oldest row was collected.
func TestDryRunNamesTheOldestRow(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		t0 := e.clk.Now()
		e.seed(t, "ann@example.org")
		e.clk.Advance(time.Hour)
		e.seed(t, "bob@example.org")
		e.clk.Set(t0.AddDate(3, 0, 0))
		p, err := e.svc.Retention.Plan(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range p.Lines {
			if l.Due > 0 && l.Cutoff != nil {
				n++
				want := t0
				if strings.HasPrefix(l.Event, "day ended") {
					// Rollups name the day their oldest row counts.
					want = time.Date(t0.Year(), t0.Month(), t0.Day(), 0, 0, 0, 0, time.UTC)
				}
				if l.Oldest == nil || !l.Oldest.Equal(want) {
					t.Errorf("%s/%s: oldest %v, want %v", l.Category, l.Table, l.Oldest, want)
				}
			}
		}
		if n == 0 {
			t.Fatalf("nothing due: %+v", p.Lines)
		}
	})
}
