package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"steward/internal/store"
)

// TestSQLiteStatementCache: a SQLite connection runs its statements again
// without parsing, and that changes no answer: the same query nested in
// its own open rows (on one connection, in a transaction) reads both
// result sets whole; a query after the table it reads changed shape sees
// the new shape; a failed statement is prepared afresh next time; more
// distinct statements than the cache holds all answer.
func TestSQLiteStatementCache(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "", filepath.Join(t.TempDir(), "d"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := db.ExecContext(ctx, `INSERT INTO t (id, v) VALUES ($1, $2)`, i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	const all = `SELECT id, v FROM t ORDER BY id`
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		outer, err := tx.QueryContext(ctx, all)
		if err != nil {
			return err
		}
		defer outer.Close()
		pairs := 0
		for outer.Next() {
			var id int
			var v string
			if err := outer.Scan(&id, &v); err != nil {
				return err
			}
			inner, err := tx.QueryContext(ctx, all) // the same SQL while outer is open
			if err != nil {
				return err
			}
			for inner.Next() {
				pairs++
			}
			if err := inner.Close(); err != nil {
				return err
			}
			if v != fmt.Sprint("v", id) {
				return fmt.Errorf("outer row %d read %q", id, v)
			}
		}
		if pairs != 25 {
			return fmt.Errorf("nested reads saw %d pairs, want 25", pairs)
		}
		return outer.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	// A constraint failure, then the same statement succeeds.
	const ins = `INSERT INTO t (id, v) VALUES ($1, $2)`
	if _, err := db.ExecContext(ctx, ins, 1, "again"); err == nil {
		t.Fatal("a duplicate key was inserted")
	}
	if _, err := db.ExecContext(ctx, ins, 10, "ten"); err != nil {
		t.Fatalf("after a failure: %v", err)
	}
	// The table changes shape: the kept SELECT * sees the new column.
	const star = `SELECT * FROM t WHERE id = $1`
	cols := func() int {
		rows, err := db.QueryContext(ctx, star, 10)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		c, _ := rows.Columns()
		return len(c)
	}
	if n := cols(); n != 2 {
		t.Fatalf("columns = %d", n)
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE t ADD COLUMN w TEXT`); err != nil {
		t.Fatal(err)
	}
	if n := cols(); n != 3 {
		t.Errorf("after ALTER TABLE the kept statement reads %d columns, want 3", n)
	}
	// More distinct statements than a connection keeps.
	for i := range 600 {
		var n int
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT COUNT(*) + %d FROM t`, i)).Scan(&n); err != nil || n != 6+i {
			t.Fatalf("statement %d: %d, %v", i, n, err)
		}
	}
}
