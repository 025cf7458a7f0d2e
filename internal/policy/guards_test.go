package policy

import (
	"context"
	"testing"
	"time"

	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestGuards: after a change that reduces rights, a subject bound by the
// earlier version gets the stricter of the two guards until they are bound
// by the new one; a minor change after it asks nothing more; a policy that
// does not ask for acceptance gives everyone the guard in force.
func TestGuards(t *testing.T) {
	storetest.Each(t, []store.Migrations{Migrations()}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		text := exampleText(t, "mixi.yaml")
		publish := func(src string, at time.Duration) Published {
			t.Helper()
			p := mustParse(t, "mixi.yaml", src)
			v, _, err := Publish(ctx, db, p, t0.Add(at))
			if err != nil {
				t.Fatal(err)
			}
			return Published{Policy: p, Version: v}
		}
		publish(text, 0)
		// Version 2 drops a right and lets a purpose use one more category.
		reduced := edit(t, edit(t, text, "  portability: {}\n", ""),
			"uses: [activity, location, support]", "uses: [activity, location, support, identity]")
		v2 := publish(reduced, time.Hour)
		if !v2.Version.ReducesRights {
			t.Fatalf("version 2 = %+v, want a reduction of rights", v2.Version)
		}
		identity := v2.Policy.CategoryOfField("name")
		allowed := func(g *Guards, bound int) bool {
			t.Helper()
			st := &State{SubjectID: "s_1", BoundVersion: bound, Consents: map[string]bool{}, Objections: map[string]bool{}}
			guard, err := g.For(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			return guard.Decide("maintain-improve", identity, st).Allowed
		}
		unaccepted := func(g *Guards, bound int) []int {
			t.Helper()
			vs, err := g.Unaccepted(ctx, bound)
			if err != nil {
				t.Fatal(err)
			}
			var out []int
			for _, v := range vs {
				out = append(out, v.Number)
			}
			return out
		}

		g := NewGuards(db, v2, nil, nil)
		for _, c := range []struct {
			bound   int
			allowed bool
			pending int
		}{
			{0, true, 1}, // bound by nothing known: the version in force
			{1, false, 1},
			{2, true, 0},
		} {
			if got := allowed(g, c.bound); got != c.allowed {
				t.Errorf("bound by %d: the new use allowed %v, want %v", c.bound, got, c.allowed)
			}
			if got := unaccepted(g, c.bound); len(got) != c.pending || (c.pending == 1 && got[0] != 2) {
				t.Errorf("Unaccepted(%d) = %v, want %d change(s)", c.bound, got, c.pending)
			}
		}
		if !g.Current().Decide("maintain-improve", identity, &State{}).Allowed {
			t.Error("Current does not allow what version 2 allows")
		}

		// A minor change on top: the reduction still waits for whoever is
		// bound by version 1, and nothing new for whoever accepted 2.
		v3 := publish(edit(t, reduced, "  activity: 13 months", "  activity: 6 months"), 2*time.Hour)
		g3 := NewGuards(db, v3, nil, nil)
		if allowed(g3, 1) || !allowed(g3, 2) || !allowed(g3, 3) {
			t.Error("after a minor change: want the stricter guard for version 1 only")
		}
		if got := unaccepted(g3, 1); len(got) != 1 || got[0] != 2 {
			t.Errorf("Unaccepted(1) after a minor change = %v, want [2]", got)
		}

		// Without significant_requires_consent no change waits.
		lax := Published{Policy: mustParse(t, "mixi.yaml", edit(t, reduced, "  significant_requires_consent: true", "  significant_requires_consent: false")),
			Version: v2.Version}
		gl := NewGuards(db, lax, nil, nil)
		if !allowed(gl, 1) || len(unaccepted(gl, 1)) != 0 {
			t.Error("a policy that asks no acceptance: want the guard in force for everyone")
		}
	})
}
