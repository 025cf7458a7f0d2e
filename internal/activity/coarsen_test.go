package activity

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"steward/internal/store"
	"steward/internal/store/storetest"
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

// TestAgeingReachesSitesNoLongerConfigured: the rollups of a site taken
// out of the configuration are aged by the same rule, not kept for ever.
func TestAgeingReachesSitesNoLongerConfigured(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, site := range []string{"demo", "gone"} {
			for _, day := range []string{"2026-01-10", "2026-03-10"} {
				if _, err := db.ExecContext(ctx, `INSERT INTO activity_daily (site, dim, day, value, views, visitors, duration_ms, durations)
VALUES ($1, $2, $3, '', 5, 3, 0, 0)`, site, DimTotal, day); err != nil {
					t.Fatal(err)
				}
			}
		}
		sites := testConfig(allFields(), time.UTC).Sites
		if _, err := NewRollups(db, sites, 5).AgeOut(ctx, AgeOut{Before: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
		for _, site := range []string{"demo", "gone"} {
			if n := count(t, db, `SELECT COUNT(*) FROM activity_daily WHERE site = $1 AND day < '2026-02-01'`, site); n != 0 {
				t.Errorf("%s: %d daily rows past their time", site, n)
			}
			if n := count(t, db, `SELECT COUNT(*) FROM activity_daily WHERE site = $1 AND day >= '2026-02-01'`, site); n != 1 {
				t.Errorf("%s: %d daily rows within their time, want 1", site, n)
			}
		}
	})
}
