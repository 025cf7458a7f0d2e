// Package registry is the personal-data registry: every package that owns
// tables declares here, for each table and column, whether it holds
// personal data, of which policy category, how the subject is found, and
// whether the row was provided by the subject or observed. The rights
// engine exports and erases through these declarations, and a test fails on
// any live table or column that no declaration covers.
package registry

import (
	"fmt"
	"sort"
	"strings"
)

// Origin says how a row came to exist.
type Origin string

const (
	// Provided rows were given by the subject (a form, an upload, an API
	// call): they are part of a portability export (GDPR Art. 20).
	Provided Origin = "provided"
	// Observed rows were recorded about the subject (a login, a page view).
	Observed Origin = "observed"
	// Derived rows were computed by Steward from other data.
	Derived Origin = "derived"
	// System rows hold no personal data (configuration, job state).
	System Origin = "system"
)

// Column declares one column.
type Column struct {
	Name string
	// Field names the policy field the column holds (for example "phone"
	// or "page"); the policy in force says which category that field
	// belongs to, so the same code serves policies that group fields
	// differently. A field the policy does not declare is never collected.
	Field string
	// Category is a fixed policy category for columns whose category does
	// not depend on the policy (rare); most columns name a Field instead.
	// A column with neither holds no personal data (ids, timestamps, flags).
	Category string
	// Sensitive columns are encrypted with the subject's data key for the
	// category, so destroying that key makes them unreadable everywhere.
	Sensitive bool
	// Hashed columns hold a one-way hash or keyed digest of personal data
	// (a normalised email's lookup digest, a token hash): they identify a
	// subject only to someone who already holds the value.
	Hashed bool
	// Blob columns hold the key of a file in blob storage (an upload),
	// sealed by the door under its own item key. A row's files go with it:
	// the table's owner registers a holder that removes them, and the
	// rights engine refuses to start without one (rights.CheckBlobHolders).
	Blob bool
	// Legacy columns held a value in plaintext before it was sealed; the
	// re-sealing at start-up empties them and nothing writes them since.
	// A later release drops them. Exports leave them out.
	Legacy bool
}

// Shown is the column's name in exports and reports: a sealed column is
// shown by the name of what it holds, without the _sealed of its storage
// name.
func (c Column) Shown() string {
	return strings.TrimSuffix(c.Name, "_sealed")
}

// Table declares one table.
type Table struct {
	Name  string
	Owner string // the package that owns the table and its SQL
	// Dataset is the stable name of the table's rows in exports; it stays
	// the same when the table layout changes. Empty for non-personal tables.
	// It is a lower-case identifier (see validDataset).
	Dataset string
	// SubjectColumn holds the subject id of the row, or "" when the table
	// holds no personal data.
	SubjectColumn string
	Origin        Origin
	// SourceColumn, when set, holds where each row came from (the subject,
	// a form, a seminar or survey import, a third party). Otherwise every
	// row has the fixed Source.
	SourceColumn string
	Source       string
	// PolicyVersionColumn holds the number of the policy version the row was
	// collected under.
	PolicyVersionColumn string
	// KeptBecause, when set, names why rows survive the subject's erasure
	// (for example "legal-obligation" for the audit log).
	KeptBecause string
	Columns     []Column
	Description string
	// Dated says when a row's retention period starts, for the sweep
	// (internal/retention); empty for tables whose rows live as long as
	// their subject's account or hold no personal data.
	Dated Dating
	// CountedFrom, for a Derived table of aggregates, names the table its
	// rows are counted from: a rule keeping monthly aggregates of a
	// category needs such a table counted from a table that category dates.
	CountedFrom string
}

// Dating says how the retention sweep dates a table's rows.
type Dating struct {
	// Column holds the time the row's period counts from (when it was
	// collected, or the last exchange of a thread). Rows where it is NULL
	// are not yet counting (an open request).
	Column string
	// Field names the policy field whose category's retention the row
	// follows; "" follows the longest retention of the table's categories.
	Field string
	// With names a table whose rows this table's rows go with (messages go
	// with their request): its sweep removes them, through its owner.
	// WithKey is the column holding the id of that table's row.
	With, WithKey string
}

// IsSet reports whether the table's rows are dated for the sweep.
func (d Dating) IsSet() bool { return d.Column != "" || d.With != "" }

// HasBlobs reports whether the table's rows name files in blob storage.
func (t Table) HasBlobs() bool {
	for _, c := range t.Columns {
		if c.Blob {
			return true
		}
	}
	return false
}

// Personal reports whether the table holds personal data.
func (t Table) Personal() bool { return t.SubjectColumn != "" }

