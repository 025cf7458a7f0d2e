package activity

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"steward/internal/store"
	"steward/internal/store/storetest"
)

// holdLong keeps rollups in memory until a flush asks for them, so a test
// decides when they are written.
func holdLong(d *Deps) { d.RollupInterval = time.Hour }

func pendingRows(t *testing.T, db *store.DB) int64 {
	t.Helper()
	return count(t, db, `SELECT COUNT(*) FROM activity_pending`)
}

// Two Steward processes on one PostgreSQL database: the batches a process
// leaves when it dies are rolled up by the other, exactly once, and not
// while their writer lives; unique visitors stay exact across processes.
func TestPostgresDeadWritersBatchesAreAdoptedOnce(t *testing.T) {
	db := storetest.Postgres(t, mods())
	cfg := testConfig(allFields(), time.UTC)
	a := newFixtureWith(t, db, cfg, day1, holdLong)
	b := newFixtureWith(t, db, cfg, day1, holdLong)
	for i := 0; i < 5; i++ {
		a.collect(t, pageview(fmt.Sprintf("https://example.org/p%d", i%2)), req(fmt.Sprintf("81.2.69.%d", i%3), uaChrome))
	}
	if got := count(t, db, `SELECT COUNT(*) FROM activity_daily`); got != 0 {
		t.Fatalf("rollups written before they were due: %d rows", got)
	}
	if pendingRows(t, db) == 0 {
		t.Fatal("committed batches left no pending row")
	}
	// A lives: B must not take its batches.
	b.flush(t)
	if v, _ := daily(t, db, DimTotal, "2026-03-10", ""); v != 0 {
		t.Fatalf("B rolled up a live writer's batches: %d views", v)
	}
	// A dies without writing its rollups; its lock goes with its connection.
	a.c.w.crashed.Store(true)
	if err := a.c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.flush(t)
	if v, u := daily(t, db, DimTotal, "2026-03-10", ""); v != 5 || u != 3 {
		t.Errorf("after adoption total = %d views %d visitors, want 5/3", v, u)
	}
	if n := pendingRows(t, db); n != 0 {
		t.Errorf("%d pending rows left after adoption", n)
	}
	b.collect(t, pageview("https://example.org/p0"), req("81.2.69.0", uaChrome)) // seen by A
	b.collect(t, pageview("https://example.org/p9"), req("81.2.69.9", uaChrome)) // new
	b.flush(t)
	b.flush(t) // a second flush finds nothing to add
	if v, u := daily(t, db, DimTotal, "2026-03-10", ""); v != 7 || u != 4 {
		t.Errorf("total = %d views %d visitors, want 7/4", v, u)
	}
	if v, u := daily(t, db, DimPage, "2026-03-10", "/p0"); v != 4 || u != 3 {
		t.Errorf("/p0 = %d views %d visitors, want 4/3", v, u)
	}
}

// A process that loses its lock while alive (its connection dropped, say)
// may see its batches adopted by another; its own flush then finds fewer
// pending rows than it holds, drops its memory copy and adopts the rest,
// so nothing is counted twice or missed.
func TestPostgresWriterThatLostItsLockCountsOnce(t *testing.T) {
	db := storetest.Postgres(t, mods())
	cfg := testConfig(allFields(), time.UTC)
	a := newFixtureWith(t, db, cfg, day1, holdLong)
	b := newFixtureWith(t, db, cfg, day1, holdLong)
	for i := 0; i < 4; i++ {
		a.collect(t, pageview("https://example.org/x"), req(fmt.Sprintf("81.2.69.%d", i), uaChrome))
	}
	a.c.w.pgUnlock() // the lock connection is gone; A goes on
	b.flush(t)       // B takes A's four
	if v, u := daily(t, db, DimTotal, "2026-03-10", ""); v != 4 || u != 4 {
		t.Fatalf("after adoption total = %d/%d, want 4/4", v, u)
	}
	a.collect(t, pageview("https://example.org/x"), req("81.2.69.0", uaChrome))
	a.collect(t, pageview("https://example.org/y"), req("81.2.69.7", uaChrome))
	a.flush(t) // holds six events, of which four were adopted
	if v, u := daily(t, db, DimTotal, "2026-03-10", ""); v != 6 || u != 5 {
		t.Errorf("total = %d views %d visitors, want 6/5", v, u)
	}
	if n := pendingRows(t, db); n != 0 {
		t.Errorf("%d pending rows left", n)
	}
	if !strings.Contains(a.log.String(), "adopted some held batches") {
		t.Error("the writer did not notice its batches were adopted")
	}
	// A has a new writer id and lock: B cannot take what it holds now.
	a.collect(t, pageview("https://example.org/z"), req("81.2.69.8", uaChrome))
	b.flush(t)
	if v, _ := daily(t, db, DimTotal, "2026-03-10", ""); v != 6 {
		t.Errorf("B adopted a batch of A's new writer id: total %d", v)
	}
	a.flush(t)
	if v, _ := daily(t, db, DimTotal, "2026-03-10", ""); v != 7 {
		t.Errorf("total = %d, want 7", v)
	}
}

