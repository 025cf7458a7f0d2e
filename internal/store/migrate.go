package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migrations are one package's embedded schema changes. Files in FS are
// named NNNN_name.sql (shared by both engines) or NNNN_name.sqlite.sql and
// NNNN_name.postgres.sql (one per engine, where the SQL differs). Versions
// count up from 1 per module. A landed file is never edited; a change that
// renames or drops first adds the new shape in one version and removes the
// old one in a later version, so processes of the previous release keep
// working while a new one rolls out.
type Migrations struct {
	Module string
	FS     fs.FS
}

type migration struct {
	version int
	name    string
	sql     string
}

var fileRE = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+?)(\.sqlite|\.postgres)?\.sql$`)
var timestampRE = regexp.MustCompile(`(?i)\bTIMESTAMP\b`)

func (m Migrations) load(engine Engine) ([]migration, error) {
	entries, err := fs.ReadDir(m.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("store: read migrations of %s: %w", m.Module, err)
	}
	type pick struct {
		name                           string
		shared, engine                 string
		hasShared, hasEngine, hasOther bool
	}
	byVersion := map[int]*pick{}
	for _, e := range entries {
		match := fileRE.FindStringSubmatch(e.Name())
		if match == nil {
			return nil, fmt.Errorf("store: migration %s/%s: name must be NNNN_name[.sqlite|.postgres].sql", m.Module, e.Name())
		}
		v, _ := strconv.Atoi(match[1])
		body, err := fs.ReadFile(m.FS, e.Name())
		if err != nil {
			return nil, err
		}
		p := byVersion[v]
		if p == nil {
			p = &pick{name: match[2]}
			byVersion[v] = p
		}
		switch match[3] {
		case "":
			p.shared, p.hasShared = string(body), true
		case "." + string(engine):
			p.engine, p.hasEngine = string(body), true
		default:
			p.hasOther = true
		}
	}
	var out []migration
	for v, p := range byVersion {
		var body string
		switch {
		case p.hasEngine:
			body = p.engine
		case p.hasShared:
			body = p.shared
		default:
			return nil, fmt.Errorf("store: migration %s/%04d has no file for %s", m.Module, v, engine)
		}
		if engine == Postgres && !p.hasEngine {
			body = timestampRE.ReplaceAllString(body, "TIMESTAMPTZ")
		}
		out = append(out, migration{version: v, name: p.name, sql: body})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m2 := range out {
		if m2.version != i+1 {
			return nil, fmt.Errorf("store: migrations of %s skip from %d to %d", m.Module, i, m2.version)
		}
	}
	return out, nil
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	module TEXT NOT NULL,
	version INTEGER NOT NULL,
	name TEXT NOT NULL,
	applied_at TIMESTAMP NOT NULL,
	PRIMARY KEY (module, version)
)`

// migrationLockKey is the PostgreSQL advisory lock that serialises
// migrations of several processes starting together.
const migrationLockKey = 0x5374657761726400 // "Steward\0"

// Migrate applies every pending migration of mods, in module order, in one
// transaction under a lock, so several processes may start together. It
// refuses a database that holds migrations this binary does not know. It
// returns how many migrations it applied.
func (db *DB) Migrate(ctx context.Context, mods []Migrations) (int, error) {
	plans := make([][]migration, len(mods))
	for i, m := range mods {
		ms, err := m.load(db.Engine)
		if err != nil {
			return 0, err
		}
		plans[i] = ms
	}
	applied := 0
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		if db.Engine == Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockKey)); err != nil {
				return fmt.Errorf("store: migration lock: %w", err)
			}
		}
		ddl := migrationsTable
		if db.Engine == Postgres {
			ddl = timestampRE.ReplaceAllString(ddl, "TIMESTAMPTZ")
		}
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("store: create schema_migrations: %w", err)
		}
		have, err := appliedVersions(ctx, tx)
		if err != nil {
			return err
		}
		if err := checkKnown(have, mods, plans); err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		for i, m := range mods {
			for _, mg := range plans[i] {
				if mg.version <= have[m.Module] {
					continue
				}
				if _, err := tx.ExecContext(ctx, mg.sql); err != nil {
					return fmt.Errorf("store: migration %s/%04d_%s: %w", m.Module, mg.version, mg.name, err)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (module, version, name, applied_at) VALUES ($1, $2, $3, $4)`,
					m.Module, mg.version, mg.name, now); err != nil {
					return fmt.Errorf("store: record migration: %w", err)
				}
				applied++
			}
		}
		return nil
	})
	return applied, err
}

// CheckSchema returns an error unless the database holds exactly the
// migrations of mods: serve refuses to run on a schema it does not know.
func (db *DB) CheckSchema(ctx context.Context, mods []Migrations) error {
	have, err := appliedVersions(ctx, db)
	if err != nil {
		return err
	}
	plans := make([][]migration, len(mods))
	for i, m := range mods {
		if plans[i], err = m.load(db.Engine); err != nil {
			return err
		}
	}
	if err := checkKnown(have, mods, plans); err != nil {
		return err
	}
	for i, m := range mods {
		if want := len(plans[i]); have[m.Module] != want {
			return fmt.Errorf("store: module %s is at schema version %d, this binary needs %d: run steward migrate", m.Module, have[m.Module], want)
		}
	}
	return nil
}

func appliedVersions(ctx context.Context, q Q) (map[string]int, error) {
	rows, err := q.QueryContext(ctx, `SELECT module, MAX(version) FROM schema_migrations GROUP BY module`)
	if err != nil {
		if strings.Contains(err.Error(), "schema_migrations") {
			return map[string]int{}, nil
		}
		return nil, fmt.Errorf("store: read schema_migrations: %w", err)
	}
	defer rows.Close()
	have := map[string]int{}
	for rows.Next() {
		var mod string
		var v int
		if err := rows.Scan(&mod, &v); err != nil {
			return nil, err
		}
		have[mod] = v
	}
	return have, rows.Err()
}

func checkKnown(have map[string]int, mods []Migrations, plans [][]migration) error {
	known := map[string]int{}
	for i, m := range mods {
		known[m.Module] = len(plans[i])
	}
	for mod, v := range have {
		k, ok := known[mod]
		if !ok {
			return fmt.Errorf("store: the database has tables of module %q that this binary does not know: it was written by a newer or different Steward", mod)
		}
		if v > k {
			return fmt.Errorf("store: module %s is at schema version %d but this binary knows only %d: it was written by a newer Steward", mod, v, k)
		}
	}
	return nil
}

// Column is one column of a live table.
type Column struct {
	Table, Name string
}

// Columns lists every column of every table in the live schema (the
// current PostgreSQL schema, or the SQLite main database), for the registry
// test that fails on undeclared personal data.
func (db *DB) Columns(ctx context.Context) ([]Column, error) {
	var query string
	if db.Engine == Postgres {
		query = `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`
	} else {
		query = `SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid`
	}
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("store: list columns: %w", err)
	}
	defer rows.Close()
	var out []Column
	for rows.Next() {
		var c Column
		if err := rows.Scan(&c.Table, &c.Name); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Embedded returns the migrations of module kept in the "migrations"
// directory of an embedded file system: the one line each package's
// Migrations function needs.
func Embedded(module string, fsys fs.FS) Migrations {
	sub, err := fs.Sub(fsys, "migrations")
	if err != nil {
		panic(fmt.Sprintf("store: migrations of %s: %v", module, err)) // fixed at build time
	}
	return Migrations{Module: module, FS: sub}
}
