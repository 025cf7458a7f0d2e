package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"steward/internal/store"
	"steward/internal/store/storetest"
)

func testMods() []store.Migrations {
	return []store.Migrations{{Module: "alpha", FS: fstest.MapFS{
		"0001_things.sql":        {Data: []byte(`CREATE TABLE things (id TEXT PRIMARY KEY, at TIMESTAMP NOT NULL, blob BYTEA, ok BOOLEAN NOT NULL DEFAULT FALSE)`)},
		"0002_more.sqlite.sql":   {Data: []byte(`CREATE TABLE counters (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL)`)},
		"0002_more.postgres.sql": {Data: []byte(`CREATE TABLE counters (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n INTEGER NOT NULL)`)},
	}}}
}

func TestStorage(t *testing.T) {
	storetest.Each(t, testMods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t.Run("round trip of time, bytes and booleans", func(t *testing.T) {
			at := time.Date(2026, 1, 31, 23, 59, 58, 123456000, time.UTC)
			if _, err := db.ExecContext(ctx, `INSERT INTO things (id, at, blob, ok) VALUES ($1, $2, $3, $4)`, "a", at, []byte{0, 1, 255}, true); err != nil {
				t.Fatal(err)
			}
			var got time.Time
			var blob []byte
			var ok bool
			if err := db.QueryRowContext(ctx, `SELECT at, blob, ok FROM things WHERE id = $1 AND at <= $2`, "a", at).Scan(&got, &blob, &ok); err != nil {
				t.Fatal(err)
			}
			if !got.Equal(at) || len(blob) != 3 || blob[2] != 255 || !ok {
				t.Fatalf("got %v %v %v, want %v [0 1 255] true", got, blob, ok, at)
			}
		})
		t.Run("transaction rolls back on error", func(t *testing.T) {
			boom := errors.New("boom")
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO things (id, at) VALUES ($1, $2)`, "rolled", time.Now().UTC()); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("InTx error = %v, want boom", err)
			}
			var n int
			db.QueryRowContext(ctx, `SELECT COUNT(*) FROM things WHERE id = 'rolled'`).Scan(&n)
			if n != 0 {
				t.Fatalf("rolled-back row is present")
			}
		})
		t.Run("unique violation is recognised", func(t *testing.T) {
			_, err := db.ExecContext(ctx, `INSERT INTO things (id, at) VALUES ($1, $2)`, "a", time.Now().UTC())
			if !store.IsUniqueViolation(err) {
				t.Fatalf("IsUniqueViolation(%v) = false", err)
			}
		})
		t.Run("migrate again is a no-op and the schema checks", func(t *testing.T) {
			n, err := db.Migrate(ctx, testMods())
			if err != nil || n != 0 {
				t.Fatalf("Migrate again = %d, %v; want 0, nil", n, err)
			}
			if err := db.CheckSchema(ctx, testMods()); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("a schema from a newer binary is refused", func(t *testing.T) {
			older := []store.Migrations{{Module: "alpha", FS: fstest.MapFS{"0001_things.sql": testMods()[0].FS.(fstest.MapFS)["0001_things.sql"]}}}
			if err := db.CheckSchema(ctx, older); err == nil {
				t.Fatal("CheckSchema accepted a database newer than the binary")
			}
			if _, err := db.Migrate(ctx, older); err == nil {
				t.Fatal("Migrate accepted a database newer than the binary")
			}
			if err := db.CheckSchema(ctx, nil); err == nil {
				t.Fatal("CheckSchema accepted a database with an unknown module")
			}
		})
		t.Run("columns are listed", func(t *testing.T) {
			cols, err := db.Columns(ctx)
			if err != nil {
				t.Fatal(err)
			}
			found := map[string]bool{}
			for _, c := range cols {
				found[c.Table+"."+c.Name] = true
			}
			for _, want := range []string{"things.id", "things.at", "counters.n", "schema_migrations.module"} {
				if !found[want] {
					t.Errorf("Columns lacks %s", want)
				}
			}
		})
	})
}

// Several processes starting together must not apply a migration twice.
func TestConcurrentMigrate(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			var dbURL, dir string
			if engine == "postgres" {
				dbURL = storetest.PostgresURL(t)
			} else {
				dir = t.TempDir()
			}
			var wg sync.WaitGroup
			errs := make([]error, 4)
			counts := make([]int, 4)
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					db, err := store.Open(context.Background(), dbURL, dir)
					if err != nil {
						errs[i] = err
						return
					}
					defer db.Close()
					counts[i], errs[i] = db.Migrate(context.Background(), testMods())
				}()
			}
			wg.Wait()
			total := 0
			for i := range 4 {
				if errs[i] != nil {
					t.Fatalf("process %d: %v", i, errs[i])
				}
				total += counts[i]
			}
			if total != 2 {
				t.Fatalf("migrations applied %d times in all, want 2", total)
			}
		})
	}
}

// A data directory whose name holds URI characters must still be used as
// named (a '#' once cut the path, so tests shared one file).
func TestSQLitePathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a#1?x%")
	db, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE probe (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "steward.db")); err != nil {
		t.Fatalf("the database is not where it was asked to be: %v", err)
	}
}

// SQLite runs with synchronous=NORMAL unless the caller asks for another
// mode; the process environment plays no part.
func TestSQLiteSynchronous(t *testing.T) {
	t.Setenv("STEWARD_SQLITE_SYNCHRONOUS", "OFF")
	for _, c := range []struct {
		opts []store.Option
		want int // 0 OFF, 1 NORMAL, 2 FULL
	}{
		{nil, 1},
		{[]store.Option{store.SQLiteSynchronous("")}, 1},
		{[]store.Option{store.SQLiteSynchronous("FULL")}, 2},
	} {
		db, err := store.Open(context.Background(), "", t.TempDir(), c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		var got int
		if err := db.QueryRow(`PRAGMA synchronous`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if got != c.want {
			t.Errorf("%d options: synchronous = %d, want %d", len(c.opts), got, c.want)
		}
	}
}

// A deleted row leaves no bytes in SQLite's files: secure_delete, on every
// connection, zeroes it in the database file (within its page, and whole
// pages freed), and Checkpoint empties the write-ahead log, which still
// held the pages as they were.
func TestSQLiteDeletedRowsLeaveNoBytes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var conns []*sql.Conn
	for range 3 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var on int
		if err := c.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&on); err != nil || on != 1 {
			t.Errorf("connection %d: secure_delete = %d, %v; want 1", len(conns), on, err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	secret := fmt.Sprintf("secret-%d-", time.Now().UnixNano())
	if _, err := db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	// One row beside the others in a page, many rows that fill whole
	// pages, and one long enough to spill into overflow pages.
	if _, err := db.Exec(`INSERT INTO notes (body) VALUES ('kept row'), ($1)`, secret+"single"); err != nil {
		t.Fatal(err)
	}
	for i := range 400 {
		if _, err := db.Exec(`INSERT INTO notes (body) VALUES ($1)`, fmt.Sprintf("%smany-%03d", secret, i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO notes (body) VALUES ($1)`, strings.Repeat("x", 20000)+secret+"long"); err != nil {
		t.Fatal(err)
	}
	holding := func() []string {
		t.Helper()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(secret)) {
				out = append(out, e.Name())
			}
		}
		return out
	}
	if got := holding(); len(got) == 0 {
		t.Fatal("no file holds the rows before they are deleted: the scan reads nothing")
	}
	if _, err := db.Exec(`DELETE FROM notes WHERE body <> 'kept row'`); err != nil {
		t.Fatal(err)
	}
	if got := holding(); !slices.Contains(got, "steward.db-wal") {
		t.Fatalf("before the checkpoint the files holding deleted rows are %v; the write-ahead log should", got)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if got := holding(); len(got) > 0 {
		t.Errorf("after deletion and a checkpoint, %v still hold deleted rows", got)
	}
	if fi, err := os.Stat(filepath.Join(dir, "steward.db-wal")); err == nil && fi.Size() != 0 {
		t.Errorf("the write-ahead log has %d bytes after the checkpoint, want 0", fi.Size())
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM notes WHERE body = 'kept row'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the row not deleted: %d, %v", n, err)
	}
}

// Compact leaves only live rows in SQLite's file: a row deleted before
// secure_delete was on, which lay in free space, is gone.
func TestSQLiteCompact(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	secret := fmt.Sprintf("old-secret-%d", time.Now().UnixNano())
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`PRAGMA secure_delete = OFF`, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)`,
		`INSERT INTO notes (body) VALUES ('kept'), ('` + secret + `')`, `DELETE FROM notes WHERE body = '` + secret + `'`,
		`PRAGMA secure_delete = ON`} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	holds := func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "steward.db"))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(b, []byte(secret))
	}
	if !holds() {
		t.Fatal("the old value is not in free space before compacting: the test shows nothing")
	}
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if holds() {
		t.Error("the old value is still in the file after compacting")
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM notes WHERE body = 'kept'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("live rows after compacting: %d, %v; want 1", n, err)
	}
}