// Two live processes collecting at once: the rollups equal the raw events
// and the visitors are the distinct ones, whichever process saw them.
func TestPostgresConcurrentProcessesAgree(t *testing.T) {
	db := storetest.Postgres(t, mods())
	cfg := testConfig(allFields(), time.UTC)
	procs := []*fixture{
		newFixtureWith(t, db, cfg, day1, func(d *Deps) { d.RollupInterval = 20 * time.Millisecond }),
		newFixtureWith(t, db, cfg, day1, func(d *Deps) { d.RollupInterval = 20 * time.Millisecond }),
	}
	const perWorker, workers = 40, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			f := procs[w%2]
			for i := 0; i < perWorker; i++ {
				ip := fmt.Sprintf("81.2.%d.%d", i%5, w%3) // 15 visitors shared by both processes
				if err := f.c.Collect(context.Background(), pageview(fmt.Sprintf("https://example.org/c%d", i%7)), req(ip, uaFirefox)); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, f := range procs {
		f.flush(t)
	}
	views, visitors := daily(t, db, DimTotal, "2026-03-10", "")
	if want := int64(perWorker * workers); views != want {
		t.Errorf("rollups count %d views, want %d", views, want)
	}
	if visitors != 15 {
		t.Errorf("visitors = %d, want 15", visitors)
	}
	var pages int64
	db.QueryRowContext(context.Background(), `SELECT COALESCE(SUM(visitors), 0) FROM activity_daily WHERE dim = 'page'`).Scan(&pages)
	var distinct int64
	db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM (SELECT DISTINCT visitor, page FROM activity_events) s`).Scan(&distinct)
	if pages != distinct {
		t.Errorf("page visitors sum to %d, the distinct (visitor, page) pairs are %d", pages, distinct)
	}
}

// The lock's connection dies (the database killed it): the next check
// takes a new writer id and adopts the old id's batches, which this process
// still holds in memory; batches committed after that, under the new id,
// are flushed as usual. Every event is counted once.
func TestPostgresLockConnectionLostCountsOnce(t *testing.T) {
	db := storetest.Postgres(t, mods())
	ctx := context.Background()
	a := newFixtureWith(t, db, testConfig(allFields(), time.UTC), day1, holdLong)
	a.collect(t, pageview("https://example.org/x"), req("81.2.69.1", uaChrome))
	a.collect(t, pageview("https://example.org/x"), req("81.2.69.2", uaChrome))
	var pid int
	if err := a.c.w.pg.lock.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	// What the flusher does every adoptEvery.
	a.c.w.pgCheckLock(ctx)
	if err := a.c.w.adoptOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := daily(t, db, DimTotal, "2026-03-10", ""); v != 2 {
		t.Fatalf("after the old id's adoption total = %d, want 2", v)
	}
	a.collect(t, pageview("https://example.org/x"), req("81.2.69.3", uaChrome))
	a.collect(t, pageview("https://example.org/y"), req("81.2.69.1", uaChrome))
	a.flush(t)
	if v, u := daily(t, db, DimTotal, "2026-03-10", ""); v != 4 || u != 3 {
		t.Errorf("total = %d views %d visitors, want 4/3", v, u)
	}
	if n := pendingRows(t, db); n != 0 {
		t.Errorf("%d pending rows left", n)
	}
}

// A flush whose transaction fails (here: the hourly rollup table is
// missing) writes nothing and keeps the batches held; the next flush counts
// them once.
func TestPostgresFailedFlushIsRetried(t *testing.T) {
	db := storetest.Postgres(t, mods())
	ctx := context.Background()
	a := newFixtureWith(t, db, testConfig(allFields(), time.UTC), day1, holdLong)
	a.collect(t, pageview("https://example.org/x"), req("81.2.69.1", uaChrome))
	a.collect(t, pageview("https://example.org/x"), req("81.2.69.2", uaChrome))
	if _, err := db.ExecContext(ctx, `ALTER TABLE activity_hourly RENAME TO activity_hourly_away`); err != nil {
		t.Fatal(err)
	}
	if err := a.c.Flush(ctx); err == nil {
		t.Fatal("the flush succeeded without its table")
	}
	if n := count(t, db, `SELECT COUNT(*) FROM activity_daily`); n != 0 {
		t.Fatalf("a failed flush left %d daily rows", n)
	}
	if n := pendingRows(t, db); n != 2 {
		t.Fatalf("a failed flush left %d pending rows, want 2", n)
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE activity_hourly_away RENAME TO activity_hourly`); err != nil {
		t.Fatal(err)
	}
	a.collect(t, pageview("https://example.org/y"), req("81.2.69.1", uaChrome))
	a.flush(t)
	if v, u := daily(t, db, DimTotal, "2026-03-10", ""); v != 3 || u != 2 {
		t.Errorf("total = %d views %d visitors, want 3/2", v, u)
	}
	if n := pendingRows(t, db); n != 0 {
		t.Errorf("%d pending rows left", n)
	}
}