// Column returns the declaration of the named column.
func (t Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Personal reports whether the column holds personal data.
func (c Column) Personal() bool { return c.Field != "" || c.Category != "" }

// CategoryIn returns the column's category under a policy, given the
// policy's field-to-category lookup ("" when the policy does not declare
// the field, in which case nothing may be stored in the column).
func (c Column) CategoryIn(categoryOfField func(field string) string) string {
	if c.Category != "" {
		return c.Category
	}
	if c.Field == "" {
		return ""
	}
	return categoryOfField(c.Field)
}

// Categories returns the categories the table's columns hold under a
// policy, sorted.
func (t Table) Categories(categoryOfField func(field string) string) []string {
	seen := map[string]bool{}
	for _, c := range t.Columns {
		if cat := c.CategoryIn(categoryOfField); cat != "" {
			seen[cat] = true
		}
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Registry is the set of all declared tables.
type Registry struct {
	tables []Table
	byName map[string]int
}

// New builds a registry and checks the declarations are coherent.
func New(tables ...[]Table) (*Registry, error) {
	r := &Registry{byName: map[string]int{}}
	for _, group := range tables {
		for _, t := range group {
			if _, dup := r.byName[t.Name]; dup {
				return nil, fmt.Errorf("registry: table %s declared twice", t.Name)
			}
			if err := t.validate(); err != nil {
				return nil, err
			}
			r.byName[t.Name] = len(r.tables)
			r.tables = append(r.tables, t)
		}
	}
	return r, nil
}

func (t Table) validate() error {
	if t.Owner == "" || t.Origin == "" {
		return fmt.Errorf("registry: table %s needs an owner and an origin", t.Name)
	}
	seen := map[string]bool{}
	for _, c := range t.Columns {
		if seen[c.Name] {
			return fmt.Errorf("registry: column %s.%s declared twice", t.Name, c.Name)
		}
		seen[c.Name] = true
		if (c.Category != "" || c.Field != "" || c.Blob) && !t.Personal() {
			return fmt.Errorf("registry: %s.%s holds personal data but the table names no subject column", t.Name, c.Name)
		}
	}
	for _, name := range []string{t.SubjectColumn, t.SourceColumn, t.PolicyVersionColumn, t.Dated.Column} {
		if name != "" && !seen[name] {
			return fmt.Errorf("registry: %s names column %s, which it does not declare", t.Name, name)
		}
	}
	if t.Dataset != "" && !validDataset(t.Dataset) {
		return fmt.Errorf("registry: dataset name %q of %s is not a lower-case identifier (a-z, 0-9, _; at most 64)", t.Dataset, t.Name)
	}
	if t.Personal() {
		if t.Dataset == "" {
			return fmt.Errorf("registry: personal table %s needs a dataset name for exports", t.Name)
		}
		if t.SourceColumn == "" && t.Source == "" {
			return fmt.Errorf("registry: personal table %s must say where its rows come from (Source or SourceColumn)", t.Name)
		}
	}
	return nil
}

// validDataset reports whether name can name a dataset: exports use it as
// a file name in the ZIP, an object key and JSON Schema reference in the
// portability file, and the first element of an item reference
// ("comments/c1"), so it is a lower-case identifier that needs no escaping
// in any of them.
func validDataset(name string) bool {
	if len(name) == 0 || len(name) > 64 || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Tables returns every declared table in declaration order.
func (r *Registry) Tables() []Table { return r.tables }

// Table returns the declaration of the named table.
func (r *Registry) Table(name string) (Table, bool) {
	i, ok := r.byName[name]
	if !ok {
		return Table{}, false
	}
	return r.tables[i], true
}

// Personal returns the tables that hold personal data.
func (r *Registry) Personal() []Table {
	var out []Table
	for _, t := range r.tables {
		if t.Personal() {
			out = append(out, t)
		}
	}
	return out
}

// LiveColumn is a column found in the live database.
type LiveColumn struct{ Table, Name string }

// Undeclared returns every live table or column that no declaration
// covers, and every declared one missing from the live schema, as
// readable lines. Tables in ignore (the migration ledger) are skipped.
func (r *Registry) Undeclared(live []LiveColumn, ignore ...string) []string {
	skip := map[string]bool{}
	for _, s := range ignore {
		skip[s] = true
	}
	var problems []string
	liveSet := map[string]bool{}
	for _, c := range live {
		if skip[c.Table] {
			continue
		}
		liveSet[c.Table+"."+c.Name] = true
		t, ok := r.Table(c.Table)
		if !ok {
			problems = append(problems, fmt.Sprintf("table %s.%s is not declared in the registry", c.Table, c.Name))
			continue
		}
		if _, ok := t.Column(c.Name); !ok {
			problems = append(problems, fmt.Sprintf("column %s.%s is not declared in the registry (owner %s)", c.Table, c.Name, t.Owner))
		}
	}
	for _, t := range r.tables {
		for _, c := range t.Columns {
			if !liveSet[t.Name+"."+c.Name] {
				problems = append(problems, fmt.Sprintf("column %s.%s is declared but not in the database", t.Name, c.Name))
			}
		}
	}
	sort.Strings(problems)
	return problems
}
