package subject_test

import (
	"bytes"
	"context"
	"database/sql"
	"testing"
	"time"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/door/doortest"
	"steward/internal/fault"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

// TestPolicyAcceptances: a subject is bound by the version they were first
// recorded under until they accept a later one; State and States read it,
// an acceptance is recorded once per version, and a merge moves the
// merged subject's acceptances to the survivor.
func TestPolicyAcceptances(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		s := subject.NewStore(db, clk)
		d := doortest.New(t, db, clock.NewFake(t0), nil, s)
		m, err := s.Create(ctx, db, d, door.Subject(), subject.KindMember, "ann@example.org", "signup", 2)
		if err != nil {
			t.Fatal(err)
		}
		bound := func(id string) (int, int) {
			t.Helper()
			st, err := s.State(ctx, db, id)
			if err != nil {
				t.Fatal(err)
			}
			sts, err := s.States(ctx, db, []string{id})
			if err != nil || sts[id] == nil {
				t.Fatalf("States(%s) = %v, %v", id, sts, err)
			}
			return st.BoundVersion, sts[id].BoundVersion
		}
		if one, many := bound(m.ID); one != 2 || many != 2 {
			t.Fatalf("before accepting: bound by %d (State) and %d (States), want 2, the version first recorded under", one, many)
		}
		accept := func(id string, v int, method string) {
			t.Helper()
			if err := s.AcceptPolicy(ctx, db, id, subject.PolicyAcceptance{PolicyVersion: v, PolicyHash: "hash-" + method, Method: method,
				UserAgentFamily: "Firefox", Network: "192.0.2.0/24"}); err != nil {
				t.Fatal(err)
			}
		}
		accept(m.ID, 4, "form")
		clk.Advance(time.Hour)
		accept(m.ID, 4, "api") // again: the first record stays
		if one, many := bound(m.ID); one != 4 || many != 4 {
			t.Errorf("after accepting version 4: bound by %d and %d, want 4", one, many)
		}
		got, err := s.PolicyAcceptances(ctx, db, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].PolicyVersion != 4 || got[0].Method != "form" || got[0].PolicyHash != "hash-form" ||
			got[0].UserAgentFamily != "Firefox" || got[0].Network != "192.0.2.0/24" || !got[0].AcceptedAt.Equal(t0) {
			t.Errorf("acceptances = %+v, want version 4 as first accepted, at %v", got, t0)
		}

		// A guest who accepted versions 4 and 5 is merged into the member:
		// version 4 stays recorded once (the member's), version 5 moves.
		guest, err := s.Create(ctx, db, d, door.Subject(), subject.KindEmailOnly, "guest@example.org", "comment", 1)
		if err != nil {
			t.Fatal(err)
		}
		accept(guest.ID, 4, "email_link")
		accept(guest.ID, 5, "email_link")
		if err := db.InTx(ctx, func(tx *sql.Tx) error { return s.Merge(ctx, tx, guest.ID, m.ID) }); err != nil {
			t.Fatal(err)
		}
		got, _ = s.PolicyAcceptances(ctx, db, m.ID)
		if len(got) != 2 || got[0].PolicyVersion != 4 || got[0].Method != "form" || got[1].PolicyVersion != 5 {
			t.Errorf("acceptances after the merge = %+v, want the member's 4 and the guest's 5", got)
		}
		if left, _ := s.PolicyAcceptances(ctx, db, guest.ID); len(left) != 0 {
			t.Errorf("the merged guest keeps acceptances %+v", left)
		}
		if one, many := bound(guest.ID); one != 5 || many != 5 {
			t.Errorf("the merged id answers bound by %d and %d, want the survivor's 5", one, many)
		}
	})
}

