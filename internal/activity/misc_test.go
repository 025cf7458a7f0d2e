package activity

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"steward/internal/store"
	"steward/internal/store/storetest"
)

func TestRestartKeepsUniqueVisitorsExact(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		start := time.Date(2026, 3, 10, 23, 0, 0, 0, time.UTC)
		f := newFixture(t, db, testConfig(allFields(), time.UTC), start)
		f.collect(t, pageview("https://example.org/a"), req("81.2.69.1", uaChrome)) // 10 March
		f.clk.Set(start.Add(2 * time.Hour))                                         // 11 March, 01:00
		f.collect(t, pageview("https://example.org/a"), req("81.2.69.1", uaChrome))
		f.collect(t, pageview("https://example.org/b"), req("81.2.69.2", uaChrome))
		if err := f.c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}

		g := newFixture(t, db, testConfig(allFields(), time.UTC), start.Add(3*time.Hour))
		g.collect(t, pageview("https://example.org/a"), req("81.2.69.1", uaChrome)) // seen before the restart
		g.collect(t, pageview("https://example.org/b"), req("81.2.69.1", uaChrome)) // new page for visitor 1
		g.collect(t, pageview("https://example.org/a"), req("81.2.69.3", uaChrome)) // new visitor
		g.flush(t)
		if v, u := daily(t, db, DimTotal, "2026-03-11", ""); v != 5 || u != 3 {
			t.Errorf("11 March = %d views %d visitors, want 5/3", v, u)
		}
		if v, u := daily(t, db, DimPage, "2026-03-11", "/a"); v != 3 || u != 2 {
			t.Errorf("/a = %d views %d visitors, want 3/2", v, u)
		}
		if v, u := daily(t, db, DimPage, "2026-03-11", "/b"); v != 2 || u != 2 {
			t.Errorf("/b = %d views %d visitors, want 2/2", v, u)
		}
		if g.c.w.seen.has(dayID{"demo", "2026-03-10"}, 0) || len(g.c.w.seen.days) > 1 {
			t.Errorf("the rebuilt set holds %d days, want only 11 March", len(g.c.w.seen.days))
		}
	})
}

func TestAgentCacheIsBounded(t *testing.T) {
	a := newAgents()
	for i := 0; i < 3*agentCacheSize; i++ {
		ua := fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0", i, i)
		if got := a.parse(ua); got.Browser != "Firefox" || got.OS != "Linux" || got.Bot {
			t.Fatalf("parse(%q) = %+v", ua, got)
		}
	}
	a.mu.RLock()
	n := len(a.cur) + len(a.prev)
	a.mu.RUnlock()
	if n > 2*agentCacheSize {
		t.Errorf("cache holds %d entries, bound is %d", n, 2*agentCacheSize)
	}
	if !a.parse(strings.Repeat("Mozilla/5.0 ", 100)).Bot {
		t.Error("an over-long user agent is not treated as a bot")
	}
}

// The tracker is small, uses no cookie or browser storage, talks only to
// the server it came from, and sends only what the policy records.
func TestTracker(t *testing.T) {
	db := storetest.SQLite(t, mods())
	f := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
	js, etag := f.c.Tracker()
	if len(js) >= 2048 {
		t.Errorf("tracker.js is %d bytes, want under 2 KB", len(js))
	}
	if etag == "" || !strings.HasPrefix(etag, `"`) {
		t.Errorf("etag = %q", etag)
	}
	src := string(js)
	for _, banned := range []string{"cookie", "localStorage", "sessionStorage", "indexedDB", "openDatabase", "caches.", "http://", "https://", "fingerprint", "canvas"} {
		if strings.Contains(src, banned) {
			t.Errorf("tracker mentions %q", banned)
		}
	}
	for _, want := range []string{"sendBeacon", "keepalive", "/api/v1/collect", "data-site", "pushState", "visibilitychange", "steward", `F="prsvodeq"`} {
		if !strings.Contains(src, want) {
			t.Errorf("tracker lacks %q", want)
		}
	}
	// Only the endpoint of the script's own origin is contacted.
	if m := regexp.MustCompile(`fetch\(([^,]+),`).FindStringSubmatch(src); m == nil || m[1] != "api" {
		t.Errorf("fetch target = %v, want the api variable", m)
	}
	if !strings.Contains(src, `new URL(s.src).origin+"/api/v1/collect"`) {
		t.Error("the endpoint is not derived from the script's own origin")
	}
	g := newFixture(t, storetest.SQLite(t, mods()), testConfig(map[string]bool{FieldPage: true}, time.UTC), day1)
	if js, _ := g.c.Tracker(); !strings.Contains(string(js), `F="p"`) {
		t.Error("a policy recording only pages gets a tracker with other features")
	}
}

