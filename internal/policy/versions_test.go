package policy

import (
	"context"
	"sync"
	"testing"
	"time"

	"steward/internal/fault"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

var t0 = time.Date(2026, 11, 1, 9, 30, 0, 123456000, time.UTC)

func TestPublish(t *testing.T) {
	storetest.Each(t, []store.Migrations{Migrations()}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := Latest(ctx, db); fault.CodeOf(err) != fault.NotFound {
			t.Fatalf("Latest on an empty archive = %v, want not_found", err)
		}
		text := exampleText(t, "mixi.yaml")
		p1 := mustParse(t, "mixi.yaml", text)
		v1, created, err := Publish(ctx, db, p1, t0)
		if err != nil || !created {
			t.Fatalf("first Publish = %+v, %v, %v", v1, created, err)
		}
		if v1.Number != 1 || v1.Hash != p1.Hash() || v1.Classification != "first" || !v1.PublishedAt.Equal(t0) {
			t.Errorf("first version = %+v", v1)
		}

		// Republishing the same meaning (comments differ) is a no-op.
		again := mustParse(t, "mixi.yaml", "# reformatted\n"+text)
		v, created, err := Publish(ctx, db, again, t0.Add(time.Hour))
		if err != nil || created || v.Number != 1 {
			t.Fatalf("republish = %+v, %v, %v; want version 1 unchanged", v, created, err)
		}

		// A minor change.
		p2 := mustParse(t, "mixi.yaml", edit(t, text, "  activity: 13 months", "  activity: 6 months"))
		v2, created, err := Publish(ctx, db, p2, t0.Add(2*time.Hour))
		if err != nil || !created {
			t.Fatalf("Publish minor = %v, %v", created, err)
		}
		if v2.Number != 2 || v2.Significant || v2.ReducesRights || v2.Classification != "minor" {
			t.Errorf("minor version = %+v", v2)
		}
		if !contains(v2.Reasons, "Category activity is kept for less time: 6 months, then monthly aggregates instead of 13 months, then monthly aggregates.") {
			t.Errorf("minor reasons = %q", v2.Reasons)
		}

		// A reduction of rights.
		p3 := mustParse(t, "mixi.yaml", edit(t, edit(t, text, "  activity: 13 months", "  activity: 6 months"), "  portability: {}\n", ""))
		v3, created, err := Publish(ctx, db, p3, t0.Add(3*time.Hour))
		if err != nil || !created {
			t.Fatalf("Publish significant = %v, %v", created, err)
		}
		if v3.Number != 3 || !v3.Significant || !v3.ReducesRights || v3.Classification != "significant" {
			t.Errorf("significant version = %+v", v3)
		}
		if len(v3.Reasons) != 1 || v3.Reasons[0] != "The right of portability is no longer offered." {
			t.Errorf("significant reasons = %q", v3.Reasons)
		}

		// Going back to version 1's text is a new version, not a rewind.
		v4, created, err := Publish(ctx, db, p1, t0.Add(4*time.Hour))
		if err != nil || !created || v4.Number != 4 || v4.Hash != v1.Hash {
			t.Errorf("revert = %+v, %v, %v", v4, created, err)
		}

		got, err := Get(ctx, db, 3)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hash != v3.Hash || !got.Significant || !got.ReducesRights || !got.PublishedAt.Equal(v3.PublishedAt) || string(got.Raw) != string(p3.Raw()) {
			t.Errorf("Get(3) = %+v, want %+v", got, v3)
		}
		back, err := got.Policy()
		if err != nil || back.Hash() != p3.Hash() {
			t.Errorf("Get(3).Policy() = %v, hash %s; want %s", err, back.Hash(), p3.Hash())
		}
		if _, err := Get(ctx, db, 99); fault.CodeOf(err) != fault.NotFound {
			t.Errorf("Get(99) = %v, want not_found", err)
		}
		latest, err := Latest(ctx, db)
		if err != nil || latest.Number != 4 {
			t.Errorf("Latest = %d, %v", latest.Number, err)
		}
	})
}

