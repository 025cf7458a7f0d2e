package registry

import (
	"strings"
	"testing"
)

func TestNewRefusesIncoherentDeclarations(t *testing.T) {
	good := Table{Name: "notes", Owner: "x", Dataset: "notes", SubjectColumn: "subject_id", Origin: Provided, Source: "subject",
		Columns: []Column{{Name: "subject_id"}, {Name: "body", Field: "comment"}}}
	tests := []struct {
		name string
		mut  func(t *Table)
		want string
	}{
		{"ok", func(*Table) {}, ""},
		{"no owner", func(t *Table) { t.Owner = "" }, "owner"},
		{"personal column without subject", func(t *Table) { t.SubjectColumn = "" }, "no subject column"},
		{"subject column undeclared", func(t *Table) { t.SubjectColumn = "who" }, "does not declare"},
		{"no dataset", func(t *Table) { t.Dataset = "" }, "dataset"},
		{"no source", func(t *Table) { t.Source = "" }, "come from"},
		{"duplicate column", func(t *Table) { t.Columns = append(t.Columns, Column{Name: "body"}) }, "twice"},
		// A dataset name becomes a file name in the export ZIP and the
		// start of an item reference.
		{"dataset with a path", func(t *Table) { t.Dataset = "../../notes" }, "identifier"},
		{"dataset with a slash", func(t *Table) { t.Dataset = "notes/old" }, "identifier"},
		{"dataset in capitals", func(t *Table) { t.Dataset = "Notes" }, "identifier"},
		{"dataset with a space", func(t *Table) { t.Dataset = "my notes" }, "identifier"},
		{"dataset with an accent", func(t *Table) { t.Dataset = "données" }, "identifier"},
		{"dataset starting with a digit", func(t *Table) { t.Dataset = "1notes" }, "identifier"},
		{"dataset too long", func(t *Table) { t.Dataset = strings.Repeat("n", 65) }, "identifier"},
		{"dataset with digits and underscores", func(t *Table) { t.Dataset = "notes_2026" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := good
			tb.Columns = append([]Column(nil), good.Columns...)
			tt.mut(&tb)
			_, err := New([]Table{tb})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := New([]Table{good}, []Table{good}); err == nil {
		t.Fatal("a table declared twice was accepted")
	}
}

func TestUndeclared(t *testing.T) {
	r, err := New([]Table{{Name: "notes", Owner: "x", Origin: System, Columns: []Column{{Name: "id"}, {Name: "gone"}}}})
	if err != nil {
		t.Fatal(err)
	}
	got := r.Undeclared([]LiveColumn{{"notes", "id"}, {"notes", "extra"}, {"other", "x"}, {"schema_migrations", "module"}}, "schema_migrations")
	want := []string{
		"column notes.extra is not declared in the registry (owner x)",
		"column notes.gone is declared but not in the database",
		"table other.x is not declared in the registry",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Undeclared =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
