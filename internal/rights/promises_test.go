package rights_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"steward/internal/clock"
	"steward/internal/fault"
	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/policy"
	"steward/internal/rights"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// mixiPhoneReviewed is Mixi's policy with the phone number taken out of
// the self-editable fields, so correcting it is a reviewed request.
func mixiPhoneReviewed(t testing.TB) func(e *env) {
	return func(e *env) {
		data, err := loadExampleBytes("mixi.yaml")
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.Replace(data, []byte("self_editable: [name, email, phone, picture]"), []byte("self_editable: [name, email, picture]"), 1)
		p, err := policy.Parse("mixi-reviewed.yaml", data)
		if err != nil {
			t.Fatal(err)
		}
		if p.SelfEditable("phone") {
			t.Fatal("the phone is still self-editable")
		}
		e.pol = p
	}
}

// TestPromiseJ23_RectificationWithReasonAndRestriction: a correction of a
// field the member cannot edit needs an explanation; processing of its
// category is restricted while staff assess it; approval writes the value
// and lifts the restriction once the member was told.
func TestPromiseJ23_RectificationWithReasonAndRestriction(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnvWith(t, db, "mixi.yaml", envOpts{}, mixiPhoneReviewed(t))
		ann := e.member("ann@example.org")
		e.seed(ann, "ANN")
		who := rights.Requester{SubjectID: ann}
		_, err := e.rights.File(e.ctx, who, rights.Filing{Type: rights.Rectification, Fields: []string{"phone"}})
		if fault.CodeOf(err) != fault.Invalid || fault.FieldOf(err) != "reason" {
			t.Errorf("a correction without explanation: %v", err)
		}
		r, err := e.rights.File(e.ctx, who, rights.Filing{Type: rights.Rectification, Corrections: map[string]string{"phone": "+44 1632 960001"},
			Reason: "I changed my number.", Restrict: true})
		if err != nil {
			t.Fatal(err)
		}
		if !r.NeedsReview || r.Status != rights.StatusVerified {
			t.Errorf("rectification: %s review=%v", r.Status, r.NeedsReview)
		}
		if got, err := e.rights.Mine(e.ctx, ann, r.ID); err != nil || got.Reason != "I changed my number." {
			t.Errorf("rectification recorded with reason %q (%v), want the member's explanation", got.Reason, err)
		}
		guard := policy.NewGuard(e.pol, nil)
		st, _ := e.subjects.State(e.ctx, db, ann)
		if d := guard.Decide("provide-service", "identity", st); d.Allowed || d.Reason != policy.ReasonRestricted {
			t.Errorf("while assessed, provide-service on identity: %+v", d)
		}
		if d := guard.Decide(policy.SubjectRequest, "identity", st); !d.Allowed {
			t.Errorf("the member's own requests are stopped by the restriction")
		}
		if _, err := e.rights.Approve(e.ctx, "s_officer", r.ID, "checked the new number"); err != nil {
			t.Fatal(err)
		}
		e.run()
		got := e.request(r.ID)
		if got.Status != rights.StatusCompleted || !strings.Contains(string(got.Result), `"phone":"corrected"`) {
			t.Errorf("after approval: %s %s", got.Status, got.Result)
		}
		prof := e.report(ann).set("account").Rows[0].Fields["phone"]
		if prof != "+44 1632 960001" {
			t.Errorf("phone after correction = %v", prof)
		}
		st, _ = e.subjects.State(e.ctx, db, ann)
		if st.Restricted {
			t.Errorf("the restriction was not lifted after the review")
		}
		if !e.auditHas(ann, "rights.restriction_lifted") {
			t.Errorf("lifting not audited")
		}
		n := e.mailCount(ann, func(m mail.Stored) bool {
			return strings.Contains(m.Subject, "restriction") && strings.Contains(m.Subject, "lifted")
		})
		if n != 1 {
			t.Errorf("the member was not told before the restriction was lifted (%d mails)", n)
		}
		// A self-editable field is corrected on the account page instead.
		if _, err := e.rights.File(e.ctx, who, rights.Filing{Type: rights.Rectification, Fields: []string{"name"}, Reason: "typo"}); fault.CodeOf(err) != fault.Invalid {
			t.Errorf("rectification of a self-editable field: %v", err)
		}
	})
}