// SQLite holds rollups back; when the process dies before writing them,
// the next start counts the events past the watermark, exactly once.
func TestHeldRollupsSurviveACrash(t *testing.T) {
	db := storetest.SQLite(t, mods())
	f := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
	for i := 0; i < 5; i++ {
		f.collect(t, pageview(fmt.Sprintf("https://example.org/p%d", i%2)), req(fmt.Sprintf("81.2.69.%d", i%3), uaChrome))
	}
	if got := count(t, db, `SELECT COUNT(*) FROM activity_daily`); got != 0 {
		t.Fatalf("rollups written before they were due: %d rows", got)
	}
	// The crash: the held rollups are lost with the process.
	f.c.w.crashed.Store(true)
	if err := f.c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	g := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
	if v, u := daily(t, db, DimTotal, "2026-03-10", ""); v != 5 || u != 3 {
		t.Errorf("after restart total = %d views %d visitors, want 5/3", v, u)
	}
	g.collect(t, pageview("https://example.org/p0"), req("81.2.69.0", uaChrome)) // seen before the crash
	g.collect(t, pageview("https://example.org/p9"), req("81.2.69.9", uaChrome)) // new
	g.flush(t)
	if v, u := daily(t, db, DimTotal, "2026-03-10", ""); v != 7 || u != 4 {
		t.Errorf("total = %d views %d visitors, want 7/4", v, u)
	}
	if v, u := daily(t, db, DimPage, "2026-03-10", "/p0"); v != 4 || u != 3 {
		t.Errorf("/p0 = %d views %d visitors, want 4/3", v, u)
	}
	var last int64
	db.QueryRowContext(context.Background(), `SELECT last_id FROM activity_rollup_state WHERE name = 'events'`).Scan(&last)
	if last != 7 {
		t.Errorf("watermark = %d, want 7", last)
	}
}

// TestEmptyTextsStoredEmpty: an event's empty values are stored as empty
// texts, never NULL, and its set values as they were — whatever each
// engine's insert binds for an empty one.
func TestEmptyTextsStoredEmpty(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, testConfig(allFields(), time.UTC), time.Now().UTC())
		f.collect(t, pageview("https://example.org/a"), req("81.2.69.1", uaChrome))
		in := Input{Site: "demo", Type: TypeEvent, URL: "https://example.org/b", Name: "zoom"}
		f.collect(t, in, req("81.2.69.1", uaChrome))
		cols := []string{"page", "query", "referrer", "search", "link", "asset", "name", "props", "country", "region", "city", "browser", "os", "screen"}
		for _, c := range cols {
			if n := count(t, db, `SELECT COUNT(*) FROM activity_events WHERE `+c+` IS NULL`); n != 0 {
				t.Errorf("%s is NULL in %d rows", c, n)
			}
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity_events WHERE page = '/a' AND name = '' AND link = '' AND browser = 'Chrome'`); n != 1 {
			t.Errorf("the page view is stored %d times as sent", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity_events WHERE page = '/b' AND name = 'zoom' AND browser = ''`); n != 1 {
			t.Errorf("the event is stored %d times as sent", n)
		}
	})
}

// TestCancelledSubmitsLoseNothing: requests whose clients go away while
// their events wait for the group commit leave the others' answers
// right (the pending events are pooled and reused): every acknowledged
// event is stored, and nothing more than was sent.
func TestCancelledSubmitsLoseNothing(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, testConfig(allFields(), time.UTC), time.Now().UTC())
		const n = 400
		var acked atomic.Int64
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if i%2 == 1 {
					go func() {
						time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
						cancel()
					}()
				}
				r := req(fmt.Sprintf("81.2.%d.%d", i/200, i%200+1), uaChrome)
				if err := f.c.Collect(ctx, pageview(fmt.Sprintf("https://example.org/p/%d", i)), r); err == nil {
					acked.Add(1)
				}
			}()
		}
		wg.Wait()
		f.flush(t)
		stored := count(t, db, `SELECT COUNT(*) FROM activity_events`)
		if stored < acked.Load() || stored > n {
			t.Errorf("%d acknowledged, %d stored, %d sent", acked.Load(), stored, n)
		}
		if acked.Load() < n/2 {
			t.Errorf("only %d of the %d events not cancelled were acknowledged", acked.Load(), n/2)
		}
	})
}
