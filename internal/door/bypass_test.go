package door_test

// The bypass check finds code that reaches personal data around the door: a
// package other than the door that encrypts or decrypts with AES-GCM
// itself, imports the key store, selects a personal column of a table
// another package owns, or asks the door, with a purpose and a field
// written in the code, for a use the policy forbids. It reads source as
// text and syntax and runs nothing; TestNothingBypassesTheDoor runs it over
// the tree, and TestBypassCheckFindsAPlantedRead proves it finds what it
// looks for.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"steward/examples"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/schema"
)

// finding is one place that reaches around the door.
type finding struct {
	Pos  string // file:line
	What string
}

func (f finding) String() string { return f.Pos + ": " + f.What }

// allowed are the package directories (relative to the module root) that
// may do what the checks look for: the door itself and the key store
// beneath it.
var allowed = []string{"internal/door", "internal/door/internal/keys", "internal/keys"}

// checkBypass walks the Go packages under root (a module root) and reports every
// bypass. reg says which package owns which table and which columns are
// personal; policies are held against door calls whose purpose and field
// are literals.
func checkBypass(root string, reg *registry.Registry, policies ...*policy.Policy) ([]finding, error) {
	var out []finding
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, a := range allowed {
			if rel == a {
				return nil
			}
		}
		fset := token.NewFileSet()
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("bypass: parse %s: %w", path, err)
		}
		out = append(out, checkFile(fset, f, filepath.Base(rel), reg, policies)...)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Pos < out[j].Pos })
	return out, err
}

var (
	starRE   = regexp.MustCompile(`(^|,)\s*([a-z_][a-z0-9_]*\.)?\*\s*(,|$)`)
	selectRE = regexp.MustCompile(`(?is)\bSELECT\s+(.+?)\s+FROM\s+([a-z_][a-z0-9_]*)`)
	joinRE   = regexp.MustCompile(`(?i)\bJOIN\s+([a-z_][a-z0-9_]*)(?:\s+(?:AS\s+)?([a-z_][a-z0-9_]*))?`)
)

func checkFile(fset *token.FileSet, f *ast.File, pkgDir string, reg *registry.Registry, policies []*policy.Policy) []finding {
	var out []finding
	pos := func(n ast.Node) string {
		p := fset.Position(n.Pos())
		return p.Filename + ":" + strconv.Itoa(p.Line)
	}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		switch path {
		case "crypto/cipher":
			out = append(out, finding{pos(imp), "imports crypto/cipher: only the door seals and opens personal data"})
		case "steward/internal/keys", "steward/internal/door/internal/keys":
			out = append(out, finding{pos(imp), "imports the key store: only the door may"})
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.BasicLit:
			if x.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(x.Value)
			if err != nil {
				return true
			}
			for _, what := range foreignPersonal(s, pkgDir, reg) {
				out = append(out, finding{pos(x), what})
			}
		case *ast.FuncDecl:
			for _, what := range forbiddenUses(x, policies) {
				out = append(out, finding{pos(x), what})
			}
		}
		return true
	})
	return out
}

// foreignPersonal reports the personal columns of other packages' tables
// that an SQL text selects.
func foreignPersonal(sql, pkg string, reg *registry.Registry) []string {
	m := selectRE.FindStringSubmatch(sql)
	if m == nil {
		return nil
	}
	cols := m[1]
	tables := []string{strings.ToLower(m[2])}
	for _, j := range joinRE.FindAllStringSubmatch(sql, -1) {
		tables = append(tables, strings.ToLower(j[1]))
	}
	var out []string
	for _, name := range tables {
		t, ok := reg.Table(name)
		if !ok || t.Owner == pkg || !t.Personal() {
			continue
		}
		if starRE.MatchString(cols) {
			out = append(out, fmt.Sprintf("selects * from %s, a table of %s holding personal data", name, t.Owner))
			continue
		}
		for _, c := range t.Columns {
			if !c.Personal() {
				continue
			}
			if regexp.MustCompile(`(?i)(^|[^a-z0-9_])` + regexp.QuoteMeta(c.Name) + `($|[^a-z0-9_])`).MatchString(cols) {
				out = append(out, fmt.Sprintf("selects %s.%s, personal data of package %s, around the door", name, c.Name, t.Owner))
			}
		}
	}
	return out
}

