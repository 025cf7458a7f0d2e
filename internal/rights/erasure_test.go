package rights_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"steward/internal/door"
	"steward/internal/mail/mailtest"
	"steward/internal/registry"
	"steward/internal/rights"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

func (e *env) file(subjectID string, f rights.Filing) rights.Request {
	e.t.Helper()
	r, err := e.rights.File(e.ctx, rights.Requester{SubjectID: subjectID, SessionID: "sess-1", Reauthenticate: rights.Reauthenticated}, f)
	if err != nil {
		e.t.Fatalf("file %s: %v", f.Type, err)
	}
	return r
}

func outcomeOf(t testing.TB, r rights.Request) rights.Outcome {
	t.Helper()
	var o rights.Outcome
	if err := json.Unmarshal(r.Result, &o); err != nil {
		t.Fatalf("result of %s: %v (%s)", r.ID, err, r.Result)
	}
	return o
}

// allowedAfterErasure says where a subject's values may stay after an
// account erasure: tables kept for a legal obligation, and (for
// archive) the kept datasets the outcome lists.
func allowedAfterErasure(reg *registry.Registry, table string, kept []rights.TableOutcome) bool {
	t, ok := reg.Table(table)
	if !ok {
		return false
	}
	if t.KeptBecause != "" {
		return true
	}
	for _, k := range kept {
		if k.Dataset == t.Dataset {
			return true
		}
	}
	return false
}

// TestPromiseM9_AccountErasure: an ordinary member's erasure completes
// without staff, the completion notice reaches the address before the
// address is erased, and afterwards no table holds the member's values
// outside the stated exemptions, while another member's data is intact.
func TestPromiseM9_AccountErasure(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "mixi.yaml", envOpts{smtp: true})
		ann := e.member("ann@example.org")
		vals := e.seed(ann, "ANN")
		bob := e.member("bob@example.org")
		bobVals := e.seed(bob, "BOB")
		r := e.file(ann, rights.Filing{Type: rights.Erasure, Scope: "account"})
		e.run()
		r = e.request(r.ID)
		if r.Status != rights.StatusCompleted {
			t.Fatalf("status %s, want completed (result %s)", r.Status, r.Result)
		}
		out := outcomeOf(t, r)
		if out.Verification == nil || !out.Verification.OK || out.Verification.TablesChecked < len(e.reg.Personal()) {
			t.Errorf("verification %+v", out.Verification)
		}
		// The notice left before the address went.
		m := e.smtp.WaitFor(t, func(m mailtest.Received) bool {
			return mailtest.SentTo("ann@example.org")(m) && strings.Contains(m.Subject, "erased")
		}, 5*time.Second)
		if !strings.Contains(m.Text, "Kept, and why") && len(out.Kept) > 0 {
			t.Errorf("the notice does not say what was kept:\n%s", m.Text)
		}
		// Nothing of Ann's outside the exemptions.
		needles := []string{"ann@example.org", "ANN-"}
		for _, v := range vals {
			needles = append(needles, v.Value)
		}
		for needle, where := range scan(t, db, needles) {
			for _, w := range where {
				table := strings.SplitN(w, ".", 2)[0]
				if !allowedAfterErasure(e.reg, table, out.Kept) {
					t.Errorf("after erasure %q is still in %s", needle, w)
				}
			}
		}
		// Every data key of Ann's is destroyed but the one sealing the
		// consent ledger, kept as proof (what she wrote in requests is
		// erased, though their record is kept), which still opens, for
		// proof.
		if live, _ := e.door.LiveCategories(e.ctx, db, ann); len(live) != 1 || live[0] != "consent-record" {
			t.Errorf("live data keys %v, want only consent-record", live)
		}
		for _, v := range vals {
			if v.Table != "consent_records" {
				continue
			}
			var sealed []byte
			if err := db.QueryRowContext(e.ctx, `SELECT "`+v.Column+`" FROM consent_records WHERE subject_id = $1`, ann).Scan(&sealed); err != nil {
				t.Fatal(err)
			}
			view, err := e.door.Subject(e.ctx, db, door.Staff("s_officer", "privacy", "consent-proof"), ann)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := view.OpenBytes(e.ctx, "consent", sealed); err != nil || string(got) != v.Value {
				t.Errorf("the kept %s after erasure opens to %q, %v; want %q", v.Column, got, err, v.Value)
			}
		}
		// Bob is untouched: each value seeded for him is still where it was,
		// in the clear or still opening with his keys.
		e.stillHolds(bob, bobVals)
		// The ledger has the erasure, in the table and the file.
		if n := e.count(`SELECT COUNT(*) FROM rights_erasures WHERE subject_id = $1`, ann); n != 1 {
			t.Errorf("ledger rows = %d", n)
		}
		entries, err := rights.ReadLedgerFile(e.ledger)
		if err != nil || len(entries) != 1 || entries[0].SubjectID != ann {
			t.Errorf("ledger file: %v %+v", err, entries)
		}
		for _, a := range []string{"rights.request_received", "rights.request_verified", "rights.request_started", "rights.erasure_verified", "rights.request_completed"} {
			if !e.auditHas(ann, a) {
				t.Errorf("no %s in the audit log", a)
			}
		}
	})
}

