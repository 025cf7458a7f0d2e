package retention_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"steward/internal/app/services/servicestest"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/retention"
	"steward/internal/schema"
	"steward/internal/support"
)

// service builds a second sweep on the same database, as another process
// would, with its own batch size and pause.
func (e *env) service(t *testing.T, reg *registry.Registry, batch int, pause time.Duration) *retention.Service {
	t.Helper()
	if reg == nil {
		var err error
		if reg, err = schema.Registry(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := retention.New(retention.Deps{DB: e.db, Clock: e.clk, Policy: e.pol, Registry: reg, Subjects: e.svc.Subjects,
		Door: e.svc.Door, Audit: e.svc.Audit, Rights: e.svc.Rights, Batch: batch, Pause: pause, Rollups: e.svc.Rollups})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serviceFor is the sweep of another version of the policy, as a process
// running it would build it (with the app's rollups), resting not at all.
func (e *env) serviceFor(t *testing.T, p *policy.Policy) *retention.Service {
	t.Helper()
	s, err := retention.New(retention.Deps{DB: e.db, Clock: e.clk, Policy: p, Registry: e.registry(t), Subjects: e.svc.Subjects,
		Door: e.svc.Door, Audit: e.svc.Audit, Rights: e.svc.Rights, Pause: -1, Rollups: e.svc.Rollups})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openRequests gives a member n support requests with a file each.
func (e *env) openRequests(t *testing.T, id string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := e.svc.Support.Open(e.ctx, id, "Question", "text", []support.Upload{{Name: "f.txt", Body: strings.NewReader("file")}}); err != nil {
			t.Fatal(err)
		}
	}
}

// noOrphans checks that every support file row has its blob and every
// blob its row.
func (e *env) noOrphans(t *testing.T) {
	t.Helper()
	blobs, err := e.svc.Blobs.List(e.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	rows := e.count(t, `SELECT COUNT(*) FROM support_files`)
	if len(blobs) != rows {
		t.Errorf("%d blobs for %d file rows", len(blobs), rows)
	}
}

// TestSweepKilledHalfWayResumes: a sweep stopped after a few batches left
// them done; the next sweep removes the rest, nothing twice (the counts
// add up to what the dry run listed) and no file without its row or row
// without its file.
func TestSweepKilledHalfWayResumes(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := e.seed(t, "ann@example.org")
		e.openRequests(t, ann, 6)
		for i := 0; i < 5; i++ {
			e.collect(t, ann, "/p")
		}
		e.clk.Advance(3 * 366 * 24 * time.Hour)
		plan, err := e.svc.Retention.Plan(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := plan.Removed()
		if want < 20 {
			t.Fatalf("only %d rows due", want)
		}
		// The sweep is stopped as soon as its first batches are committed
		// (it pauses between batches, so the stop lands in a pause).
		s := e.service(t, nil, 1, 200*time.Millisecond)
		ctx, cancel := context.WithCancel(e.ctx)
		before := e.count(t, `SELECT COUNT(*) FROM support_requests`) + e.count(t, `SELECT COUNT(*) FROM activity_member_events`) + e.count(t, `SELECT COUNT(*) FROM mail_outbox`)
		go func() {
			defer cancel()
			for ctx.Err() == nil {
				var a, b, c int
				e.db.QueryRowContext(e.ctx, `SELECT COUNT(*) FROM support_requests`).Scan(&a)
				e.db.QueryRowContext(e.ctx, `SELECT COUNT(*) FROM activity_member_events`).Scan(&b)
				e.db.QueryRowContext(e.ctx, `SELECT COUNT(*) FROM mail_outbox`).Scan(&c)
				if a+b+c < before {
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		first, err := s.Sweep(ctx)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("first sweep: %v (removed %d)", err, first.Removed())
		}
		if first.Removed() == 0 || first.Removed() >= want {
			t.Fatalf("the first sweep removed %d of %d: not half-way", first.Removed(), want)
		}
		e.noOrphans(t)
		if n := e.count(t, `SELECT COUNT(*) FROM audit_log WHERE action = 'retention.swept' AND detail LIKE '%"stopped":"true"%'`); n != 1 {
			t.Errorf("audited stopped sweeps = %d, want 1", n)
		}
		second, err := e.svc.Retention.Sweep(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		after, _ := e.svc.Retention.Plan(e.ctx)
		if after.Removed() != 0 {
			t.Errorf("still due after resuming: %+v", after.Lines)
		}
		// Whatever the first removed stayed removed; the second removed
		// the rest, nothing twice.
		left := e.count(t, `SELECT COUNT(*) FROM support_requests`) + e.count(t, `SELECT COUNT(*) FROM activity_member_events`)
		if left != 0 {
			t.Errorf("%d rows left", left)
		}
		if got := second.Removed() + first.Removed(); got > want {
			t.Errorf("removed %d + %d rows, the dry run listed %d", first.Removed(), second.Removed(), want)
		}
		e.noOrphans(t)
	})
}

// TestSweepClockJumpsBack: when the clock jumps back, rows collected "in
// the future" are kept until their own time, and nothing kept is lost.
func TestSweepClockJumpsBack(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		t0 := e.clk.Now()
		e.clk.Set(t0.AddDate(1, 0, 0))
		ann := e.seed(t, "ann@example.org")
		t1 := e.clk.Now()
		e.clk.Set(t0) // a year back
		rep, err := e.svc.Retention.Sweep(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Removed() != 0 {
			t.Errorf("after the clock went back the sweep removed %+v", rep.Lines)
		}
		e.clk.Set(t1.AddDate(0, 13, 0).Add(-time.Hour))
		if rep, _ := e.svc.Retention.Sweep(e.ctx); rep.Removed() != 0 {
			t.Errorf("just inside 13 months after collection the sweep removed %+v", rep.Lines)
		}
		if n := e.count(t, `SELECT COUNT(*) FROM activity_member_events WHERE subject_id = $1`, ann); n != 1 {
			t.Errorf("events = %d, want 1", n)
		}
		e.clk.Set(t1.AddDate(0, 13, 0).Add(time.Hour))
		if _, err := e.svc.Retention.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.count(t, `SELECT COUNT(*) FROM activity_member_events WHERE subject_id = $1`, ann); n != 0 {
			t.Errorf("events = %d past their time, want 0", n)
		}
	})
}

// TestTwoSweepsAtOnce: two processes sweeping the same database at the
// same moment remove between them exactly what was due, once.
func TestTwoSweepsAtOnce(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := e.seed(t, "ann@example.org")
		bob := e.seed(t, "bob@example.org")
		e.openRequests(t, ann, 4)
		e.openRequests(t, bob, 4)
		e.clk.Advance(3 * 366 * 24 * time.Hour)
		plan, err := e.svc.Retention.Plan(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		a, b := e.service(t, nil, 2, -1), e.service(t, nil, 2, -1)
		var wg sync.WaitGroup
		reps := make([]retention.Report, 2)
		errs := make([]error, 2)
		for i, s := range []*retention.Service{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reps[i], errs[i] = s.Sweep(e.ctx)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := reps[0].Removed() + reps[1].Removed(); got != plan.Removed() {
			t.Errorf("the two sweeps removed %d + %d, the dry run listed %d", reps[0].Removed(), reps[1].Removed(), plan.Removed())
		}
		if after, _ := e.svc.Retention.Plan(e.ctx); after.Removed() != 0 {
			t.Errorf("still due: %+v", after.Lines)
		}
		e.noOrphans(t)
	})
}

// withActivity returns the example policy with the retention of activity
// (and of location and device, which its rows hold) replaced.
func (e *env) withActivity(t *testing.T, rule string) *policy.Policy {
	t.Helper()
	raw := string(e.pol.Raw())
	const from = "  activity: 13 months, then monthly aggregates # a year compared with the one before\n  location: 13 months\n  device: 13 months\n"
	if !strings.Contains(raw, from) {
		t.Fatal("the policy keeps activity for something else")
	}
	p, err := policy.Parse("changed.yaml", []byte(strings.Replace(raw, from, "  activity: "+rule+"\n  location: "+rule+"\n  device: "+rule+"\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPolicyChangesRetention: lengthening a retention resurrects nothing
// and reaches only what is collected after it; shortening one reaches
// everything at the next sweep.
func TestPolicyChangesRetention(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := servicestest.Member(t, e.svc, "ann@example.org", "Ann")
		events := func() int {
			return e.count(t, `SELECT COUNT(*) FROM activity_member_events WHERE subject_id = $1`, ann)
		}
		t0 := e.clk.Now()
		e.collect(t, ann, "/before")
		// A month later the policy keeps activity for two years.
		e.clk.Set(t0.AddDate(0, 1, 0))
		longer := e.withActivity(t, "2 years")
		if _, _, err := policy.Publish(e.ctx, e.db, longer, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		reg, err := schema.Registry()
		if err != nil {
			t.Fatal(err)
		}
		s, err := retention.New(retention.Deps{DB: e.db, Clock: e.clk, Policy: longer, Registry: reg, Subjects: e.svc.Subjects,
			Door: e.svc.Door, Audit: e.svc.Audit, Rights: e.svc.Rights})
		if err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(time.Hour)
		e.collect(t, ann, "/after")
		t1 := e.clk.Now()
		// Thirteen months after the first event: it goes (collected under
		// the shorter rule), the second stays.
		e.clk.Set(t0.AddDate(0, 13, 0).Add(time.Hour))
		if _, err := s.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
		if n := events(); n != 1 {
			t.Fatalf("events = %d after thirteen months, want 1 (the one collected under two years)", n)
		}
		e.clk.Set(t1.AddDate(1, 6, 0))
		if rep, _ := s.Sweep(e.ctx); rep.Removed() != 0 || events() != 1 {
			t.Errorf("at eighteen months the event collected under two years went: %+v", rep.Lines)
		}
		// Shortening to six months reaches it at the next sweep.
		shorter := e.withActivity(t, "6 months")
		if _, _, err := policy.Publish(e.ctx, e.db, shorter, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		s2, err := retention.New(retention.Deps{DB: e.db, Clock: e.clk, Policy: shorter, Registry: reg, Subjects: e.svc.Subjects,
			Door: e.svc.Door, Audit: e.svc.Audit, Rights: e.svc.Rights})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s2.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
		if n := events(); n != 0 {
			t.Errorf("events = %d after the retention was shortened, want 0", n)
		}
	})
}

// TestSweepPacesItself: the sweep removes at most a batch per transaction
// and rests between batches, by default too.
func TestSweepPacesItself(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		for i := 0; i < 50; i++ {
			if _, err := e.db.ExecContext(e.ctx, `INSERT INTO activity_events (site, at, visitor, type, page) VALUES ('demo', $1, $2, 'pageview', '/')`, e.clk.Now(), i); err != nil {
				t.Fatal(err)
			}
		}
		e.clk.Advance(500 * 24 * time.Hour)
		s := e.service(t, nil, 10, 0) // the default pause
		start := time.Now()
		rep, err := s.Sweep(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if due, _ := lines(rep, "activity"); due != 50 {
			t.Fatalf("removed %d events, want 50", due)
		}
		// Five batches of ten, with a pause after each full one.
		if took < 5*20*time.Millisecond {
			t.Errorf("the sweep of five batches took %v: it does not rest between them", took)
		}
	})
}

// TestSweepDestroysEmptiedCategoryKeys: when the sweep took the last of a
// member's category, that category's key is destroyed (what was sealed
// under it, in backups too, can no longer be opened); a member with rows
// of the category left keeps theirs.
func TestSweepDestroysEmptiedCategoryKeys(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		t0 := e.clk.Now()
		ann := e.seed(t, "ann@example.org")
		e.clk.Advance(48 * time.Hour)
		bob := e.seed(t, "bob@example.org")
		key := func(id, cat string) (live bool) {
			var n int
			e.db.QueryRowContext(e.ctx, `SELECT COUNT(*) FROM data_keys WHERE subject_id = $1 AND category = $2 AND destroyed_at IS NULL`, id, cat).Scan(&n)
			return n > 0
		}
		for _, cat := range []string{"activity", "support"} {
			if !key(ann, cat) || !key(bob, cat) {
				t.Fatalf("no live %s keys to begin with", cat)
			}
		}
		// Past the time of Ann's support requests (two years), not Bob's
		// (two days younger); everyone's activity (13 months) is past.
		e.clk.Set(t0.AddDate(2, 0, 0).Add(24 * time.Hour))
		rep, err := e.svc.Retention.Sweep(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.KeysDestroyed < 2 {
			t.Errorf("keys destroyed: %d", rep.KeysDestroyed)
		}
		for _, cat := range []string{"activity", "support"} {
			if key(ann, cat) {
				t.Errorf("ann's %s key is live after the sweep took all her %s", cat, cat)
			}
		}
		if !key(bob, "support") {
			t.Error("bob's support key went, his requests are still in their time")
		}
	})
}

// TestSignificantChangeAppliesOnceInForce: a shortening published in a
// significant change announced for a later date applies from that date,
// not from its publication.
func TestSignificantChangeAppliesOnceInForce(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		t0 := e.clk.Now()
		e.collect(t, "", "/old")
		events := func() int { return e.count(t, `SELECT COUNT(*) FROM activity_events`) }
		raw := string(e.pol.Raw())
		changed := raw
		for _, r := range [][2]string{
			{"  activity: 13 months, then monthly aggregates\n", "  activity: 6 months, then monthly aggregates\n"},
			{"  location: 13 months\n", "  location: 6 months\n"},
			{"  communications: 1 year\n", "  communications: 2 years\n"}, // lengthened: significant
			{"version: 2026-11-01\n", "version: 2026-12-01\n"},
		} {
			if !strings.Contains(changed, r[0]) {
				t.Fatalf("policy lacks %q", r[0])
			}
			changed = strings.Replace(changed, r[0], r[1], 1)
		}
		next, err := policy.Parse("next.yaml", []byte(changed))
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := policy.Publish(e.ctx, e.db, next, e.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !v.Significant {
			t.Fatalf("the change is %s", v.Classification)
		}
		reg, err := schema.Registry()
		if err != nil {
			t.Fatal(err)
		}
		s, err := retention.New(retention.Deps{DB: e.db, Clock: e.clk, Policy: next, Registry: reg, Subjects: e.svc.Subjects,
			Door: e.svc.Door, Audit: e.svc.Audit, Rights: e.svc.Rights})
		if err != nil {
			t.Fatal(err)
		}
		// Seven months on, before the announced date: the event stays.
		e.clk.Set(t0.AddDate(0, 7, 0))
		if !e.clk.Now().Before(next.EffectiveDate()) {
			t.Fatalf("the clock %v is not before the effective date %v", e.clk.Now(), next.EffectiveDate())
		}
		if _, err := s.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
		if n := events(); n != 1 {
			t.Fatalf("events = %d before the change is in force, want 1", n)
		}
		e.clk.Set(next.EffectiveDate().Add(time.Hour))
		if _, err := s.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
		if n := events(); n != 0 {
			t.Errorf("events = %d once the six months are in force, want 0", n)
		}
	})
}