// TestPromiseJ23_CorrectionUnderJMIR: J23 on jmir.yaml as shipped, over
// HTTP as a member and a privacy officer use it. Under JMIR the member
// corrects every field of their account themselves (a rectification
// request for one is pointed there); what they cannot edit, such as the
// country derived from their address, they ask to have corrected with an
// explanation, which is recorded with the request. Processing of that
// category is restricted while staff review it, and nothing else; on
// approval the correction is written and the restriction lifted once the
// member was told.
func TestPromiseJ23_CorrectionUnderJMIR(t *testing.T) {
	eachWeb(t, "jmir.yaml", func(t *testing.T, w *web) {
		pol := w.a.Policy.Policy
		for _, f := range []string{"name", "phone", "company", "organisation", "location", "billing_address"} {
			if !pol.SelfEditable(f) {
				t.Fatalf("jmir.yaml no longer lets members edit %s: this test follows the policy as shipped", f)
			}
		}
		if pol.SelfEditable("country") || pol.CategoryOfField("country") != "location" {
			t.Fatalf("jmir.yaml: country is self-editable or not in the location category: this test follows the policy as shipped")
		}
		ann, annID := w.member("ann@example.org", "Ann Example")
		w.env.seed(annID, "ANN") // her activity, country included

		// What she may edit, she corrects herself.
		r := ann.do("PATCH", "/api/v1/me", map[string]string{"phone": "+1 416 555 0101"})
		want(t, r, 200, "correct the phone in the account")
		var prof struct{ Fields map[string]string }
		r.json(t, &prof)
		if prof.Fields["phone"] != "+1 416 555 0101" {
			t.Errorf("phone after self-correction = %q", prof.Fields["phone"])
		}
		wantProblem(t, ann.do("POST", "/api/v1/me/requests", map[string]any{"type": "rectification",
			"corrections": map[string]string{"phone": "+1 416 555 0102"}, "reason": "It changed."}), 422, "invalid", "rectification of a self-editable field")

		// What she may not, she asks for, with an explanation.
		wantProblem(t, ann.do("POST", "/api/v1/me/requests", map[string]any{"type": "rectification",
			"corrections": map[string]string{"country": "CA"}}), 422, "invalid", "rectification without explanation")
		const reason = "I live in Canada; your records put me elsewhere because of my VPN."
		rect := ann.file(map[string]any{"type": "rectification", "corrections": map[string]string{"country": "CA"},
			"reason": reason, "restrict": true})
		if rect.Status != "verified" || !rect.NeedsReview {
			t.Errorf("rectification: %s, needs review %v; want verified and waiting for review", rect.Status, rect.NeedsReview)
		}
		if err := w.a.Identity.CreateStaff(w.ctx, "officer@example.org", "privacy", testPassword); err != nil {
			t.Fatal(err)
		}
		officer, _ := w.login("officer@example.org")
		var staffView struct {
			Reason      string
			Corrections map[string]string
		}
		r = officer.do("GET", "/api/v1/admin/requests/"+rect.ID, nil)
		want(t, r, 200, "staff read the rectification")
		r.json(t, &staffView)
		if staffView.Reason != reason || staffView.Corrections["country"] != "CA" {
			t.Errorf("staff see reason %q and corrections %v; want the member's", staffView.Reason, staffView.Corrections)
		}
		// An admin reaches the screen, but JMIR's admin role does not
		// answer requests: what the member wrote is refused, and audited.
		if err := w.a.Identity.CreateStaff(w.ctx, "admin@example.org", "admin", testPassword); err != nil {
			t.Fatal(err)
		}
		admin, _ := w.login("admin@example.org")
		r = admin.do("GET", "/api/v1/admin/requests/"+rect.ID, nil)
		want(t, r, 403, "an admin reads the rectification")
		if strings.Contains(string(r.body), reason) {
			t.Errorf("the refusal shows the member's words: %s", r.body)
		}

		// Meanwhile, processing of her location is restricted, and only that.
		guard := policy.NewGuard(pol, nil)
		st, err := w.a.Subjects.State(w.ctx, w.a.DB, annID)
		if err != nil {
			t.Fatal(err)
		}
		if d := guard.Decide("analytics", "location", st); d.Allowed || d.Reason != policy.ReasonRestricted {
			t.Errorf("while reviewed, analytics on location: %+v, want refused as restricted", d)
		}
		if d := guard.Decide("analytics", "activity", st); !d.Allowed {
			t.Errorf("while reviewed, analytics on activity: %+v; the restriction reaches beyond the corrected field's category", d)
		}
		if d := guard.Decide(policy.SubjectRequest, "location", st); !d.Allowed {
			t.Errorf("the member's own requests are stopped by the restriction")
		}

		want(t, officer.do("POST", "/api/v1/admin/requests/"+rect.ID+"/approve", map[string]string{"note": "Checked with the member."}), 200, "approve")
		w.run()
		got := ann.request(rect.ID)
		if got.Status != "completed" || !strings.Contains(string(got.Result), `"country":"corrected"`) {
			t.Errorf("after approval: %s %s", got.Status, got.Result)
		}
		var country string
		if err := w.a.DB.QueryRowContext(w.ctx, `SELECT country FROM activity_member_events WHERE subject_id = $1`, annID).Scan(&country); err != nil {
			t.Fatal(err)
		}
		if country != "CA" {
			t.Errorf("country after the correction = %q, want CA", country)
		}
		st, _ = w.a.Subjects.State(w.ctx, w.a.DB, annID)
		if st.Restricted {
			t.Errorf("the restriction was not lifted after the review")
		}
		if d := guard.Decide("analytics", "location", st); !d.Allowed {
			t.Errorf("after the review, analytics on location: %+v", d)
		}
		w.smtp.WaitFor(t, func(m mailtest.Received) bool {
			return mailtest.SentTo("ann@example.org")(m) && strings.Contains(strings.ToLower(m.Subject), "restriction")
		}, 5*time.Second)
	})
}

