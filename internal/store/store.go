// Package store opens the database — SQLite (the embedded default) or
// PostgreSQL — and owns what every other package shares about it: the
// engine in use, transactions, and the migration runner that applies each
// package's own embedded migrations under a lock.
//
// SQL is written once with $1 placeholders, which both drivers accept.
// Shared DDL writes TIMESTAMP for instants; on PostgreSQL the runner turns it
// into TIMESTAMPTZ. BYTEA and BOOLEAN mean the same on both engines. All
// times are written in UTC.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Engine names a storage engine.
type Engine string

const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// Q is what queries need: satisfied by *DB, *sql.DB and *sql.Tx, so domain
// functions run the same inside or outside a transaction.
type Q interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DB is an open database and the engine behind it.
type DB struct {
	*sql.DB
	Engine Engine
	// Location says where the data is without credentials, for logs.
	Location string
}

// Option adjusts how Open opens a database.
type Option func(*options)

type options struct {
	sqliteSynchronous string
}

// SQLiteSynchronous sets SQLite's synchronous pragma: NORMAL (the default,
// also for "") survives a process crash in WAL mode, not a power loss;
// FULL survives both, at a cost to every commit. PostgreSQL ignores it.
func SQLiteSynchronous(mode string) Option {
	return func(o *options) { o.sqliteSynchronous = mode }
}

// Open opens the database named by databaseURL. An empty URL means SQLite in
// dataDir/steward.db (the directory is created). "postgres://" and
// "postgresql://" URLs open PostgreSQL through pgx; "sqlite:PATH" or
// "file:PATH" open SQLite at PATH.
func Open(ctx context.Context, databaseURL, dataDir string, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case databaseURL == "":
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create data dir: %w", err)
		}
		return openSQLite(ctx, filepath.Join(dataDir, "steward.db"), o)
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		return openPostgres(ctx, databaseURL)
	case strings.HasPrefix(databaseURL, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(databaseURL, "sqlite:"), o)
	case strings.HasPrefix(databaseURL, "file:"):
		return openSQLite(ctx, strings.TrimPrefix(databaseURL, "file:"), o)
	default:
		return nil, errors.New("store: database URL must start with postgres://, sqlite: or file:")
	}
}

func openSQLite(ctx context.Context, path string, o options) (*DB, error) {
	// WAL lets readers run beside the single writer; immediate transactions
	// take the write lock at BEGIN so two writers queue on busy_timeout
	// instead of failing halfway. synchronous=NORMAL in WAL mode survives a
	// process crash (not a power loss) and is what the collection
	// benchmark assumes; operators who need power-loss durability on SQLite
	// ask for FULL (SQLiteSynchronous). secure_delete zeroes what a
	// delete or update frees — cells, overflow and freelist pages — so an
	// erased row does not linger in free space of the file; Checkpoint
	// then clears the write-ahead log of the pages as they were.
	sync := o.sqliteSynchronous
	if sync == "" {
		sync = "NORMAL"
	}
	q := url.Values{}
	q.Add("_txlock", "immediate")
	q.Add("_time_format", "sqlite")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "secure_delete(ON)")
	// The path is a URI path here: characters that end or escape it are
	// percent-encoded, so a directory named "a#1" is not cut at the '#'.
	escaped := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	dsn := "file:" + escaped + "?" + q.Encode()
	connector, err := newSQLiteConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	sdb := sql.OpenDB(connector)
	sdb.SetMaxOpenConns(8)
	sdb.SetMaxIdleConns(8)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	return &DB{DB: sdb, Engine: SQLite, Location: "sqlite:" + path}, nil
}

func openPostgres(ctx context.Context, databaseURL string) (*DB, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return nil, errors.New("store: database URL is not a valid URL")
	}
	q := u.Query()
	if q.Get("timezone") == "" {
		q.Set("timezone", "UTC")
	}
	u.RawQuery = q.Encode()
	sdb, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	sdb.SetMaxOpenConns(20)
	sdb.SetMaxIdleConns(10)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("store: connect to postgres %s: %w", redactURL(u), err)
	}
	return &DB{DB: sdb, Engine: Postgres, Location: redactURL(u)}, nil
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}

// Checkpoint copies SQLite's write-ahead log into the database file and
// truncates the log to nothing, so the page images it holds — among them
// the rows just deleted, as they were before secure_delete zeroed them —
// leave the disk too. It waits for readers up to the busy timeout and
// reports an error when they kept it from finishing. On PostgreSQL it does
// nothing: its WAL and dead tuples are the server's to recycle, and every
// personal value reaches them sealed.
func (db *DB) Checkpoint(ctx context.Context) error {
	if db.Engine != SQLite {
		return nil
	}
	var busy, frames, copied int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &copied); err != nil {
		return fmt.Errorf("store: checkpoint: %w", err)
	}
	if busy != 0 {
		return errors.New("store: checkpoint: readers kept the write-ahead log from being truncated")
	}
	return nil
}

// Compact rewrites SQLite's database file from its live rows alone
// (VACUUM), then truncates the write-ahead log, so values deleted or
// changed before secure_delete was on leave the file. It takes as long as
// copying the database; PostgreSQL has nothing to do here.
func (db *DB) Compact(ctx context.Context) error {
	if db.Engine != SQLite {
		return nil
	}
	if _, err := db.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("store: compact: %w", err)
	}
	return db.Checkpoint(ctx)
}

// InTx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise (also on panic, which is re-raised).
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique-constraint violation on
// either engine.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "SQLSTATE 23505")
}