// TestPromiseJ19_ArchiveKeptAndExplained: with JMIR's policy, erasure keeps
// the articles the policy archives, says so, and erases the rest.
func TestPromiseJ19_ArchiveKeptAndExplained(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "jmir.yaml", envOpts{smtp: true})
		ann := e.member("ann@example.org")
		e.seed(ann, "ANN")
		r := e.file(ann, rights.Filing{Type: rights.Erasure})
		e.run()
		r = e.request(r.ID)
		if r.Status != rights.StatusCompleted {
			t.Fatalf("status %s (%s)", r.Status, r.Result)
		}
		out := outcomeOf(t, r)
		var kept *rights.TableOutcome
		for i, k := range out.Kept {
			if k.Dataset == "articles" {
				kept = &out.Kept[i]
			}
		}
		if kept == nil || kept.Kept != 1 || kept.Why != "archive" || !strings.Contains(kept.Explanation, "Art. 89") {
			t.Fatalf("articles not kept with the archive reason: %+v", out.Kept)
		}
		if n := e.count(`SELECT COUNT(*) FROM test_articles WHERE author_id = $1`, ann); n != 1 {
			t.Errorf("articles left = %d, want 1", n)
		}
		if n := e.count(`SELECT COUNT(*) FROM test_comments WHERE author_id = $1`, ann); n != 0 {
			t.Errorf("comments left = %d, want 0", n)
		}
		// What is kept stays readable: the key sealing the archived
		// abstract is not destroyed, the others are.
		if got := e.report(ann).set("articles"); got == nil || got.Rows[0].Fields["abstract"] != "ANN-test_articles-abstract" {
			t.Errorf("the kept article's sealed abstract is no longer readable: %+v", got)
		}
		if slices.Contains(out.KeysDestroyed, "publications") || !slices.Contains(out.KeysDestroyed, "identity") {
			t.Errorf("keys destroyed: %v (want identity, not publications)", out.KeysDestroyed)
		}
		m := e.smtp.WaitFor(t, mailtest.SentTo("ann@example.org"), 5*time.Second)
		_ = m
		found := false
		for _, msg := range e.smtp.Messages() {
			if strings.Contains(msg.Text, "archiving in the public interest") {
				found = true
			}
		}
		if !found {
			t.Errorf("no mail told Ann the archive was kept")
		}
	})
}

