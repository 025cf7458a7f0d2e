// Package storetest gives tests a fresh database on either engine: SQLite
// in a temporary directory, and PostgreSQL in a schema of its own (so test
// packages run in parallel) when STEWARD_TEST_DATABASE_URL is set.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"steward/internal/store"
)

// EnvURL names the variable that points tests at a PostgreSQL server.
const EnvURL = "STEWARD_TEST_DATABASE_URL"

// Each runs fn once per engine as subtests named "sqlite" and "postgres",
// each with a fresh, migrated database. The PostgreSQL subtest skips with a
// clear message when STEWARD_TEST_DATABASE_URL is unset.
func Each(t *testing.T, mods []store.Migrations, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t, mods)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t, mods)) })
}

// EachB is Each for benchmarks: fn runs once per engine as sub-benchmarks
// "sqlite" and "postgres", each with a fresh, migrated database.
func EachB(b *testing.B, mods []store.Migrations, fn func(b *testing.B, db *store.DB)) {
	b.Helper()
	b.Run("sqlite", func(b *testing.B) { fn(b, SQLite(b, mods)) })
	b.Run("postgres", func(b *testing.B) { fn(b, Postgres(b, mods)) })
}

// SQLite returns a migrated SQLite database in a temporary directory.
func SQLite(t testing.TB, mods []store.Migrations) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	migrate(t, db, mods)
	return db
}

// PostgresURL returns a URL of a fresh, empty schema on the test server,
// dropped when the test ends, or skips the test when no server is
// configured.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s (for example postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", EnvURL)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		a.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Postgres returns a migrated PostgreSQL database in a fresh schema, or
// skips the test when no server is configured.
func Postgres(t testing.TB, mods []store.Migrations) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), PostgresURL(t), "")
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	migrate(t, db, mods)
	return db
}

func migrate(t testing.TB, db *store.DB, mods []store.Migrations) {
	t.Helper()
	if len(mods) == 0 {
		return
	}
	if _, err := db.Migrate(context.Background(), mods); err != nil {
		t.Fatalf("migrate %s: %v", db.Engine, err)
	}
}