// forbiddenUses finds, in one function, door uses built from a literal
// purpose (door.System("marketing"), door.Staff(id, role, "payment"),
// door.Use{Purpose: "…"}) next to a literal field opened or sealed
// (v.Open(ctx, "card_last4", …)), and reports each pair a policy forbids:
// the purpose does not use the field's category, or the field is payment
// data and the purpose is not payment.
func forbiddenUses(fn *ast.FuncDecl, policies []*policy.Policy) []string {
	if fn.Body == nil || len(policies) == 0 {
		return nil
	}
	var purposes, fields []string
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CallExpr:
			sel, ok := x.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "System":
				if len(x.Args) == 1 {
					if s, ok := literal(x.Args[0]); ok {
						purposes = append(purposes, s)
					}
				}
			case "Staff":
				if len(x.Args) == 3 {
					if s, ok := literal(x.Args[2]); ok {
						purposes = append(purposes, s)
					}
				}
			case "Open", "OpenBytes", "Seal", "SealBytes", "Allowed":
				if len(x.Args) >= 2 {
					if s, ok := literal(x.Args[1]); ok {
						fields = append(fields, s)
					}
				}
			}
		case *ast.KeyValueExpr:
			if k, ok := x.Key.(*ast.Ident); ok && k.Name == "Purpose" {
				if s, ok := literal(x.Value); ok {
					purposes = append(purposes, s)
				}
			}
		}
		return true
	})
	var out []string
	for _, p := range policies {
		g := policy.NewGuard(p, nil)
		for _, pu := range purposes {
			for _, f := range fields {
				cat := p.CategoryOfField(f)
				if cat == "" {
					continue
				}
				if d := g.Decide(pu, cat, nil); !d.Allowed && d.Reason != policy.ReasonConsentMissing {
					out = append(out, fmt.Sprintf("%s reads %s (%s) for %s, which %s forbids: %s", fn.Name.Name, f, cat, pu, p.File(), d.Reason))
				}
			}
		}
	}
	return out
}

func literal(e ast.Expr) (string, bool) {
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(b.Value)
	return s, err == nil
}

// moduleRoot is the repository root, two levels above this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s", root)
	}
	return root
}

func examplePolicies(t *testing.T) []*policy.Policy {
	t.Helper()
	var out []*policy.Policy
	for _, name := range []string{"jmir.yaml", "mixi.yaml"} {
		data, err := fs.ReadFile(examples.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.Parse(name, data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestNothingBypassesTheDoor: no package but the door opens sealed data,
// reaches the keys, or selects a personal column of another package's
// table; no door call asks for a use the example policies forbid.
func TestNothingBypassesTheDoor(t *testing.T) {
	reg, err := schema.Registry()
	if err != nil {
		t.Fatal(err)
	}
	found, err := checkBypass(moduleRoot(t), reg, examplePolicies(t)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Error(f)
	}
}

// TestBypassCheckFindsAPlantedRead plants, in a scratch package of a copy
// of the tree's layout, a read of payment data for marketing through the
// door, a raw select of another package's personal column, and a
// hand-rolled AES-GCM open: the check must report all three.
func TestBypassCheckFindsAPlantedRead(t *testing.T) {
	reg, err := schema.Registry()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dir := filepath.Join(root, "internal", "scratch")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := `package scratch

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"database/sql"

	"steward/internal/door"
)

func upsell(ctx context.Context, d *door.Door, db *sql.DB, id string, card door.Sealed) (string, error) {
	v, err := d.Subject(ctx, nil, door.System("marketing"), id)
	if err != nil {
		return "", err
	}
	return v.Open(ctx, "card_last4", card)
}

func peek(db *sql.DB, id string) *sql.Row {
	return db.QueryRow(` + "`SELECT name, phone FROM accounts WHERE subject_id = $1`" + `, id)
}

func open(key, nonce, b []byte) ([]byte, error) {
	block, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(block)
	return g.Open(nil, nonce, b, nil)
}
`
	if err := os.WriteFile(filepath.Join(dir, "scratch.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	found, err := checkBypass(root, reg, examplePolicies(t)...)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, f := range found {
		all.WriteString(f.String() + "\n")
	}
	for _, want := range []string{"reads card_last4 (payment) for marketing", "accounts.name", "crypto/cipher"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("the check missed %q; it found:\n%s", want, all.String())
		}
	}
}
