package rights_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"steward/internal/fault"
	"steward/internal/rights"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// Distinctive values planted in what a member writes in a request.
const (
	plantedReason     = "Plantedreason-a71f"
	plantedCorrection = "+44 1632 960777"
)

// TestRequestWordsSealed: the reason and corrections of a request are at
// rest only as ciphertext; the member reads them (their request, their
// access report); staff whose role may answer requests read them on
// review, a role that may not is refused and audited, and the queue shows
// none of them; an account erasure clears them, keeps the record of the
// request and destroys the key that sealed them.
func TestRequestWordsSealed(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnvWith(t, db, "mixi.yaml", envOpts{}, mixiPhoneReviewed(t))
		ann := e.member("ann@example.org")
		r := e.file(ann, rights.Filing{Type: rights.Rectification, Corrections: map[string]string{"phone": plantedCorrection}, Reason: plantedReason})
		raw := storetest.RowBytes(t, db, `SELECT * FROM rights_requests WHERE subject_id = $1`, ann)
		for _, v := range []string{plantedReason, plantedCorrection} {
			if bytes.Contains(raw, []byte(v)) {
				t.Errorf("the request's row holds %q in plaintext", v)
			}
		}
		if got := e.request(r.ID); got.Reason != "" || got.Corrections != nil {
			t.Errorf("Get opened the words: %q %v", got.Reason, got.Corrections)
		}

		// The member reads her own words.
		mine, err := e.rights.Mine(e.ctx, ann, r.ID)
		if err != nil || mine.Reason != plantedReason || mine.Corrections["phone"] != plantedCorrection {
			t.Errorf("Mine = %q %v, %v", mine.Reason, mine.Corrections, err)
		}
		list, err := e.rights.List(e.ctx, ann)
		if err != nil || len(list) != 1 || list[0].Reason != plantedReason {
			t.Errorf("List = %+v, %v", list, err)
		}
		row := e.report(ann).set("privacy_requests").Rows[0].Fields
		if row["reason"] != plantedReason || !bytes.Contains([]byte(fmt.Sprint(row["corrections"])), []byte(plantedCorrection)) {
			t.Errorf("the access report shows reason %v and corrections %v", row["reason"], row["corrections"])
		}

		// Staff: privacy and support answer requests under mixi; admin and
		// analyst may not read what people wrote.
		for _, role := range []string{"privacy", "support"} {
			got, err := e.rights.Review(e.ctx, rights.Staff{ID: "s_" + role, Role: role}, r.ID)
			if err != nil || got.Reason != plantedReason || got.Corrections["phone"] != plantedCorrection {
				t.Errorf("%s reviewing: %q %v, %v", role, got.Reason, got.Corrections, err)
			}
		}
		for _, role := range []string{"admin", "analyst"} {
			if got, err := e.rights.Review(e.ctx, rights.Staff{ID: "s_" + role, Role: role}, r.ID); !fault.Is(err, fault.PurposeDenied) || got.Reason != "" {
				t.Errorf("%s reviewing: %q, %v; want purpose_denied", role, got.Reason, err)
			}
		}
		if _, err := e.rights.Review(e.ctx, rights.Staff{ID: "s_nobody"}, r.ID); !fault.Is(err, fault.Forbidden) {
			t.Errorf("staff without a role reviewing: %v, want forbidden", err)
		}
		e.door.Close(e.ctx)
		denied := map[string]bool{}
		entries, err := e.audit.ForSubject(e.ctx, db, ann)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range entries {
			if a.Action == "guard.denied" {
				denied[a.Actor] = true
			}
		}
		if !denied["staff:s_admin"] || !denied["staff:s_analyst"] || denied["staff:s_privacy"] {
			t.Errorf("audited refusals: %v; want admin's and analyst's only", denied)
		}
		q, err := e.rights.Queue(e.ctx, rights.Staff{ID: "s_privacy", Role: "privacy"}, false, 0)
		if err != nil || len(q) != 1 || q[0].Reason != "" || q[0].Corrections != nil {
			t.Errorf("the queue: %+v, %v; want the request without the words", q, err)
		}

		// Erasure of the account: the words go with their key, the record
		// of the request stays.
		er := e.file(ann, rights.Filing{Type: rights.Erasure, Scope: "account", Reason: plantedReason + "-bye"})
		e.run()
		if got := e.request(er.ID); got.Status != rights.StatusCompleted {
			t.Fatalf("erasure %s: %s", got.Status, got.Result)
		}
		out := outcomeOf(t, e.request(er.ID))
		if !slices.Contains(out.KeysDestroyed, "support") {
			t.Errorf("keys destroyed %v, want support among them", out.KeysDestroyed)
		}
		if n := e.count(`SELECT COUNT(*) FROM rights_requests WHERE subject_id = $1 AND (reason_sealed IS NOT NULL OR corrections_sealed IS NOT NULL)`, ann); n != 0 {
			t.Errorf("%d requests keep sealed words after the erasure", n)
		}
		if n := e.count(`SELECT COUNT(*) FROM rights_requests WHERE subject_id = $1`, ann); n != 2 {
			t.Errorf("%d request records after the erasure, want both kept", n)
		}
		if shredded, err := e.door.Shredded(e.ctx, db, ann, "support"); err != nil || !shredded {
			t.Errorf("the support key after the erasure: shredded %v, %v", shredded, err)
		}
	})
}