// TestErasureScopes: category, item and content scopes erase what they
// name and nothing else (M9).
func TestErasureScopes(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "mixi.yaml", envOpts{})
		ann := e.member("ann@example.org")
		e.seed(ann, "ANN")
		if _, err := db.Exec(`INSERT INTO test_comments (id, author_id, thread, body, created_at) VALUES ('c2', $1, 't', 'second comment', $2)`, ann, e.clock.Now()); err != nil {
			t.Fatal(err)
		}

		// Category: the phone only. The account stays, the phone and its
		// key go.
		r := e.file(ann, rights.Filing{Type: rights.Erasure, Scope: "category", Fields: []string{"phone"}})
		e.run()
		if r = e.request(r.ID); r.Status != rights.StatusCompleted {
			t.Fatalf("category: %s %s", r.Status, r.Result)
		}
		var phone []byte
		if err := db.QueryRow(`SELECT phone FROM accounts WHERE subject_id = $1`, ann).Scan(&phone); err != nil {
			t.Fatal(err)
		}
		acc := e.report(ann).set("account")
		if len(phone) != 0 || acc == nil || acc.Rows[0].Fields["name"] != "ANN-accounts-name_sealed" {
			t.Errorf("after erasing the phone: phone %q, account %+v", phone, acc)
		}
		// The name is sealed under the same key as the phone: the key stays.
		if destroyed, _ := e.door.Shredded(e.ctx, db, ann, "identity"); destroyed {
			t.Errorf("the identity key, which still seals the name, was destroyed")
		}

		// Item: one comment, by the reference the access report gives.
		rep := e.report(ann)
		var item string
		for _, row := range rep.set("comments").Rows {
			if row.Fields["body"] == "second comment" {
				item = row.Item
			}
		}
		r = e.file(ann, rights.Filing{Type: rights.Erasure, Scope: "item", Items: []string{item}})
		e.run()
		if r = e.request(r.ID); r.Status != rights.StatusCompleted {
			t.Fatalf("item: %s %s", r.Status, r.Result)
		}
		if n := e.count(`SELECT COUNT(*) FROM test_comments WHERE author_id = $1`, ann); n != 1 {
			t.Errorf("comments after erasing one of two: %d", n)
		}

		// Content: every comment and article; the account stays.
		r = e.file(ann, rights.Filing{Type: rights.Erasure, Scope: "content"})
		e.run()
		if r = e.request(r.ID); r.Status != rights.StatusCompleted {
			t.Fatalf("content: %s %s", r.Status, r.Result)
		}
		if n := e.count(`SELECT COUNT(*) FROM test_comments WHERE author_id = $1`, ann) + e.count(`SELECT COUNT(*) FROM test_articles WHERE author_id = $1`, ann); n != 0 {
			t.Errorf("content left: %d", n)
		}
		if n := e.count(`SELECT COUNT(*) FROM accounts WHERE subject_id = $1`, ann); n != 1 {
			t.Errorf("the account went with the content")
		}

		// Another member's item is refused as not found.
		bob := e.member("bob@example.org")
		e.seed(bob, "BOB")
		rb := e.report(bob)
		bobItem := rb.set("comments").Rows[0].Item
		_, err := e.rights.File(e.ctx, rights.Requester{SubjectID: ann, Reauthenticate: rights.Reauthenticated},
			rights.Filing{Type: rights.Erasure, Scope: "item", Items: []string{bobItem}})
		if err == nil || !strings.Contains(err.Error(), "no such record") {
			t.Errorf("erasing another member's item: %v", err)
		}
		if n := e.count(`SELECT COUNT(*) FROM test_comments WHERE author_id = $1`, bob); n != 1 {
			t.Errorf("Bob's comment went")
		}
		// Filing refuses what makes no sense.
		for _, f := range []rights.Filing{
			{Type: rights.Erasure, Scope: "category", Fields: []string{"email"}},
			{Type: rights.Erasure, Scope: "category", Fields: []string{"nonsense"}},
			{Type: rights.Erasure, Scope: "item", Items: []string{"account/" + ann}},
			{Type: rights.Erasure, Scope: "item", Items: []string{"../../etc"}},
			{Type: rights.Erasure, Scope: "galaxy"},
		} {
			if _, err := e.rights.File(e.ctx, rights.Requester{SubjectID: ann, Reauthenticate: rights.Reauthenticated}, f); err == nil {
				t.Errorf("filing %+v was accepted", f)
			}
		}
	})
}

// TestLegalHoldRefusesErasure: a legal hold refuses the erasure with the
// reason staff gave, and nothing is erased.
func TestLegalHoldRefusesErasure(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "jmir.yaml", envOpts{})
		ann := e.member("ann@example.org")
		e.seed(ann, "ANN")
		if err := e.subjects.SetLegalHold(e.ctx, db, ann, true, "court order 2026/17"); err != nil {
			t.Fatal(err)
		}
		r := e.file(ann, rights.Filing{Type: rights.Erasure})
		e.run()
		r = e.request(r.ID)
		if r.Status != rights.StatusRefused || !strings.Contains(r.RefusalReason, "court order 2026/17") {
			t.Fatalf("status %s, reason %q", r.Status, r.RefusalReason)
		}
		if n := e.count(`SELECT COUNT(*) FROM accounts WHERE subject_id = $1`, ann); n != 1 {
			t.Errorf("the account was erased under a legal hold")
		}
	})
}

// flaky fails the first erasure of its table, as a crash would.
type flaky struct {
	calls atomic.Int32
}

