package retention_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"steward/internal/app/services/servicestest"
	"steward/internal/consent"
	"steward/internal/newsletter"
	"steward/internal/registry"
	"steward/internal/retention"
	"steward/internal/rights"
	"steward/internal/schema"
)

func (e *env) runJobs(t *testing.T) {
	t.Helper()
	for range 4 {
		if _, err := e.svc.Jobs.RunDue(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLegalHoldStopsSweepAndErasure: a hold on a subject's category keeps
// that category through the sweep and through the subject's erasure (the
// outcome says why); a hold on the whole subject refuses their erasure
// with the reason; a lifted or expired hold no longer keeps anything.
func TestLegalHoldStopsSweepAndErasure(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := e.seed(t, "ann@example.org")
		bob := e.seed(t, "bob@example.org")
		supportCat := e.pol.CategoryOfField("support_message")
		h, err := e.svc.Retention.Place(e.ctx, "staff1", retention.Hold{SubjectID: ann, Category: supportCat, Reason: "court order 17",
			Source: "lr_123", ExpiresAt: e.clk.Now().AddDate(1, 0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		// Bad holds are refused with the field at fault.
		for _, bad := range []retention.Hold{
			{Reason: "x", Source: "staff", ExpiresAt: e.clk.Now().AddDate(0, 1, 0)},
			{SubjectID: ann, Source: "staff", ExpiresAt: e.clk.Now().AddDate(0, 1, 0)},
			{SubjectID: ann, Reason: "x", Source: "staff", ExpiresAt: e.clk.Now().Add(-time.Hour)},
			{SubjectID: ann, Reason: "x", Source: "staff\n", ExpiresAt: e.clk.Now().AddDate(0, 1, 0)},
			{Category: "no-such", Reason: "x", Source: "staff", ExpiresAt: e.clk.Now().AddDate(0, 1, 0)},
			{SubjectID: "sub_nobody", Reason: "x", Source: "staff", ExpiresAt: e.clk.Now().AddDate(0, 1, 0)},
		} {
			if _, err := e.svc.Retention.Place(e.ctx, "staff1", bad); err == nil {
				t.Errorf("hold %+v placed", bad)
			}
		}
		// Ann erases her account: her support data stays, and she is told.
		r, err := e.svc.Rights.File(e.ctx, rights.Requester{SubjectID: ann, SessionID: "s", Reauthenticate: rights.Reauthenticated},
			rights.Filing{Type: rights.Erasure})
		if err != nil {
			t.Fatal(err)
		}
		e.runJobs(t)
		if r, err = e.svc.Rights.Get(e.ctx, r.ID); err != nil || r.Status != rights.StatusCompleted {
			t.Fatalf("erasure: %+v, %v", r, err)
		}
		var out rights.Outcome
		if err := json.Unmarshal([]byte(r.Result), &out); err != nil {
			t.Fatalf("result %q: %v", r.Result, err)
		}
		kept := map[string]string{}
		for _, k := range out.Kept {
			kept[k.Dataset] = k.Why
		}
		if kept["support_requests"] != "legal-hold" || kept["support_files"] != "legal-hold" {
			t.Errorf("kept: %+v", out.Kept)
		}
		if n := e.count(t, `SELECT COUNT(*) FROM support_files WHERE subject_id = $1`, ann); n != 1 {
			t.Errorf("ann's held files = %d, want 1", n)
		}
		// The sweep past support's time skips them, and counts them held.
		e.clk.Advance(3 * 366 * 24 * time.Hour / 4) // nine months: the hold still in force
		e.clk.Set(e.clk.Now())
		// Bob: a hold on everything of his refuses his erasure, with the reason.
		if _, err := e.svc.Retention.Place(e.ctx, "staff1", retention.Hold{SubjectID: bob, Reason: "litigation hold 9",
			Source: "staff", ExpiresAt: e.clk.Now().AddDate(0, 6, 0)}); err != nil {
			t.Fatal(err)
		}
		rb, err := e.svc.Rights.File(e.ctx, rights.Requester{SubjectID: bob, SessionID: "s", Reauthenticate: rights.Reauthenticated},
			rights.Filing{Type: rights.Erasure})
		if err != nil {
			t.Fatal(err)
		}
		e.runJobs(t)
		if rb, err = e.svc.Rights.Get(e.ctx, rb.ID); err != nil || rb.Status != rights.StatusRefused || !strings.Contains(rb.RefusalReason, "litigation hold 9") {
			t.Errorf("bob's erasure under a hold: %s %q %v", rb.Status, rb.RefusalReason, err)
		}
		// Lifting Ann's hold lets the next sweep take her support data
		// once its time is up.
		if _, err := e.svc.Retention.Lift(e.ctx, "staff1", h.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Retention.Lift(e.ctx, "staff1", h.ID); err == nil {
			t.Error("a lifted hold was lifted again")
		}
		e.clk.Advance(2 * 366 * 24 * time.Hour)
		if _, err := e.svc.Retention.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.count(t, `SELECT COUNT(*) FROM support_files WHERE subject_id = $1`, ann); n != 0 {
			t.Errorf("ann's files = %d after the hold was lifted and their time passed", n)
		}
		// Bob's hold expired months ago: his rows went too.
		if n := e.count(t, `SELECT COUNT(*) FROM support_requests WHERE subject_id = $1`, bob); n != 0 {
			t.Errorf("bob's requests = %d after his hold expired", n)
		}
		holds, err := e.svc.Retention.Holds(e.ctx, true)
		if err != nil || len(holds) != 2 {
			t.Fatalf("holds: %+v %v", holds, err)
		}
		if n := e.count(t, `SELECT COUNT(*) FROM audit_log WHERE action IN ('retention.hold_placed', 'retention.hold_lifted')`); n != 3 {
			t.Errorf("audited hold actions = %d, want 3", n)
		}
	})
}

// TestPromiseJ19_ArchivesSurviveSweeps: rows of a category the policy
// keeps as archive (GDPR Art. 89) are marked kept by the sweep and never
// removed, however old, while rows of a period category beside them go.
// (Erasure keeping them is TestPromiseJ19_ArchiveKeptAndExplained in
// package rights.)
func TestPromiseJ19_ArchivesSurviveSweeps(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		if _, err := e.db.ExecContext(e.ctx, `CREATE TABLE test_articles (id TEXT PRIMARY KEY, subject_id TEXT NOT NULL, title TEXT NOT NULL, created_at TIMESTAMP NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		articles := registry.Table{Name: "test_articles", Owner: "test", Dataset: "articles", SubjectColumn: "subject_id",
			Origin: registry.Provided, Source: "subject", Dated: registry.Dating{Column: "created_at"},
			Columns: []registry.Column{{Name: "id"}, {Name: "subject_id"}, {Name: "title", Field: "post"}, {Name: "created_at"}}}
		reg, err := registry.New(schemaTables(t), []registry.Table{articles})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.pol.CategoryOfField("post"); got != "publications" {
			t.Fatalf("post is %q", got)
		}
		s := e.service(t, reg, 100, -1)
		ann := e.seed(t, "ann@example.org")
		if _, err := e.db.ExecContext(e.ctx, `INSERT INTO test_articles VALUES ('a1', $1, 'On retention', $2)`, ann, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(50 * 366 * 24 * time.Hour)
		plan, err := s.Plan(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		marked := false
		for _, l := range plan.Lines {
			if l.Table == "test_articles" {
				marked = l.Kept == "archive" && l.Due == 0 && l.Category == "publications"
			}
		}
		if !marked {
			t.Errorf("the archive is not marked kept: %+v", plan.Lines)
		}
		rep, err := s.Sweep(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Removed() == 0 {
			t.Error("nothing else was swept either")
		}
		if n := e.count(t, `SELECT COUNT(*) FROM test_articles`); n != 1 {
			t.Errorf("archived rows = %d after fifty years, want 1", n)
		}
	})
}

func schemaTables(t *testing.T) []registry.Table {
	t.Helper()
	reg, err := schema.Registry()
	if err != nil {
		t.Fatal(err)
	}
	return reg.Tables()
}

// TestSweepErasesPeopleWithNothingLeft: someone who gave only an address
// for a confirmation they never used keeps it, once the owner pruned the
// unconfirmed subscription, only for the grace: then the rights engine
// erases them. A hold keeps one; members are never touched.
func TestSweepErasesPeopleWithNothingLeft(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ann := servicestest.Member(t, e.svc, "ann@example.org", "Ann")
		var ids []string
		for _, addr := range []string{"carl@example.org", "dora@example.org"} {
			if _, err := e.svc.Newsletters.Subscribe(e.ctx, newsletter.SubscribeInput{List: "updates", Email: addr, Method: consent.MethodForm}); err != nil {
				t.Fatal(err)
			}
			sub, err := e.svc.Subjects.FindByEmail(e.ctx, e.db, e.svc.Door, addr)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, sub.ID)
		}
		if _, err := e.svc.Retention.Place(e.ctx, "staff1", retention.Hold{SubjectID: ids[1], Reason: "fraud inquiry", Source: "staff",
			ExpiresAt: e.clk.Now().AddDate(1, 0, 0)}); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(8 * 24 * time.Hour)
		if _, err := e.svc.Newsletters.Prune(e.ctx); err != nil {
			t.Fatal(err)
		}
		if p, _ := e.svc.Retention.Plan(e.ctx); p.SubjectsDue != 0 {
			t.Errorf("within the grace %d people are due", p.SubjectsDue)
		}
		e.clk.Advance(31 * 24 * time.Hour)
		p, err := e.svc.Retention.Plan(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p.SubjectsDue != 1 || p.SubjectsHeld != 1 {
			t.Errorf("dry run: %d people due, %d held; want 1 and 1", p.SubjectsDue, p.SubjectsHeld)
		}
		rep, err := e.svc.Retention.Sweep(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.SubjectsErased != 1 || rep.SubjectsHeld != 1 {
			t.Errorf("erased %d, held %d; want 1 and 1", rep.SubjectsErased, rep.SubjectsHeld)
		}
		for i, want := range []bool{true, false} {
			sub, err := e.svc.Subjects.Get(e.ctx, e.db, ids[i])
			if err != nil {
				t.Fatal(err)
			}
			if sub.Erased() != want {
				t.Errorf("subject %d erased = %v, want %v", i, sub.Erased(), want)
			}
		}
		if sub, _ := e.svc.Subjects.Get(e.ctx, e.db, ann); sub.Erased() {
			t.Error("a member was erased")
		}
		if n := e.count(t, `SELECT COUNT(*) FROM rights_erasures WHERE subject_id = $1`, ids[0]); n != 1 {
			t.Errorf("erasure ledger rows = %d, want 1", n)
		}
	})
}

// TestCategoryHoldOnEveryoneKeepsTheCategory: a hold on a category of
// everyone's data marks its lines kept, with the reason, and the sweep
// leaves them; other categories go on being swept.
func TestCategoryHoldOnEveryoneKeepsTheCategory(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		e.seed(t, "ann@example.org")
		if _, err := e.svc.Retention.Place(e.ctx, "staff1", retention.Hold{Category: "support", Reason: "regulator inquiry", Source: "staff",
			ExpiresAt: e.clk.Now().AddDate(4, 0, 0)}); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(3 * 366 * 24 * time.Hour)
		rep, err := e.svc.Retention.Sweep(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		kept, other := 0, int64(0)
		for _, l := range rep.Lines {
			if l.Category == "support" {
				if l.Kept != "legal-hold" || l.Due != 0 {
					t.Errorf("support line %+v", l)
				}
				kept++
			} else {
				other += l.Due
			}
		}
		if kept == 0 || other == 0 {
			t.Errorf("%d support lines kept, %d other rows swept", kept, other)
		}
		if n := e.count(t, `SELECT COUNT(*) FROM support_files`); n != 1 {
			t.Errorf("support files = %d under the hold, want 1", n)
		}
	})
}

// TestKeptAfterErasureUntilTheGraceEnds: proof of consent survives the
// account's erasure (a legal obligation) for the grace the policy gives
// after the account ends ("account-lifetime + 3 years"), then goes.
func TestKeptAfterErasureUntilTheGraceEnds(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ann := servicestest.Member(t, e.svc, "ann@example.org", "Ann")
		if _, err := e.svc.Newsletters.Subscribe(e.ctx, newsletter.SubscribeInput{List: "updates", SubjectID: ann, Verified: true, Method: consent.MethodForm}); err != nil {
			t.Fatal(err)
		}
		records := func() int { return e.count(t, `SELECT COUNT(*) FROM consent_records WHERE subject_id = $1`, ann) }
		if records() == 0 {
			t.Fatal("no consent record")
		}
		if _, err := e.svc.Rights.EraseExpired(e.ctx, ann, "test"); err != nil {
			t.Fatal(err)
		}
		kept := records()
		if kept == 0 {
			t.Fatal("the erasure took the proof of consent")
		}
		erased := e.clk.Now()
		e.clk.Set(erased.AddDate(3, 0, 0).Add(-time.Hour))
		if rep, err := e.svc.Retention.Sweep(e.ctx); err != nil || records() != kept {
			t.Fatalf("within the grace: %v, records %d of %d, %+v", err, records(), kept, rep.Lines)
		}
		e.clk.Set(erased.AddDate(3, 0, 0).Add(time.Hour))
		rep, err := e.svc.Retention.Sweep(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if records() != 0 {
			t.Errorf("%d consent records left three years after the account ended", records())
		}
		if due, _ := lines(rep, "consent-record"); due < int64(kept) {
			t.Errorf("the sweep reports %d consent-record rows, want at least %d", due, kept)
		}
	})
}