// TestRequestAfterWordsErased: after an erasure of the category her
// requests' words belong to, a member still files a request with a
// reason: it is sealed under a new key and reads back, while the words
// erased before stay gone.
func TestRequestAfterWordsErased(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "mixi.yaml", envOpts{})
		ann := e.member("ann@example.org")
		first := e.file(ann, rights.Filing{Type: rights.Objection, Purposes: []string{"maintain-improve"}, Reason: "first words"})
		e.file(ann, rights.Filing{Type: rights.Erasure, Scope: "category", Categories: []string{"support"}})
		e.run()
		if shredded, _ := e.door.Shredded(e.ctx, db, ann, "support"); !shredded {
			t.Fatal("the category erasure left the support key")
		}
		again := e.file(ann, rights.Filing{Type: rights.Objection, Purposes: []string{"measure"}, Reason: "second words"})
		if got, err := e.rights.Mine(e.ctx, ann, again.ID); err != nil || got.Reason != "second words" {
			t.Errorf("the new request reads %q, %v", got.Reason, err)
		}
		if got, err := e.rights.Mine(e.ctx, ann, first.ID); err != nil || got.Reason != "" {
			t.Errorf("the erased request reads %q, %v; want nothing", got.Reason, err)
		}
	})
}

// TestResealRequests: words an earlier release kept in plaintext are
// sealed by Reseal and the plaintext emptied; the member reads them; a
// second run finds nothing; after the subject's keys are destroyed, a
// plaintext copy that comes back is dropped.
func TestResealRequests(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "mixi.yaml", envOpts{})
		ann := e.member("ann@example.org")
		r := e.file(ann, rights.Filing{Type: rights.Objection, Purposes: []string{"maintain-improve"}, Reason: "x"})
		legacy := func() {
			t.Helper()
			if _, err := db.ExecContext(e.ctx, `UPDATE rights_requests SET reason = $2, corrections = $3, reason_sealed = NULL, corrections_sealed = NULL WHERE id = $1`,
				r.ID, plantedReason, `{"phone":"`+plantedCorrection+`"}`); err != nil {
				t.Fatal(err)
			}
		}
		legacy()
		n, err := e.rights.Reseal(e.ctx)
		if err != nil || n != 1 {
			t.Fatalf("reseal = %d, %v; want the one request", n, err)
		}
		raw := storetest.RowBytes(t, db, `SELECT * FROM rights_requests`)
		if bytes.Contains(raw, []byte(plantedReason)) || bytes.Contains(raw, []byte(plantedCorrection)) {
			t.Error("plaintext left after Reseal")
		}
		if got, err := e.rights.Mine(e.ctx, ann, r.ID); err != nil || got.Reason != plantedReason || got.Corrections["phone"] != plantedCorrection {
			t.Errorf("after Reseal the member reads %q %v, %v", got.Reason, got.Corrections, err)
		}
		if n, err := e.rights.Reseal(e.ctx); err != nil || n != 0 {
			t.Errorf("second reseal = %d, %v", n, err)
		}
		if _, err := e.door.ShredAll(e.ctx, db, ann); err != nil {
			t.Fatal(err)
		}
		legacy()
		if n, err := e.rights.Reseal(e.ctx); err != nil || n != 1 {
			t.Errorf("reseal after erasure = %d, %v", n, err)
		}
		if raw := storetest.RowBytes(t, db, `SELECT * FROM rights_requests`); bytes.Contains(raw, []byte(plantedReason)) {
			t.Error("the restored plaintext survived Reseal after erasure")
		}
	})
}