// TestAcceptanceEvidenceSealed: the browser family and network of an
// acceptance are at rest only as ciphertext under the subject's key; the
// subject reads them back; a staff role whose purposes do not reach the
// category is refused, and the refusal is audited; a method no code
// writes is refused before the database.
func TestAcceptanceEvidenceSealed(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := subject.NewStore(db, clock.NewFake(t0))
		d := doortest.New(t, db, clock.NewFake(t0), nil, s)
		m, err := s.Create(ctx, db, d, door.Subject(), subject.KindMember, "ann@example.org", "signup", 1)
		if err != nil {
			t.Fatal(err)
		}
		const ua, network = "Plantedbrowser-8c1e", "Plantednet-5d2f"
		if err := s.AcceptPolicy(ctx, db, m.ID, subject.PolicyAcceptance{PolicyVersion: 2, PolicyHash: "h2", Method: "form",
			UserAgentFamily: ua, Network: network}); err != nil {
			t.Fatal(err)
		}
		raw := storetest.RowBytes(t, db, `SELECT * FROM subject_policy_acceptances WHERE subject_id = $1`, m.ID)
		for _, v := range []string{ua, network} {
			if bytes.Contains(raw, []byte(v)) {
				t.Errorf("the row holds %q in plaintext", v)
			}
		}
		got, err := s.PolicyAcceptances(ctx, db, m.ID)
		if err != nil || len(got) != 1 || got[0].UserAgentFamily != ua || got[0].Network != network {
			t.Fatalf("the subject reads %+v, %v; want the evidence back", got, err)
		}

		var sealed door.Sealed
		if err := db.QueryRowContext(ctx, `SELECT network_sealed FROM subject_policy_acceptances WHERE subject_id = $1`, m.ID).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		v, err := d.Subject(ctx, db, door.Staff("s_staff", "analyst", "measure"), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Open(ctx, "consent", sealed); !fault.Is(err, fault.PurposeDenied) {
			t.Errorf("an analyst opening the evidence: %v, want purpose_denied", err)
		}
		d.Close(ctx)
		entries, err := audit.New(db, clock.NewFake(t0)).ForSubject(ctx, db, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		audited := false
		for _, e := range entries {
			audited = audited || (e.Action == "guard.denied" && e.Actor == "staff:s_staff")
		}
		if !audited {
			t.Errorf("the analyst's refusal is not in the audit log: %+v", entries)
		}

		if err := s.AcceptPolicy(ctx, db, m.ID, subject.PolicyAcceptance{PolicyVersion: 3, PolicyHash: "h3", Method: "carrier pigeon"}); fault.FieldOf(err) != "method" {
			t.Errorf("an unknown method: %v, want a field error on method", err)
		}
	})
}

// TestResealAcceptances: evidence an earlier release kept in plaintext is
// sealed by Reseal and the plaintext emptied; the subject still reads it;
// a second run finds nothing; and after the subject's keys are destroyed
// a plaintext copy that comes back (a restore) is dropped, not sealed.
func TestResealAcceptances(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := subject.NewStore(db, clock.NewFake(t0))
		d := doortest.New(t, db, clock.NewFake(t0), nil, s)
		m, err := s.Create(ctx, db, d, door.Subject(), subject.KindMember, "ann@example.org", "signup", 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO subject_policy_acceptances (subject_id, policy_version, policy_hash, method, ua_family, network, accepted_at)
			VALUES ($1, 2, 'h2', 'form', 'Oldbrowser', '192.0.2.0/24', $2), ($1, 3, 'h3', 'api', '', '', $2)`, m.ID, t0); err != nil {
			t.Fatal(err)
		}
		n, err := s.Reseal(ctx, d)
		if err != nil || n != 1 {
			t.Fatalf("reseal = %d, %v; want the one row with evidence", n, err)
		}
		if raw := storetest.RowBytes(t, db, `SELECT * FROM subject_policy_acceptances`); bytes.Contains(raw, []byte("Oldbrowser")) || bytes.Contains(raw, []byte("192.0.2.0/24")) {
			t.Error("plaintext evidence left after Reseal")
		}
		got, err := s.PolicyAcceptances(ctx, db, m.ID)
		if err != nil || len(got) != 2 || got[0].UserAgentFamily != "Oldbrowser" || got[0].Network != "192.0.2.0/24" || got[1].Network != "" {
			t.Fatalf("after Reseal the subject reads %+v, %v", got, err)
		}
		if n, err := s.Reseal(ctx, d); err != nil || n != 0 {
			t.Errorf("second reseal = %d, %v", n, err)
		}
		if _, err := d.ShredAll(ctx, db, m.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE subject_policy_acceptances SET ua_family = 'Oldbrowser' WHERE subject_id = $1 AND policy_version = 2`, m.ID); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Reseal(ctx, d); err != nil || n != 1 {
			t.Errorf("reseal after erasure = %d, %v", n, err)
		}
		if raw := storetest.RowBytes(t, db, `SELECT * FROM subject_policy_acceptances`); bytes.Contains(raw, []byte("Oldbrowser")) {
			t.Error("the restored plaintext survived Reseal after erasure")
		}
		if got, err := s.PolicyAcceptances(ctx, db, m.ID); err != nil || len(got) != 2 || got[0].UserAgentFamily != "" {
			t.Errorf("after erasure the evidence reads %+v, %v; want it gone", got, err)
		}
	})
}
