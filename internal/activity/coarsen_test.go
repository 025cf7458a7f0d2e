package activity

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestAgeingNamesEveryDimension: ageing selects rollup rows by dimension
// (so the index serves a range of days); a dimension it did not name would
// be kept forever.
func TestAgeingNamesEveryDimension(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "rollup.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ast.Inspect(f, func(node ast.Node) bool {
		vs, ok := node.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if !strings.HasPrefix(name.Name, "Dim") || i >= len(vs.Values) {
				continue
			}
			lit, ok := vs.Values[i].(*ast.BasicLit)
			if !ok {
				continue
			}
			v, _ := strconv.Unquote(lit.Value)
			n++
			if !slices.Contains(allDims, v) {
				t.Errorf("%s (%q) is not in allDims", name.Name, v)
			}
		}
		return true
	})
	if n != len(allDims) {
		t.Errorf("rollup.go declares %d dimensions, allDims names %d", n, len(allDims))
	}
}