// TestPromiseJ3_StoresInAccessReport: under JMIR, data lives in system
// log files, back-end databases and analytics systems; the access report's
// cover sheet names each store the policy declares, with what it holds,
// both online and in the access ZIP. (TestPromiseJ3_StoresInNotice, in
// policy, checks the notice.)
func TestPromiseJ3_StoresInAccessReport(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "jmir.yaml", envOpts{})
		var ids []string
		for _, s := range e.pol.Stores {
			ids = append(ids, s.ID)
		}
		if want := []string{"logs", "databases", "analytics"}; !slices.Equal(ids, want) {
			t.Fatalf("jmir.yaml declares the stores %v, want %v (promise J3)", ids, want)
		}
		ann := e.member("ann@example.org")
		e.seed(ann, "ANN")
		checkStores := func(where string, got []policy.Store) {
			t.Helper()
			for _, want := range e.pol.Stores {
				i := slices.IndexFunc(got, func(s policy.Store) bool { return s.ID == want.ID })
				if i < 0 {
					t.Errorf("%s: the cover sheet does not name the store %s (%s)", where, want.ID, want.Name)
					continue
				}
				if g := got[i]; g.Name != want.Name || g.Description != want.Description || !slices.Equal(g.Categories, want.Categories) {
					t.Errorf("%s: store %s = %+v, want %+v", where, want.ID, g, want)
				}
			}
			if len(got) != len(e.pol.Stores) {
				t.Errorf("%s: %d stores, want the policy's %d", where, len(got), len(e.pol.Stores))
			}
		}
		checkStores("access report", e.report(ann).Cover.Stores)

		r := e.file(ann, rights.Filing{Type: rights.Access})
		e.run()
		ex, err := e.rights.Download(e.ctx, ann, "sess-1", false, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		var zipped report
		if err := json.Unmarshal(unzip(t, ex.Data)["access.json"], &zipped); err != nil {
			t.Fatalf("access.json: %v", err)
		}
		checkStores("access.json in the ZIP", zipped.Cover.Stores)
	})
}