func (f *flaky) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, ids []string, sc rights.Scope) (rights.TableOutcome, error) {
	if f.calls.Add(1) == 1 {
		return rights.TableOutcome{}, errors.New("simulated crash")
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM test_articles WHERE author_id = $1`, ids[0])
	if err != nil {
		return rights.TableOutcome{}, err
	}
	n, _ := res.RowsAffected()
	return rights.TableOutcome{Dataset: t.Dataset, Erased: n}, nil
}

func (f *flaky) Left(ctx context.Context, q store.Q, t registry.Table, ids []string, sc rights.Scope) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM test_articles WHERE author_id = $1`, ids[0]).Scan(&n)
	return n, err
}

// TestCrashMidErasureResumes: an erasure that fails halfway leaves the
// request in progress, with the tables done so far erased; the retry
// finishes it.
func TestCrashMidErasureResumes(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "mixi.yaml", envOpts{})
		f := &flaky{}
		e.rights.Register("test_articles", f)
		ann := e.member("ann@example.org")
		e.seed(ann, "ANN")
		r := e.file(ann, rights.Filing{Type: rights.Erasure})
		if _, err := e.jobs.RunDue(e.ctx); err != nil {
			t.Fatal(err)
		}
		r = e.request(r.ID)
		if r.Status != rights.StatusInProgress {
			t.Fatalf("after the crash: status %s, want in_progress", r.Status)
		}
		if n := e.count(`SELECT COUNT(*) FROM test_articles WHERE author_id = $1`, ann); n != 1 {
			t.Errorf("articles after the crash = %d", n)
		}
		if n := e.count(`SELECT COUNT(*) FROM sessions WHERE subject_id = $1`, ann); n != 0 {
			t.Errorf("sessions (erased before the crash) = %d", n)
		}
		e.clock.Advance(time.Hour) // past the retry backoff
		e.run()
		r = e.request(r.ID)
		if r.Status != rights.StatusCompleted {
			t.Fatalf("after the retry: status %s (%s)", r.Status, r.Result)
		}
		if n := e.count(`SELECT COUNT(*) FROM test_articles WHERE author_id = $1`, ann); n != 0 {
			t.Errorf("articles after the retry = %d", n)
		}
		if f.calls.Load() < 2 {
			t.Errorf("the holder ran %d times", f.calls.Load())
		}
	})
}

// TestPromiseJ26_UnderAgeErasedWithoutArchive: staff mark a member under
// age; the account is erased like a request, archived works included.
func TestPromiseJ26_UnderAgeErasedWithoutArchive(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "jmir.yaml", envOpts{})
		kid := e.member("kid@example.org")
		e.seed(kid, "KID")
		r, err := e.rights.MarkUnderAge(e.ctx, "s_staff", kid, "the parent wrote to us")
		if err != nil {
			t.Fatal(err)
		}
		e.run()
		r = e.request(r.ID)
		if r.Status != rights.StatusCompleted {
			t.Fatalf("status %s (%s)", r.Status, r.Result)
		}
		for _, table := range []string{"test_articles", "test_comments", "accounts"} {
			col := "author_id"
			if table == "accounts" {
				col = "subject_id"
			}
			if n := e.count(`SELECT COUNT(*) FROM `+table+` WHERE `+col+` = $1`, kid); n != 0 {
				t.Errorf("%s still holds %d rows of the under-age member", table, n)
			}
		}
		if !e.auditHas(kid, "rights.under_age_marked") {
			t.Errorf("not audited")
		}
		// A staff account cannot be marked.
		if err := e.identity.CreateStaff(e.ctx, "staff@example.org", "privacy", "correct horse battery staple lantern"); err != nil {
			t.Fatal(err)
		}
		var staffID string
		db.QueryRow(`SELECT id FROM subjects WHERE email = 'staff@example.org'`).Scan(&staffID)
		if _, err := e.rights.MarkUnderAge(e.ctx, "s_staff", staffID, ""); err == nil {
			t.Errorf("a staff account was marked under age")
		}
	})
}

