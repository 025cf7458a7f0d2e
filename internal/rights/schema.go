package rights

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"steward/internal/registry"
	"steward/internal/store"
)

// colKind is how the engine reads, writes and clears a column.
type colKind uint8

const (
	kindText colKind = iota
	kindInt
	kindFloat
	kindBool
	kindTime
	kindBytes
)

func kindOf(dbType string) colKind {
	t := strings.ToLower(dbType)
	switch {
	case strings.Contains(t, "bool"):
		return kindBool
	case strings.Contains(t, "timestamp"), strings.Contains(t, "date"), t == "time":
		return kindTime
	case strings.Contains(t, "bytea"), strings.Contains(t, "blob"):
		return kindBytes
	case strings.Contains(t, "int"), strings.Contains(t, "serial"):
		return kindInt
	case strings.Contains(t, "real"), strings.Contains(t, "double"), strings.Contains(t, "numeric"), strings.Contains(t, "float"):
		return kindFloat
	}
	return kindText
}

func (k colKind) jsonType() string {
	switch k {
	case kindInt:
		return "integer"
	case kindFloat:
		return "number"
	case kindBool:
		return "boolean"
	}
	return "string"
}

// liveCol is a declared column as the live database has it.
type liveCol struct {
	registry.Column
	kind    colKind
	notNull bool
}

// liveTable is a personal table of the registry with its live layout.
type liveTable struct {
	registry.Table
	cols  []liveCol // declared columns, in declaration order
	pk    []string  // primary key columns, in key order
	pkIdx []int     // their indexes in cols
	// subjectIdx is the index of the subject column; dateIdx that of the
	// column dating a row (created_at, at, …), or -1.
	subjectIdx, dateIdx int
}

func (t *liveTable) col(name string) (liveCol, bool) {
	for _, c := range t.cols {
		if c.Name == name {
			return c, true
		}
	}
	return liveCol{}, false
}

// schema is the registry's personal tables with their live layout, read
// once: column kinds and nullability decide how a column is exported and
// cleared, and the primary key names an item.
type schema struct {
	tables    []*liveTable
	byName    map[string]*liveTable
	byDataset map[string]*liveTable
}

// loadSchema reads the live layout of every personal table.
func loadSchema(ctx context.Context, db *store.DB, reg *registry.Registry) (*schema, error) {
	sc := &schema{byName: map[string]*liveTable{}, byDataset: map[string]*liveTable{}}
	for _, t := range reg.Personal() {
		live, pk, err := describe(ctx, db, t.Name)
		if err != nil {
			return nil, err
		}
		if len(live) == 0 {
			return nil, fmt.Errorf("rights: the registry declares %s, which is not in the database", t.Name)
		}
		lt := &liveTable{Table: t, pk: pk}
		for _, c := range t.Columns {
			lc, ok := live[c.Name]
			if !ok {
				return nil, fmt.Errorf("rights: %s.%s is declared but not in the database", t.Name, c.Name)
			}
			lc.Column = c
			lt.cols = append(lt.cols, lc)
		}
		lt.dateIdx = -1
		for i, c := range lt.cols {
			if c.Name == t.SubjectColumn {
				lt.subjectIdx = i
			}
		}
		for _, name := range []string{"created_at", "at", "received_at", "accepted_at", "erased_at"} {
			if c, ok := lt.col(name); ok && c.kind == kindTime && lt.dateIdx < 0 {
				for i := range lt.cols {
					if lt.cols[i].Name == name {
						lt.dateIdx = i
					}
				}
			}
		}
		for _, p := range lt.pk {
			for i, c := range lt.cols {
				if c.Name == p {
					lt.pkIdx = append(lt.pkIdx, i)
				}
			}
		}
		if len(lt.pk) == 0 || len(lt.pkIdx) != len(lt.pk) {
			return nil, fmt.Errorf("rights: personal table %s has no primary key, so its rows cannot be named as items", t.Name)
		}
		if _, dup := sc.byDataset[t.Dataset]; dup {
			return nil, fmt.Errorf("rights: dataset %s is declared by two tables", t.Dataset)
		}
		sc.tables = append(sc.tables, lt)
		sc.byName[t.Name] = lt
		sc.byDataset[t.Dataset] = lt
	}
	return sc, nil
}

// describe returns the columns of a live table by name and its primary key.
func describe(ctx context.Context, db *store.DB, table string) (map[string]liveCol, []string, error) {
	cols := map[string]liveCol{}
	type pkPart struct {
		name string
		pos  int
	}
	var pk []pkPart
	if db.Engine == store.SQLite {
		// The table name comes from the registry, never from a request;
		// pragma_table_info takes it as a bound argument anyway.
		rows, err := db.QueryContext(ctx, `SELECT name, type, "notnull", pk FROM pragma_table_info($1)`, table)
		if err != nil {
			return nil, nil, fmt.Errorf("rights: describe %s: %w", table, err)
		}
		defer rows.Close()
		for rows.Next() {
			var name, typ string
			var notNull bool
			var pos int
			if err := rows.Scan(&name, &typ, &notNull, &pos); err != nil {
				return nil, nil, fmt.Errorf("rights: describe %s: %w", table, err)
			}
			cols[name] = liveCol{kind: kindOf(typ), notNull: notNull || pos > 0}
			if pos > 0 {
				pk = append(pk, pkPart{name, pos})
			}
		}
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("rights: describe %s: %w", table, err)
		}
	} else {
		// The catalogs answer in a millisecond where information_schema
		// takes tens: this runs once per personal table.
		rows, err := db.QueryContext(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
				COALESCE((SELECT k.n FROM unnest(i.indkey) WITH ORDINALITY AS k(att, n) WHERE k.att = a.attnum), 0)
			FROM pg_attribute a
			JOIN pg_class c ON c.oid = a.attrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
			WHERE n.nspname = current_schema() AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped`, table)
		if err != nil {
			return nil, nil, fmt.Errorf("rights: describe %s: %w", table, err)
		}
		defer rows.Close()
		for rows.Next() {
			var name, typ string
			var notNull bool
			var pos int
			if err := rows.Scan(&name, &typ, &notNull, &pos); err != nil {
				return nil, nil, fmt.Errorf("rights: describe %s: %w", table, err)
			}
			cols[name] = liveCol{kind: kindOf(typ), notNull: notNull}
			if pos > 0 {
				pk = append(pk, pkPart{name, pos})
			}
		}
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("rights: describe %s: %w", table, err)
		}
	}
	sort.Slice(pk, func(i, j int) bool { return pk[i].pos < pk[j].pos })
	names := make([]string, len(pk))
	for i, p := range pk {
		names[i] = p.name
	}
	return cols, names, nil
}

// loadedSchema returns the schema, reading it on first use. Migrations
// run before the service is built, so the layout does not change under
// a running process.
func (s *Service) loadedSchema(ctx context.Context) (*schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.schema != nil {
		return s.schema, nil
	}
	sc, err := loadSchema(ctx, s.db, s.reg)
	if err != nil {
		return nil, err
	}
	s.schema = sc
	return sc, nil
}

// quoteIdent quotes a table or column name from the registry. Names never
// come from requests; quoting keeps reserved words (such as "key") usable.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// placeholders returns "$from, $from+1, …" for n arguments.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
	}
	return b.String()
}

func anyArgs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