// TestPromiseJ24_Objection: an objection to marketing stops it at once and
// cannot be refused, and suppresses all other direct marketing the member
// had consented to; another objection needs grounds, takes effect at once,
// and is lifted if staff refuse it with compelling grounds.
func TestPromiseJ24_Objection(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "jmir.yaml", envOpts{})
		ann := e.member("ann@example.org")
		who := rights.Requester{SubjectID: ann}
		// Ann consented to both kinds of direct marketing, so only the
		// objection can stop them.
		for _, p := range []string{"marketing", "third-party-marketing"} {
			if err := e.subjects.SetConsent(e.ctx, db, ann, p, true); err != nil {
				t.Fatal(err)
			}
		}
		guard := policy.NewGuard(e.pol, nil)
		st, _ := e.subjects.State(e.ctx, db, ann)
		for _, p := range []string{"marketing", "third-party-marketing"} {
			if d := guard.Decide(p, "identity", st); !d.Allowed {
				t.Fatalf("before the objection, %s is refused: %+v", p, d)
			}
		}
		r, err := e.rights.File(e.ctx, who, rights.Filing{Type: rights.Objection, Purposes: []string{"marketing"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != rights.StatusCompleted {
			t.Errorf("objection to marketing: %s, want completed at once", r.Status)
		}
		st, _ = e.subjects.State(e.ctx, db, ann)
		if d := guard.Decide("marketing", "identity", st); d.Allowed {
			t.Errorf("marketing still allowed after the objection")
		}
		if d := guard.Decide("third-party-marketing", "identity", st); d.Allowed {
			t.Errorf("other direct marketing still allowed (suppression)")
		}
		if !st.Objections["marketing"] || !st.MarketingSuppressed {
			t.Errorf("after the objection: objection to marketing %v, marketing suppressed %v; want both",
				st.Objections["marketing"], st.MarketingSuppressed)
		}
		if _, err := e.rights.Refuse(e.ctx, "s_officer", r.ID, "we want to"); fault.CodeOf(err) != fault.Conflict {
			t.Errorf("refusing an objection to marketing: %v", err)
		}
		// Another purpose: grounds needed.
		if _, err := e.rights.File(e.ctx, who, rights.Filing{Type: rights.Objection, Purposes: []string{"analytics"}}); fault.FieldOf(err) != "reason" {
			t.Errorf("objection without grounds: %v", err)
		}
		if _, err := e.rights.File(e.ctx, who, rights.Filing{Type: rights.Objection, Purposes: []string{"provide-service"}, Reason: "x"}); fault.CodeOf(err) != fault.Invalid {
			t.Errorf("objection to a contract purpose: %v", err)
		}
		r, err = e.rights.File(e.ctx, who, rights.Filing{Type: rights.Objection, Purposes: []string{"analytics"}, Reason: "My situation."})
		if err != nil {
			t.Fatal(err)
		}
		st, _ = e.subjects.State(e.ctx, db, ann)
		if d := guard.Decide("analytics", "activity", st); d.Allowed {
			t.Errorf("analytics allowed while the objection is weighed")
		}
		if _, err := e.rights.Refuse(e.ctx, "s_officer", r.ID, "Compelling grounds: fraud detection depends on it."); err != nil {
			t.Fatal(err)
		}
		st, _ = e.subjects.State(e.ctx, db, ann)
		if d := guard.Decide("analytics", "activity", st); !d.Allowed {
			t.Errorf("the refused objection still stops analytics: %+v", d)
		}
		if got := e.request(r.ID); got.Status != rights.StatusRefused || !strings.Contains(got.RefusalReason, "Compelling") {
			t.Errorf("refused objection: %s %q", got.Status, got.RefusalReason)
		}
	})
}

// TestPromiseJ22_PortabilityIsTheProvidedSubset: the export ZIP holds
// what the subject provided under contract or consent, in JSON valid
// against its schema and CSV, with consent records and uploads, and
// nothing observed or derived.
func TestPromiseJ22_PortabilityIsTheProvidedSubset(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "jmir.yaml", envOpts{files: files{"../x.pdf": "PDF"}})
		ann := e.member("ann@example.org")
		vals := e.seed(ann, "ANN")
		r := e.file(ann, rights.Filing{Type: rights.Portability})
		e.run()
		ex, err := e.rights.Download(e.ctx, ann, "sess-1", false, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		z := unzip(t, ex.Data)
		checkPortabilityZIP(t, e, z)
		data := string(z["data.json"])
		for _, v := range vals {
			tab, _ := e.reg.Table(v.Table)
			in := strings.Contains(data, v.Value)
			if tab.Origin != "provided" && in {
				t.Errorf("%s.%s (%s) is in the portability export", v.Table, v.Column, tab.Origin)
			}
		}
		for _, v := range []string{"ANN-test_comments-body", "ANN-test_articles-body", "ANN-accounts-name"} {
			if !strings.Contains(data, v) {
				t.Errorf("provided value %s missing", v)
			}
		}
		if string(z["files/x.pdf"]) != "PDF" {
			t.Errorf("upload missing: %v", keysOf(z))
		}
	})
}

