// Package doortest gives tests a door on their database: the policy
// published (when no version is yet), the guards of it, the subject store
// as the state loader, an audit log, and a fixed master key.
package doortest

import (
	"bytes"
	"context"
	"io/fs"
	"testing"

	"steward/examples"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/subject"
)

// Master is the test master key: 32 bytes of 7, as the web tests use.
func Master(t testing.TB) *door.Master {
	t.Helper()
	m, err := door.NewMaster(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// New opens a door on db for pol (nil: the embedded examples/mixi.yaml)
// and, as the app does, hands it to the subject store it reads states
// from. subjects may be nil (a store on db is made).
func New(t testing.TB, db *store.DB, clk clock.Clock, pol *policy.Policy, subjects *subject.Store) *door.Door {
	t.Helper()
	ctx := context.Background()
	if pol == nil {
		data, err := fs.ReadFile(examples.FS, "mixi.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if pol, err = policy.Parse("mixi.yaml", data); err != nil {
			t.Fatal(err)
		}
	}
	v, err := policy.Latest(ctx, db)
	if fault.Is(err, fault.NotFound) {
		v, _, err = policy.Publish(ctx, db, pol, clk.Now())
	}
	if err != nil {
		t.Fatalf("doortest: policy version: %v", err)
	}
	if subjects == nil {
		subjects = subject.NewStore(db, clk)
	}
	al := audit.New(db, clk)
	d, err := door.New(door.Deps{DB: db, Clock: clk, Policy: pol, Guards: policy.NewGuards(db, policy.Published{Policy: pol, Version: v}, al, nil),
		States: subjects, Audit: al, Master: Master(t)})
	if err != nil {
		t.Fatalf("doortest: %v", err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	subjects.SealWith(d)
	return d
}

// Email opens a subject's address for the subject's own request ("" when
// none), failing the test on an error.
func Email(t testing.TB, d *door.Door, q store.Q, sub subject.Subject) string {
	t.Helper()
	v, err := d.Subject(context.Background(), q, door.Subject(), sub.ID)
	if err != nil {
		t.Fatalf("doortest: view of %s: %v", sub.ID, err)
	}
	e, err := sub.Email(context.Background(), v)
	if err != nil {
		t.Fatalf("doortest: email of %s: %v", sub.ID, err)
	}
	return e
}

// Migrations are the modules a door needs: published policy versions,
// subjects, the keys and the audit log, for tests of packages that cannot
// use the whole schema.
func Migrations() []store.Migrations {
	return []store.Migrations{policy.Migrations(), subject.Migrations(), door.Migrations(), audit.Migrations()}
}
