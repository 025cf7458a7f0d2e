package rights_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"steward/internal/door"
	"steward/internal/registry"
	"steward/internal/store"
)

// The seeder writes one row for a subject into every personal table of the
// registry that holds none yet, without knowing the tables: it reads the
// live schema (types, NOT NULL, defaults, CHECK lists, foreign keys) and
// fills every personal column with a value that names the column, so a
// scan after erasure can tell which table still holds what. Sealed columns
// are sealed under the subject's key, as the owning package would.

type seedCol struct {
	name, typ  string
	notNull    bool
	hasDefault bool
	pk         bool
	autoKey    bool
	choices    []string // a CHECK (col IN (...)) list
	refTable   string   // a foreign key
	refCol     string
}

var checkIN = regexp.MustCompile(`(?i)"?(\w+)"?\s+IN\s*\(([^)]*)\)`)
var checkANY = regexp.MustCompile(`(?i)\(?"?(\w+)"?\s*=\s*ANY\s*\(\(?ARRAY\[([^\]]*)\]`)
var literal = regexp.MustCompile(`'([^']*)'`)

func seedSchema(t testing.TB, db *store.DB, table string) []seedCol {
	t.Helper()
	var cols []seedCol
	checks := map[string][]string{}
	addChecks := func(sqlText string) {
		for _, re := range []*regexp.Regexp{checkIN, checkANY} {
			for _, m := range re.FindAllStringSubmatch(sqlText, -1) {
				var vals []string
				for _, l := range literal.FindAllStringSubmatch(m[2], -1) {
					vals = append(vals, l[1])
				}
				if len(vals) > 0 {
					checks[strings.ToLower(m[1])] = vals
				}
			}
		}
	}
	fks := map[string][2]string{}
	if db.Engine == store.SQLite {
		var ddl string
		if err := db.QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = $1`, table).Scan(&ddl); err != nil {
			t.Fatal(err)
		}
		addChecks(ddl)
		rows, err := db.Query(`SELECT "from", "table", "to" FROM pragma_foreign_key_list($1)`, table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var from, tab string
			var to *string
			rows.Scan(&from, &tab, &to)
			ref := "id"
			if to != nil {
				ref = *to
			}
			fks[from] = [2]string{tab, ref}
		}
		rows.Close()
		rows, err = db.Query(`SELECT name, type, "notnull", dflt_value IS NOT NULL, pk FROM pragma_table_info($1)`, table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var c seedCol
			var pk int
			rows.Scan(&c.name, &c.typ, &c.notNull, &c.hasDefault, &pk)
			c.pk = pk > 0
			c.autoKey = c.pk && strings.EqualFold(c.typ, "INTEGER")
			cols = append(cols, c)
		}
		rows.Close()
	} else {
		rows, err := db.Query(`SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
			JOIN pg_namespace n ON n.oid = r.relnamespace WHERE n.nspname = current_schema() AND r.relname = $1 AND c.contype = 'c'`, table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var def string
			rows.Scan(&def)
			addChecks(def)
		}
		rows.Close()
		rows, err = db.Query(`SELECT a.attname, rc.relname, ra.attname
			FROM pg_constraint c
			JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
			JOIN pg_class rc ON rc.oid = c.confrelid
			JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
			JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1]
			WHERE n.nspname = current_schema() AND r.relname = $1 AND c.contype = 'f'`, table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var from, tab, to string
			rows.Scan(&from, &tab, &to)
			fks[from] = [2]string{tab, to}
		}
		rows.Close()
		rows, err = db.Query(`SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef, a.attidentity <> '',
				COALESCE((SELECT k.n FROM unnest(i.indkey) WITH ORDINALITY AS k(att, n) WHERE k.att = a.attnum), 0) > 0
			FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
			WHERE n.nspname = current_schema() AND c.relname = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var c seedCol
			var identity bool
			rows.Scan(&c.name, &c.typ, &c.notNull, &c.hasDefault, &identity, &c.pk)
			c.autoKey = identity || (c.pk && c.hasDefault && strings.Contains(c.typ, "int"))
			cols = append(cols, c)
		}
		rows.Close()
	}
	pks := 0
	for _, c := range cols {
		if c.pk {
			pks++
		}
	}
	for i := range cols {
		if pks > 1 {
			cols[i].autoKey = false
		}
		cols[i].choices = checks[strings.ToLower(cols[i].name)]
		if fk, ok := fks[cols[i].name]; ok {
			cols[i].refTable, cols[i].refCol = fk[0], fk[1]
		}
	}
	return cols
}