// TestDeadlinesAndExtensions: one calendar month from receipt; staff may
// extend by two months in all, only within the first month, with a reason
// the subject is told; the queue puts the most urgent first and flags
// what is overdue.
func TestDeadlinesAndExtensions(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "mixi.yaml", envOpts{})
		e.clock.Set(time.Date(2027, 1, 31, 10, 0, 0, 0, time.UTC))
		ann := e.member("ann@example.org")
		r := e.file(ann, rights.Filing{Type: rights.Objection, Purposes: []string{"measure"}, Reason: "x"})
		if want := time.Date(2027, 2, 28, 10, 0, 0, 0, time.UTC); !r.DueAt.Equal(want) {
			t.Errorf("due %v, want %v (one calendar month, clamped)", r.DueAt, want)
		}
		if _, err := e.rights.Extend(e.ctx, "s_officer", r.ID, 1, ""); fault.FieldOf(err) != "reason" {
			t.Errorf("extension without reason: %v", err)
		}
		r2, err := e.rights.Extend(e.ctx, "s_officer", r.ID, 1, "Many records to check.")
		if err != nil {
			t.Fatal(err)
		}
		if want := clock.AddMonths(r.ReceivedAt, 2); !r2.DueAt.Equal(want) || !r2.Extended() {
			t.Errorf("after one month's extension: due %v, want %v", r2.DueAt, want)
		}
		if _, err := e.rights.Extend(e.ctx, "s_officer", r.ID, 2, "more"); fault.FieldOf(err) != "months" {
			t.Errorf("a third month: %v", err)
		}
		r3, err := e.rights.Extend(e.ctx, "s_officer", r.ID, 1, "Still checking.")
		if err != nil || !r3.DueAt.Equal(clock.AddMonths(r.ReceivedAt, 3)) {
			t.Errorf("second month: %v %v", r3.DueAt, err)
		}
		n := e.mailCount(ann, func(m mail.Stored) bool { return strings.Contains(m.Text, "Many records to check.") })
		if n != 1 {
			t.Errorf("the extension's reason was not mailed (%d)", n)
		}
		// After the first month no extension is possible.
		other := e.file(ann, rights.Filing{Type: rights.Objection, Purposes: []string{"maintain-improve"}, Reason: "y"})
		e.clock.Advance(32 * 24 * time.Hour)
		if _, err := e.rights.Extend(e.ctx, "s_officer", other.ID, 1, "late"); fault.CodeOf(err) != fault.Conflict {
			t.Errorf("extension after the first month: %v", err)
		}
		q, err := e.rights.Queue(e.ctx, rights.Staff{ID: "test", Role: "privacy"}, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(q) != 2 || q[0].ID != other.ID || !q[0].Overdue(e.clock.Now()) || q[1].Overdue(e.clock.Now()) {
			t.Errorf("queue order or overdue flags wrong: %+v", q)
		}
	})
}

// TestSubjectLookupsUseIndexes reads the query plans of the engine's
// lookups by subject on every personal table: each must use an index, so
// export and erasure cost the subject's rows, not the table's.
func TestSubjectLookupsUseIndexes(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		reg := testRegistry(t, true)
		ctx := context.Background()
		for _, tab := range reg.Personal() {
			for _, q := range []string{
				`SELECT * FROM "` + tab.Name + `" WHERE "` + tab.SubjectColumn + `" IN ($1, $2)`,
				`DELETE FROM "` + tab.Name + `" WHERE "` + tab.SubjectColumn + `" IN ($1, $2)`,
				`SELECT COUNT(*) FROM "` + tab.Name + `" WHERE "` + tab.SubjectColumn + `" IN ($1)`,
			} {
				plan := explain(t, ctx, db, q, "s_a", "s_b")
				if db.Engine == store.SQLite {
					if strings.Contains(plan, "SCAN "+tab.Name) && !strings.Contains(plan, "USING") {
						t.Errorf("%s scans the whole table:\n%s\n%s", tab.Name, q, plan)
					}
				} else if strings.Contains(plan, "Seq Scan") {
					t.Errorf("%s scans the whole table:\n%s\n%s", tab.Name, q, plan)
				}
			}
		}
	})
}

func explain(t testing.TB, ctx context.Context, db *store.DB, q string, args ...any) string {
	t.Helper()
	n := strings.Count(q, "$")
	args = args[:n]
	var out []string
	err := db.InTx(ctx, func(tx *sqlTx) error {
		prefix := "EXPLAIN QUERY PLAN "
		if db.Engine == store.Postgres {
			// With the tables nearly empty the planner would rightly scan
			// them; forbidding it shows whether an index exists at all.
			if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
				return err
			}
			prefix = "EXPLAIN "
		}
		rows, err := tx.QueryContext(ctx, prefix+q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			out = append(out, textValue(vals[len(vals)-1]))
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	return strings.Join(out, "\n")
}

func textValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}
