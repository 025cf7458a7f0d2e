package subject_test

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"testing"

	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/door/doortest"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

// TestStatesMatchesState: the batch read answers exactly what State and
// Get answer one by one, for live, merged, erased, restricted and unknown
// subjects, with duplicates in the request and across more than one
// query's worth of ids.
func TestStatesMatchesState(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := subject.NewStore(db, clock.NewFake(t0))
		d := doortest.New(t, db, clock.NewFake(t0), nil, s)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		var ids []string
		// 520 plain subjects: more than one IN list of 500.
		for i := range 520 {
			sub, err := s.Create(ctx, db, d, door.Subject(), subject.KindEmailOnly, fmt.Sprintf("p%d@example.org", i), "newsletter", 1)
			must(err)
			ids = append(ids, sub.ID)
			if i%3 == 0 {
				must(s.SetConsent(ctx, db, sub.ID, "marketing", true))
			}
		}
		rich, err := s.Create(ctx, db, d, door.Subject(), subject.KindMember, "rich@example.org", "signup", 1)
		must(err)
		must(s.SetConsent(ctx, db, rich.ID, "marketing", true))
		must(s.SetConsent(ctx, db, rich.ID, "analytics", true))
		must(s.SetConsent(ctx, db, rich.ID, "analytics", false))
		must(s.SetObjection(ctx, db, rich.ID, "direct-marketing", true))
		must(s.SetRestriction(ctx, db, rich.ID, true, []string{"payment", "contact"}))
		must(s.SetMarketingSuppressed(ctx, db, rich.ID, true))
		must(s.SetLegalHold(ctx, db, rich.ID, true, "court order 12"))

		guest, _, err := s.EnsureByEmail(ctx, db, d, door.Subject(), "guest@example.org", "comment", 1)
		must(err)
		must(s.SetObjection(ctx, db, guest.ID, "marketing", true))
		member, err := s.Create(ctx, db, d, door.Subject(), subject.KindMember, "", "signup", 2)
		must(err)
		must(db.InTx(ctx, func(tx *sql.Tx) error { return s.Merge(ctx, tx, guest.ID, member.ID) }))

		erased, err := s.Create(ctx, db, d, door.Subject(), subject.KindEmailOnly, "gone@example.org", "comment", 1)
		must(err)
		must(s.SetConsent(ctx, db, erased.ID, "marketing", true))
		must(s.Delete(ctx, db, erased.ID))

		ask := append([]string{rich.ID, guest.ID, member.ID, erased.ID, "s_nosuchsubject", rich.ID, guest.ID}, ids...)
		states, err := s.States(ctx, db, ask)
		must(err)
		subs, err := s.Subjects(ctx, db, ask)
		must(err)
		for _, id := range ask {
			want, werr := s.State(ctx, db, id)
			got, ok := states[id]
			if werr != nil {
				if ok {
					t.Errorf("States[%s] = %+v, want absent (State: %v)", id, got, werr)
				}
			} else if !ok || !reflect.DeepEqual(got, want) {
				t.Errorf("States[%s] = %+v, want %+v", id, got, want)
			}
			wantSub, gerr := s.Get(ctx, db, id)
			gotSub, ok := subs[id]
			if gerr != nil {
				if ok {
					t.Errorf("Subjects[%s] present, want absent (Get: %v)", id, gerr)
				}
			} else if !ok || !reflect.DeepEqual(gotSub, wantSub) {
				t.Errorf("Subjects[%s] = %+v, want %+v", id, gotSub, wantSub)
			}
		}
		both, bothSubs, err := s.StatesAndSubjects(ctx, db, ask)
		must(err)
		if !reflect.DeepEqual(both, states) || !reflect.DeepEqual(bothSubs, subs) {
			t.Errorf("StatesAndSubjects differs from States and Subjects")
		}
		if got := states[guest.ID]; got == nil || got.SubjectID != member.ID || !got.Objections["marketing"] {
			t.Errorf("a merged id: state %+v, want the survivor's with the objection", got)
		}
		if got := states[rich.ID]; got == nil || !got.LegalHold || !got.MarketingSuppressed || got.Consents["analytics"] {
			t.Errorf("rich state %+v", got)
		}
		if len(states) != len(ask)-3 || len(subs) != len(ask)-3 {
			t.Errorf("States has %d entries and Subjects %d, want %d each (duplicates once, unknown absent)", len(states), len(subs), len(ask)-3)
		}
		if st, err := s.States(ctx, db, nil); err != nil || len(st) != 0 {
			t.Errorf("States(nil) = %v, %v", st, err)
		}
		// Inside a transaction too (a campaign batch reads in its own).
		must(db.InTx(ctx, func(tx *sql.Tx) error {
			st, err := s.States(ctx, tx, []string{rich.ID})
			if err == nil && st[rich.ID] == nil {
				err = fmt.Errorf("no state in a transaction")
			}
			return err
		}))
	})
}

// TestListWithEmail pages through the live subjects that have an address,
// in id order, leaving out merged, erased and address-less ones.
func TestListWithEmail(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := subject.NewStore(db, clock.NewFake(t0))
		d := doortest.New(t, db, clock.NewFake(t0), nil, s)
		want := map[string]bool{}
		for i := range 7 {
			sub, err := s.Create(ctx, db, d, door.Subject(), subject.KindEmailOnly, fmt.Sprintf("l%d@example.org", i), "newsletter", 1)
			if err != nil {
				t.Fatal(err)
			}
			want[sub.ID] = true
		}
		noMail, _ := s.Create(ctx, db, d, door.Subject(), subject.KindMember, "", "signup", 1)
		gone, _ := s.Create(ctx, db, d, door.Subject(), subject.KindEmailOnly, "gone@example.org", "comment", 1)
		if err := s.Delete(ctx, db, gone.ID); err != nil {
			t.Fatal(err)
		}
		guest, _, _ := s.EnsureByEmail(ctx, db, d, door.Subject(), "guest@example.org", "comment", 1)
		if err := db.InTx(ctx, func(tx *sql.Tx) error { return s.Merge(ctx, tx, guest.ID, noMail.ID) }); err != nil {
			t.Fatal(err)
		}
		want[noMail.ID] = true // it took the guest's address
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			page, err := s.ListWithEmail(ctx, db, after, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			for _, sub := range page {
				if !sub.HasEmail || sub.MergedInto != "" || sub.Erased() {
					t.Errorf("listed %+v", sub)
				}
				if len(got) > 0 && sub.ID <= got[len(got)-1] {
					t.Errorf("ids out of order: %s after %s", sub.ID, got[len(got)-1])
				}
				got = append(got, sub.ID)
			}
			after = page[len(page)-1].ID
		}
		if len(got) != len(want) {
			t.Fatalf("listed %d subjects, want %d", len(got), len(want))
		}
		for _, id := range got {
			if !want[id] {
				t.Errorf("listed %s, which should not be", id)
			}
		}
	})
}
