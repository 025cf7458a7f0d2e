package subject_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/door/doortest"
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
		accept(guest.ID, 4, "link")
		accept(guest.ID, 5, "link")
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
