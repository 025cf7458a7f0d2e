package consent_test

import (
	"bytes"
	"context"
	"testing"

	"steward/internal/consent"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// Distinctive values planted in every free-text field of a record.
const (
	plantedPoint   = "Plantedpoint-91ab"
	plantedBrowser = "Plantedbrowser-77c3"
	plantedNetwork = "Plantednet-0e5d"
	plantedList    = "list:plantedlist-4f2a"
)

// TestLedgerSealed: a record's purpose, list scope, collection point,
// evidence and receipt are at rest only as ciphertext (the row holds none
// of them, nor the receipt's text); the member reads them back and the
// receipt still verifies; the state in force is still decided from the
// blind indexes; staff whose role may name consent-proof read the proof,
// and a role that may not is refused and audited.
func TestLedgerSealed(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "jmir.yaml")
		id := e.member(t, "ann@example.org")
		rec, err := e.ledger.Change(ctx, consent.Change{SubjectID: id, Purpose: "marketing", Scope: plantedList, State: consent.Given,
			Method: consent.MethodForm, CollectionPoint: plantedPoint,
			Evidence: consent.Evidence{UserAgentFamily: plantedBrowser, Network: plantedNetwork}})
		if err != nil {
			t.Fatal(err)
		}
		raw := storetest.RowBytes(t, db, `SELECT * FROM consent_records WHERE subject_id = $1`, id)
		for _, v := range []string{plantedPoint, plantedBrowser, plantedNetwork, plantedList, "marketing", "consentReceiptID", string(rec.Receipt[:40])} {
			if bytes.Contains(raw, []byte(v)) {
				t.Errorf("the row holds %q in plaintext", v)
			}
		}
		contact := e.policy.CategoryOfField("email")
		if d := e.guard.Decide("marketing", contact, e.state(t, id)); !d.Allowed {
			t.Fatalf("after consenting to a list: %s, want allowed", d.Reason)
		}
		// Withdrawing other lists leaves the planted one in force: the
		// history is read by the indexes, without opening anything, and
		// tells lists apart from the whole purpose.
		for _, other := range []string{"list:other", "list:third"} {
			if _, err := e.ledger.Change(ctx, consent.Change{SubjectID: id, Purpose: "marketing", Scope: other, State: consent.Withdrawn,
				Method: consent.MethodForm, CollectionPoint: "x"}); err != nil {
				t.Fatal(err)
			}
			if d := e.guard.Decide("marketing", contact, e.state(t, id)); !d.Allowed {
				t.Fatalf("after withdrawing %s: %s, want allowed", other, d.Reason)
			}
		}

		hist, err := e.ledger.History(ctx, id)
		if err != nil || len(hist) != 3 {
			t.Fatalf("history = %d records, %v", len(hist), err)
		}
		got := hist[0]
		if got.Purpose != "marketing" || got.Scope != plantedList || got.CollectionPoint != plantedPoint ||
			got.Evidence.UserAgentFamily != plantedBrowser || got.Evidence.Network != plantedNetwork || !bytes.Equal(got.Receipt, rec.Receipt) {
			t.Errorf("the member reads %+v, want the record as given", got)
		}
		if err := consent.VerifyReceipt(e.ledger.Signer().PublicKey(), got.Receipt); err != nil {
			t.Errorf("the opened receipt: %v", err)
		}

		proof, err := e.ledger.Proof(ctx, door.Staff("s_officer", "privacy", "consent-proof"), id)
		if err != nil || len(proof) != 3 || !bytes.Equal(proof[0].Receipt, rec.Receipt) {
			t.Fatalf("privacy staff proving consent: %d records, %v", len(proof), err)
		}
		if _, err := e.ledger.Proof(ctx, door.Staff("s_analyst", "analyst", "consent-proof"), id); !fault.Is(err, fault.PurposeDenied) {
			t.Errorf("an analyst naming consent-proof: %v, want purpose_denied", err)
		}
		if _, err := e.ledger.Proof(ctx, door.Staff("s_analyst", "analyst", "analytics"), id); !fault.Is(err, fault.PurposeDenied) {
			t.Errorf("an analyst reading the ledger for analytics: %v, want purpose_denied", err)
		}
		e.door.Close(ctx)
		n := 0
		entries, err := e.audit.ForSubject(ctx, db, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range entries {
			if a.Action == "guard.denied" && a.Actor == "staff:s_analyst" {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d audited refusals of the analyst, want 2", n)
		}
	})
}