// TestReapplyAfterRestore: a backup restored after an erasure brings the
// data back, and the database's own ledger forgot the erasure; reapply,
// reading the ledger file, erases it again and destroys the keys again.
func TestReapplyAfterRestore(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "mixi.yaml", envOpts{})
		ann := e.member("ann@example.org")
		e.seed(ann, "ANN")
		bob := e.member("bob@example.org")
		e.seed(bob, "BOB")
		backup := snapshot(t, db, e.reg)
		r := e.file(ann, rights.Filing{Type: rights.Erasure})
		e.run()
		if r = e.request(r.ID); r.Status != rights.StatusCompleted {
			t.Fatalf("erasure: %s", r.Status)
		}
		restore(t, db, backup)
		if n := e.count(`SELECT COUNT(*) FROM accounts WHERE subject_id = $1`, ann); n != 1 {
			t.Fatalf("restore did not bring the account back")
		}
		if n := e.count(`SELECT COUNT(*) FROM rights_erasures`); n != 0 {
			t.Fatalf("the restored ledger should have forgotten the erasure")
		}
		if destroyed, _ := e.door.Shredded(e.ctx, db, ann, "identity"); destroyed {
			t.Fatalf("the restored key should be live")
		}
		rep, err := e.rights.Reapply(e.ctx, nil) // the configured ledger file
		if err != nil {
			t.Fatal(err)
		}
		if rep.Applied != 1 || rep.RowsAgain == 0 || len(rep.Problems) > 0 {
			t.Errorf("reapply: %+v", rep)
		}
		if n := e.count(`SELECT COUNT(*) FROM accounts WHERE subject_id = $1`, ann); n != 0 {
			t.Errorf("the account is back after reapply")
		}
		if destroyed, _ := e.door.Shredded(e.ctx, db, ann, "identity"); !destroyed {
			t.Errorf("the identity key was not destroyed again")
		}
		var email []byte
		db.QueryRow(`SELECT email_sealed FROM subjects WHERE id = $1`, ann).Scan(&email)
		if email != nil {
			t.Errorf("the address is back after reapply")
		}
		if n := e.count(`SELECT COUNT(*) FROM accounts WHERE subject_id = $1`, bob); n != 1 {
			t.Errorf("reapply erased Bob")
		}
		if n := e.count(`SELECT COUNT(*) FROM rights_erasures WHERE subject_id = $1`, ann); n != 1 {
			t.Errorf("reapply did not restore the ledger row")
		}
		if !e.auditHas(ann, "rights.erasure_reapplied") {
			t.Errorf("reapply not audited")
		}
		// Running it again changes nothing and fails nothing.
		rep, err = e.rights.Reapply(e.ctx, nil)
		if err != nil || rep.Applied != 1 || rep.RowsAgain != 0 {
			t.Errorf("second reapply: %+v %v", rep, err)
		}
	})
}

// snapshot copies every row of the registry's tables except the
// append-only audit log, as a backup would hold them.
type tableRows struct {
	table string
	cols  []string
	rows  [][]any
}

func snapshot(t testing.TB, db *store.DB, reg *registry.Registry) []tableRows {
	t.Helper()
	var out []tableRows
	for _, tab := range reg.Tables() {
		if tab.Name == "audit_log" || tab.Name == "audit_anchor" || tab.Name == "jobs" {
			continue
		}
		rows, err := db.Query(`SELECT * FROM "` + tab.Name + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		tr := tableRows{table: tab.Name, cols: cols}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			tr.rows = append(tr.rows, vals)
		}
		rows.Close()
		out = append(out, tr)
	}
	return out
}

func restore(t testing.TB, db *store.DB, snap []tableRows) {
	t.Helper()
	err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		if db.Engine == store.SQLite {
			tx.Exec(`PRAGMA defer_foreign_keys = ON`)
		} else {
			tx.Exec(`SET CONSTRAINTS ALL DEFERRED`)
		}
		for i := len(snap) - 1; i >= 0; i-- {
			if _, err := tx.Exec(`DELETE FROM "` + snap[i].table + `"`); err != nil {
				return err
			}
		}
		for _, tr := range snap {
			for _, r := range tr.rows {
				ph := make([]string, len(r))
				quoted := make([]string, len(tr.cols))
				for i := range r {
					ph[i] = "$" + itoa(i+1)
					quoted[i] = `"` + tr.cols[i] + `"`
				}
				over := ""
				if db.Engine == store.Postgres && slices.Contains(tr.cols, "id") && tr.table == "activity_member_events" {
					over = " OVERRIDING SYSTEM VALUE"
				}
				if _, err := tx.Exec(`INSERT INTO "`+tr.table+`" (`+strings.Join(quoted, ", ")+`)`+over+` VALUES (`+strings.Join(ph, ", ")+`)`, r...); err != nil {
					return errors.New(tr.table + ": " + err.Error())
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
