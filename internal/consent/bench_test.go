package consent_test

import (
	"context"
	"fmt"
	"testing"

	"steward/internal/consent"
	"steward/internal/store/storetest"
)

// BenchmarkGuardConsentLookup is the per-recipient check of a campaign:
// the guard deciding a consent-based direct-marketing purpose on a state
// already loaded. Target: under 1 µs, no allocation.
//
//	go test -run '^$' -bench GuardConsentLookup -benchmem ./internal/consent/
func BenchmarkGuardConsentLookup(b *testing.B) {
	db := storetest.SQLite(b, mods())
	e := newEnv(b, db, "jmir.yaml")
	id := e.member(b, "bench@example.org")
	if _, err := e.ledger.Change(context.Background(), consent.Change{SubjectID: id, Purpose: "third-party-marketing",
		State: consent.Given, Method: consent.MethodForm, CollectionPoint: "x"}); err != nil {
		b.Fatal(err)
	}
	st := e.state(b, id)
	contact := e.policy.CategoryOfField("email")
	if !e.guard.Decide("third-party-marketing", contact, st).Allowed {
		b.Fatal("consent not in force")
	}
	b.Run("allowed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !e.guard.Decide("third-party-marketing", contact, st).Allowed {
				b.Fatal("denied")
			}
		}
	})
	b.Run("consent-missing", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if e.guard.Decide("marketing", contact, st).Allowed {
				b.Fatal("allowed")
			}
		}
	})
}

// BenchmarkRecord is one consent change: ledger row, signed receipt,
// subject state and audit entry in one transaction (cycling over 200
// members, so histories stay as short as real ones).
func BenchmarkRecord(b *testing.B) {
	db := storetest.SQLite(b, mods())
	e := newEnv(b, db, "jmir.yaml")
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = e.member(b, fmt.Sprintf("rec%d@example.org", i))
	}
	states := []consent.State{consent.Given, consent.Withdrawn}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := e.ledger.Change(context.Background(), consent.Change{SubjectID: ids[i%len(ids)], Purpose: "marketing",
			State: states[(i/len(ids))%2], Method: consent.MethodAPI, CollectionPoint: "bench"}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