func typeOf(typ string) string {
	t := strings.ToLower(typ)
	switch {
	case strings.Contains(t, "bool"):
		return "bool"
	case strings.Contains(t, "timestamp"), strings.Contains(t, "date"):
		return "time"
	case strings.Contains(t, "bytea"), strings.Contains(t, "blob"):
		return "bytes"
	case strings.Contains(t, "int"):
		return "int"
	}
	return "text"
}

// seededValue is a personal value the seeder wrote.
type seededValue struct {
	Table, Column, Value string
}

// seed fills every personal table that holds nothing for the subject.
func (e *env) seed(subjectID, marker string) []seededValue {
	e.t.Helper()
	var out []seededValue
	for _, t := range e.reg.Personal() {
		if strings.HasPrefix(t.Name, "rights_") || t.Name == "audit_log" || t.Name == "subjects" || t.Name == "data_keys" {
			continue // filled by real flows
		}
		n := e.count(`SELECT COUNT(*) FROM "`+t.Name+`" WHERE "`+t.SubjectColumn+`" = $1`, subjectID)
		if n > 0 {
			continue
		}
		out = append(out, e.seedRow(t, subjectID, marker, 0)...)
	}
	return out
}

// seedRow inserts one row into t (a personal table for subjectID, or any
// table a foreign key needs) and returns the personal values written.
func (e *env) seedRow(t registry.Table, subjectID, marker string, depth int) []seededValue {
	e.t.Helper()
	if depth > 3 {
		e.t.Fatalf("seed: foreign keys nest too deep at %s", t.Name)
	}
	cols := seedSchema(e.t, e.db, t.Name)
	for _, c := range cols {
		decl, _ := t.Column(c.name)
		if decl.Personal() && decl.CategoryIn(e.pol.CategoryOfField) == "" && c.notNull && !c.hasDefault {
			return nil // the policy does not declare a field the row needs: no row can exist
		}
	}
	var names []string
	var args []any
	var out []seededValue
	for _, c := range cols {
		decl, _ := t.Column(c.name)
		personal := decl.Personal()
		category := decl.CategoryIn(e.pol.CategoryOfField)
		if personal && category == "" {
			continue // the policy does not declare the field: nothing may be stored in it
		}
		var v any
		switch {
		case c.autoKey:
			continue
		case decl.Legacy && !(c.notNull && !c.hasDefault):
			continue // emptied at start-up once its value is sealed elsewhere
		case decl.Legacy:
			v = "" // NOT NULL without a default: the empty value the owner writes
		case c.name == t.SubjectColumn && t.Personal():
			v = subjectID
		case t.Name == "second_factors" && c.name == "confirmed_at":
			// Left unconfirmed: a confirmed factor would make the seeded
			// subject's open sessions owe it, and the flows below use them.
			continue
		case c.refTable != "":
			var ref any
			err := e.db.QueryRow(`SELECT "` + c.refCol + `" FROM "` + c.refTable + `" LIMIT 1`).Scan(&ref)
			if err != nil {
				rt, ok := e.reg.Table(c.refTable)
				if !ok {
					e.t.Fatalf("seed %s.%s: referenced table %s is not registered", t.Name, c.name, c.refTable)
				}
				e.seedRow(rt, subjectID, "REF", depth+1)
				if err := e.db.QueryRow(`SELECT "` + c.refCol + `" FROM "` + c.refTable + `" LIMIT 1`).Scan(&ref); err != nil {
					e.t.Fatalf("seed %s.%s: %v", t.Name, c.name, err)
				}
			}
			v = ref
		case len(c.choices) > 0:
			v = c.choices[0]
		case c.hasDefault && !personal && !c.pk:
			continue
		case decl.Sensitive:
			plain := fmt.Sprintf("%s-%s-%s", marker, t.Name, c.name)
			view, err := e.door.Subject(e.ctx, e.db, door.Subject(), subjectID)
			if err != nil {
				e.t.Fatalf("seed view %s: %v", subjectID, err)
			}
			sealed, err := view.SealCategory(e.ctx, category, []byte(plain))
			if err != nil {
				e.t.Fatalf("seed seal %s.%s: %v", t.Name, c.name, err)
			}
			v = sealed
			if !decl.Hashed {
				out = append(out, seededValue{t.Name, c.name, plain})
			}
		case c.name == t.PolicyVersionColumn:
			v = e.ver.Number
		default:
			switch typeOf(c.typ) {
			case "bool":
				v = false
			case "time":
				v = e.clock.Now()
			case "int":
				v = 1
			case "bytes":
				v = []byte(fmt.Sprintf("%s-%s-%s", marker, t.Name, c.name))
			default:
				s := fmt.Sprintf("%s-%s-%s", marker, t.Name, c.name)
				v = s
				if personal && !decl.Hashed {
					out = append(out, seededValue{t.Name, c.name, s})
				}
			}
		}
		names = append(names, `"`+c.name+`"`)
		args = append(args, v)
	}
	ph := make([]string, len(args))
	for i := range ph {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	if _, err := e.db.Exec(`INSERT INTO "`+t.Name+`" (`+strings.Join(names, ", ")+`) VALUES (`+strings.Join(ph, ", ")+`)`, args...); err != nil {
		e.t.Fatalf("seed %s: %v", t.Name, err)
	}
	return out
}

// stillHolds fails the test unless every value seeded for the subject is
// still in its column: read in the clear, or opened with the subject's
// key for a sealed column.
func (e *env) stillHolds(subjectID string, vals []seededValue) {
	e.t.Helper()
	var needles []string
	for _, v := range vals {
		needles = append(needles, v.Value)
	}
	found := scan(e.t, e.db, needles)
	for _, v := range vals {
		t, _ := e.reg.Table(v.Table)
		decl, _ := t.Column(v.Column)
		if !decl.Sensitive {
			if !slices.Contains(found[v.Value], v.Table+"."+v.Column) {
				e.t.Errorf("%s lost %s.%s", subjectID, v.Table, v.Column)
			}
			continue
		}
		if e.count(`SELECT COUNT(*) FROM "`+v.Table+`" WHERE "`+t.SubjectColumn+`" = $1`, subjectID) == 0 && expires(e.t, e.db, v.Table) {
			continue // the seeded row expired at once, and its owner pruned it
		}
		view, err := e.door.Subject(e.ctx, e.db, door.Subject(), subjectID)
		if err != nil {
			e.t.Fatal(err)
		}
		rows, err := e.db.QueryContext(e.ctx, `SELECT "`+v.Column+`" FROM "`+v.Table+`" WHERE "`+t.SubjectColumn+`" = $1`, subjectID)
		if err != nil {
			e.t.Fatal(err)
		}
		ok := false
		for rows.Next() {
			var sealed []byte
			if err := rows.Scan(&sealed); err != nil {
				e.t.Fatal(err)
			}
			if got, err := view.OpenCategory(e.ctx, decl.CategoryIn(e.pol.CategoryOfField), sealed); err == nil && string(got) == v.Value {
				ok = true
			}
		}
		rows.Close()
		if !ok {
			e.t.Errorf("%s's sealed %s.%s no longer opens to what was seeded", subjectID, v.Table, v.Column)
		}
	}
}

// expires reports whether a table's rows carry an expiry (its owner prunes
// them once past it).
func expires(t testing.TB, db *store.DB, table string) bool {
	for _, c := range seedSchema(t, db, table) {
		if c.name == "expires_at" {
			return true
		}
	}
	return false
}
