package schema

import (
	"context"
	"testing"

	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestRegistryCoversLiveSchema reads the live schema of each engine after
// every migration and fails on any table or column that no package
// declares in the personal-data registry, and on declarations that name
// columns the database lacks.
func TestRegistryCoversLiveSchema(t *testing.T) {
	reg, err := Registry()
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, Migrations(), func(t *testing.T, db *store.DB) {
		cols, err := db.Columns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(cols) == 0 {
			t.Fatal("the live schema has no columns")
		}
		live := make([]registry.LiveColumn, len(cols))
		for i, c := range cols {
			live[i] = registry.LiveColumn{Table: c.Table, Name: c.Name}
		}
		for _, p := range reg.Undeclared(live, "schema_migrations") {
			t.Error(p)
		}
	})
}

// TestModulesOwnTheirTables: each module declares only tables it owns, so
// one list entry holds one package's migrations with that package's
// declarations.
func TestModulesOwnTheirTables(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range Modules() {
		if seen[m.Migrations.Module] {
			t.Errorf("module %s is listed twice", m.Migrations.Module)
		}
		seen[m.Migrations.Module] = true
		for _, tab := range m.Tables {
			if tab.Owner != m.Migrations.Module {
				t.Errorf("module %s declares table %s owned by %s", m.Migrations.Module, tab.Name, tab.Owner)
			}
		}
	}
}