// TestPromiseM16_VersionsArchived: every published version stays
// retrievable with its effective date, its publication time and its
// classification.
func TestPromiseM16_VersionsArchived(t *testing.T) {
	storetest.Each(t, []store.Migrations{Migrations()}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		text := exampleText(t, "mixi.yaml")
		dates := []string{"2026-11-01", "2027-01-15", "2027-06-30"}
		var published []Version
		for i, d := range dates {
			p := mustParse(t, "mixi.yaml", edit(t, text, "version: 2026-11-01", "version: "+d))
			v, created, err := Publish(ctx, db, p, t0.AddDate(0, i, 0))
			if err != nil || !created {
				t.Fatalf("Publish %s: %v, %v", d, created, err)
			}
			published = append(published, v)
		}
		list, err := List(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != len(dates) {
			t.Fatalf("List has %d versions, want %d", len(list), len(dates))
		}
		for i, v := range list {
			want := published[len(published)-1-i]
			if v.Number != want.Number || v.EffectiveDate.Format(time.DateOnly) != dates[want.Number-1] || !v.PublishedAt.Equal(want.PublishedAt) {
				t.Errorf("List[%d] = %d %s %s, want %d %s %s", i, v.Number, v.EffectiveDate, v.PublishedAt, want.Number, dates[want.Number-1], want.PublishedAt)
			}
			if v.Raw != nil {
				t.Errorf("List[%d] carries the raw file", i)
			}
		}
		for n := 1; n <= len(dates); n++ {
			v, err := Get(ctx, db, n)
			if err != nil {
				t.Fatalf("Get(%d): %v", n, err)
			}
			p, err := v.Policy()
			if err != nil {
				t.Fatalf("version %d does not parse back: %v", n, err)
			}
			if p.Version != dates[n-1] || v.EffectiveDate.Format(time.DateOnly) != dates[n-1] {
				t.Errorf("version %d effective %s / %s, want %s", n, p.Version, v.EffectiveDate, dates[n-1])
			}
			if _, err := Render(p, Meta{Number: v.Number, EffectiveDate: v.EffectiveDate, Hash: v.Hash}, "html"); err != nil {
				t.Errorf("version %d does not render: %v", n, err)
			}
		}
		if got := published[1].Classification; got != "minor" {
			t.Errorf("a date change is %s, want minor", got)
		}
	})
}

// TestPublishConcurrently: processes starting together publish one version.
func TestPublishConcurrently(t *testing.T) {
	storetest.Each(t, []store.Migrations{Migrations()}, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		p := example(t, "jmir.yaml")
		const n = 6
		var wg sync.WaitGroup
		errs := make(chan error, n)
		numbers := make(chan int, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, _, err := Publish(ctx, db, p, t0)
				errs <- err
				numbers <- v.Number
			}()
		}
		wg.Wait()
		close(errs)
		close(numbers)
		for err := range errs {
			if err != nil {
				t.Errorf("Publish: %v", err)
			}
		}
		for num := range numbers {
			if num != 1 {
				t.Errorf("a publisher got version %d, want 1", num)
			}
		}
		list, err := List(ctx, db)
		if err != nil || len(list) != 1 {
			t.Errorf("List = %d versions, %v; want 1", len(list), err)
		}
	})
}

func TestTablesDeclareSchema(t *testing.T) {
	storetest.Each(t, []store.Migrations{Migrations()}, func(t *testing.T, db *store.DB) {
		reg, err := registry.New(Tables())
		if err != nil {
			t.Fatal(err)
		}
		cols, err := db.Columns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var live []registry.LiveColumn
		for _, c := range cols {
			live = append(live, registry.LiveColumn{Table: c.Table, Name: c.Name})
		}
		if problems := reg.Undeclared(live, "schema_migrations"); len(problems) != 0 {
			t.Errorf("registry problems: %v", problems)
		}
	})
}

// TestArchivedVersionSurvivesNewChecks: a version published before a check
// existed still reads back, even though Parse would now refuse it.
func TestArchivedVersionSurvivesNewChecks(t *testing.T) {
	// Pretend an older Steward accepted a category no purpose uses.
	raw := exampleTextOf("minimal") + "  activity: 13 months\n"
	raw = edit(t, raw, "purposes:", "  activity:\n    description: Pages.\n    fields: [page]\n    source: [observed]\npurposes:")
	if _, err := Parse("now", []byte(raw)); err == nil {
		t.Fatal("the fixture is accepted by Parse; it must need the archive path")
	}
	p, err := Version{Number: 7, Raw: []byte(raw)}.Policy()
	if err != nil {
		t.Fatalf("archived version does not read back: %v", err)
	}
	if _, err := Render(p, Meta{Number: 7}, "html"); err != nil {
		t.Errorf("archived version does not render: %v", err)
	}
	if _, err := (Version{Number: 8, Raw: []byte("controller: [")}).Policy(); err == nil {
		t.Error("a version that is not YAML read back")
	}
}