// TestResealLedger: records an earlier release kept in plaintext are
// sealed and indexed by Reseal, the plaintext emptied; the member reads
// them, the receipt verifies and the state in force is decided from them;
// a second run finds nothing; after the subject's keys are destroyed, a
// plaintext copy that comes back is dropped.
func TestResealLedger(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "jmir.yaml")
		id := e.member(t, "ann@example.org")
		rec, err := e.ledger.Change(ctx, consent.Change{SubjectID: id, Purpose: "marketing", Scope: plantedList, State: consent.Given,
			Method: consent.MethodForm, CollectionPoint: plantedPoint,
			Evidence: consent.Evidence{UserAgentFamily: plantedBrowser, Network: plantedNetwork}})
		if err != nil {
			t.Fatal(err)
		}
		legacy := func() {
			t.Helper()
			if _, err := db.ExecContext(ctx, `UPDATE consent_records SET purpose = 'marketing', scope = $2, collection_point = $3, ua_family = $4,
				network = $5, receipt = $6, purpose_sealed = NULL, purpose_index = NULL, scope_sealed = NULL, scope_index = NULL,
				collection_point_sealed = NULL, ua_family_sealed = NULL, network_sealed = NULL, receipt_sealed = NULL WHERE id = $1`,
				rec.ID, plantedList, plantedPoint, plantedBrowser, plantedNetwork, string(rec.Receipt)); err != nil {
				t.Fatal(err)
			}
		}
		legacy()
		n, err := e.ledger.Reseal(ctx)
		if err != nil || n != 1 {
			t.Fatalf("reseal = %d, %v; want the one record", n, err)
		}
		raw := storetest.RowBytes(t, db, `SELECT * FROM consent_records`)
		for _, v := range []string{plantedPoint, plantedBrowser, plantedNetwork, plantedList, "marketing"} {
			if bytes.Contains(raw, []byte(v)) {
				t.Errorf("after Reseal the row holds %q in plaintext", v)
			}
		}
		hist, err := e.ledger.History(ctx, id)
		if err != nil || len(hist) != 1 || hist[0].CollectionPoint != plantedPoint || hist[0].Scope != plantedList || hist[0].Purpose != "marketing" {
			t.Fatalf("after Reseal the member reads %+v, %v", hist, err)
		}
		if err := consent.VerifyReceipt(e.ledger.Signer().PublicKey(), hist[0].Receipt); err != nil {
			t.Errorf("the re-sealed receipt: %v", err)
		}
		// The re-sealed record counts: withdrawing another list leaves its
		// list in force, which only holds if it is found by its indexes;
		// withdrawing its own list then ends the consent.
		contact := e.policy.CategoryOfField("email")
		for _, c := range []struct {
			scope string
			want  bool
		}{{"list:other", true}, {plantedList, false}} {
			if _, err := e.ledger.Change(ctx, consent.Change{SubjectID: id, Purpose: "marketing", Scope: c.scope, State: consent.Withdrawn,
				Method: consent.MethodEmailLink, CollectionPoint: "x"}); err != nil {
				t.Fatal(err)
			}
			if d := e.guard.Decide("marketing", contact, e.state(t, id)); d.Allowed != c.want {
				t.Errorf("after withdrawing %s: allowed %v, want %v", c.scope, d.Allowed, c.want)
			}
		}
		if n, err := e.ledger.Reseal(ctx); err != nil || n != 0 {
			t.Errorf("second reseal = %d, %v", n, err)
		}
		if _, err := e.door.ShredAll(ctx, db, id); err != nil {
			t.Fatal(err)
		}
		legacy()
		if n, err := e.ledger.Reseal(ctx); err != nil || n != 1 {
			t.Errorf("reseal after erasure = %d, %v", n, err)
		}
		if raw := storetest.RowBytes(t, db, `SELECT * FROM consent_records`); bytes.Contains(raw, []byte(plantedPoint)) {
			t.Error("the restored plaintext survived Reseal after erasure")
		}
	})
}
