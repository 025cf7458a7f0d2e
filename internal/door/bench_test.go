package door_test

import (
	"fmt"
	"testing"

	"steward/internal/door"
	"steward/internal/schema"
	"steward/internal/store/storetest"
)

// The door's costs, on SQLite (record in BENCHMARKS.md):
//
//	go test -run '^$' -bench . -benchmem ./internal/door/

func benchEnv(b *testing.B) *env {
	return newEnv(b, storetest.SQLite(b, schema.Migrations()), "mixi.yaml")
}

// BenchmarkDecision is the guard's answer for one category of a subject
// whose state and key the view already holds (goal < 1 µs, 0 allocs).
func BenchmarkDecision(b *testing.B) {
	e := benchEnv(b)
	v := e.view(door.System("provide-service"), e.subject("ann@example.org"))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.AllowedCategory(e.ctx, "identity"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen opens one sealed value with the view's key loaded.
func BenchmarkOpen(b *testing.B) {
	e := benchEnv(b)
	v := e.view(door.Subject(), e.subject("ann@example.org"))
	s, err := v.Seal(e.ctx, "name", "Ann Example")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Open(e.ctx, "name", s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubjectView is the per-request cost: a view (the subject's
// state from the database, the guard) and one value opened (the
// subject's keys from the database).
func BenchmarkSubjectView(b *testing.B) {
	e := benchEnv(b)
	id := e.subject("ann@example.org")
	s, err := e.view(door.Subject(), id).Seal(e.ctx, "name", "Ann Example")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		v, err := e.door.Subject(e.ctx, e.db, door.Subject(), id)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Open(e.ctx, "name", s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatch500 is a page of a list: the states and keys of 500
// subjects, one value opened for each (goal < 5 ms).
func BenchmarkBatch500(b *testing.B) {
	e := benchEnv(b)
	ids := make([]string, 500)
	sealed := make([]door.Sealed, 500)
	for i := range ids {
		ids[i] = e.subject(fmt.Sprintf("m%d@example.org", i))
		s, err := e.view(door.Subject(), ids[i]).Seal(e.ctx, "name", fmt.Sprint("Member ", i))
		if err != nil {
			b.Fatal(err)
		}
		sealed[i] = s
	}
	b.ReportAllocs()
	for b.Loop() {
		batch, err := e.door.Subjects(e.ctx, e.db, door.System("provide-service"), ids)
		if err != nil {
			b.Fatal(err)
		}
		for i, id := range ids {
			v, err := batch.View(id)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := v.Open(e.ctx, "name", sealed[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkBlindIndexLookup finds a subject by address among 1,000: the
// keyed index of the normalised address, then one indexed query.
func BenchmarkBlindIndexLookup(b *testing.B) {
	e := benchEnv(b)
	for i := range 1000 {
		e.subject(fmt.Sprintf("m%d@example.org", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.subjects.FindByEmail(e.ctx, e.db, e.door, "m500@example.org"); err != nil {
			b.Fatal(err)
		}
	}
}
