package activity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"steward/internal/fault"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

var day1 = time.Date(2026, 3, 10, 9, 15, 0, 0, time.UTC)

func TestCollectStoresAndRollsUp(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
		in := pageview("https://example.org/articles/privacy?utm_campaign=spring&utm_source=news&session=abc&q=Cookie%20Law")
		in.Referrer = "https://www.search.example/results?q=secret"
		in.Screen = "laptop"
		f.collect(t, in, req("81.2.69.142", uaChrome))

		var page, query, ref, search, browser, os, screen string
		err := db.QueryRowContext(context.Background(), `SELECT page, query, referrer, search, browser, os, screen FROM activity_events`).
			Scan(&page, &query, &ref, &search, &browser, &os, &screen)
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct{ name, got, want string }{
			{"page", page, "/articles/privacy"},
			{"query (utm only)", query, "utm_campaign=spring&utm_source=news"},
			{"referrer (no query)", ref, "https://www.search.example/results"},
			{"search", search, "cookie law"},
			{"browser", browser, "Chrome"},
			{"os", os, "Windows"},
			{"screen", screen, "laptop"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
			}
		}
		f.flush(t)
		for _, r := range []struct{ dim, value string }{
			{DimTotal, ""}, {DimPage, "/articles/privacy"}, {DimReferrer, "www.search.example"}, {DimCampaign, "spring"},
			{DimSearch, "cookie law"}, {DimBrowser, "Chrome"}, {DimOS, "Windows"}, {DimScreen, "laptop"},
		} {
			if v, u := daily(t, db, r.dim, "2026-03-10", r.value); v != 1 || u != 1 {
				t.Errorf("daily %s/%q = %d views %d visitors, want 1/1", r.dim, r.value, v, u)
			}
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity_hourly WHERE views = 1 AND visitors = 1`); n != 1 {
			t.Errorf("hourly rows with 1 view and visitor = %d, want 1", n)
		}
	})
}

func TestUniqueVisitorsAreExactAcrossBatches(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
		// Three visitors; visitor A views /a three times and /b once.
		for i := 0; i < 3; i++ {
			f.collect(t, pageview("https://example.org/a"), req("81.2.69.1", uaChrome))
		}
		f.collect(t, pageview("https://example.org/b"), req("81.2.69.1", uaChrome))
		f.collect(t, pageview("https://example.org/a"), req("81.2.69.2", uaChrome))
		f.collect(t, pageview("https://example.org/a"), req("81.2.69.2", uaFirefox)) // another UA: another visitor
		// A second collector (another process on PostgreSQL, a restart on
		// SQLite, whose single writer holds rollups back until it flushes)
		// must not count visitor A again.
		f.flush(t)
		g := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
		g.collect(t, pageview("https://example.org/a"), req("81.2.69.1", uaChrome))
		f.flush(t)
		g.flush(t)

		if v, u := daily(t, db, DimTotal, "2026-03-10", ""); v != 7 || u != 3 {
			t.Errorf("total = %d views %d visitors, want 7/3", v, u)
		}
		if v, u := daily(t, db, DimPage, "2026-03-10", "/a"); v != 6 || u != 3 {
			t.Errorf("/a = %d views %d visitors, want 6/3", v, u)
		}
		if v, u := daily(t, db, DimPage, "2026-03-10", "/b"); v != 1 || u != 1 {
			t.Errorf("/b = %d views %d visitors, want 1/1", v, u)
		}
		if v, u := daily(t, db, DimBrowser, "2026-03-10", "Firefox"); v != 1 || u != 1 {
			t.Errorf("Firefox = %d/%d, want 1/1", v, u)
		}
	})
}

func TestGroupCommitConcurrent(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
		const n = 600
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				in := pageview(fmt.Sprintf("https://example.org/p/%d", i%50))
				errs <- f.c.Collect(context.Background(), in, req(fmt.Sprintf("81.2.%d.%d", i%7, i%11), uaChrome))
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
		}
		if got := count(t, db, `SELECT COUNT(*) FROM activity_events`); got != n {
			t.Errorf("events = %d, want %d", got, n)
		}
		f.flush(t)
		if v, u := daily(t, db, DimTotal, "2026-03-10", ""); v != n || u != 77 {
			t.Errorf("total = %d views %d visitors, want %d/77", v, u, n)
		}
		if got := count(t, db, `SELECT SUM(views) FROM activity_daily WHERE dim = 'page'`); got != n {
			t.Errorf("page views summed = %d, want %d", got, n)
		}
	})
}

func TestBotsAreDropped(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
		for _, ua := range []string{
			"", "curl/8.5.0", "python-requests/2.31", "Go-http-client/1.1",
			"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
			"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
		} {
			err := f.c.Collect(context.Background(), pageview("https://example.org/"), req("81.2.69.1", ua))
			if !errors.Is(err, ErrNotRecorded) {
				t.Errorf("UA %q: err = %v, want ErrNotRecorded", ua, err)
			}
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity_events`); n != 0 {
			t.Errorf("events = %d, want 0", n)
		}
	})
}

func TestOriginsAreChecked(t *testing.T) {
	db := storetest.SQLite(t, mods())
	f := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
	r := req("81.2.69.1", uaChrome)
	r.Origin = "https://evil.example"
	if err := f.c.Collect(context.Background(), pageview("https://example.org/"), r); fault.CodeOf(err) != fault.Forbidden {
		t.Errorf("foreign Origin: err = %v, want forbidden", err)
	}
	if err := f.c.Collect(context.Background(), pageview("https://evil.example/"), req("81.2.69.1", uaChrome)); fault.FieldOf(err) != "url" {
		t.Errorf("page on a foreign origin: err = %v, want invalid url", err)
	}
	if err := f.c.Collect(context.Background(), Input{Site: "forged", Type: TypePageview, URL: "https://example.org/"}, req("81.2.69.1", uaChrome)); fault.FieldOf(err) != "site" {
		t.Errorf("forged site: err = %v, want invalid site", err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM activity_events`); n != 0 {
		t.Errorf("events = %d, want 0", n)
	}
}

func TestCloseCommitsQueuedEvents(t *testing.T) {
	db := storetest.SQLite(t, mods())
	f := newFixture(t, db, testConfig(allFields(), time.UTC), day1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f.c.Collect(context.Background(), pageview("https://example.org/x"), req("81.2.69.1", uaChrome)) == nil {
				mu.Lock()
				acked++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := f.c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if got := count(t, db, `SELECT COUNT(*) FROM activity_events`); got != int64(acked) {
		t.Errorf("events after Close = %d, acknowledged = %d", got, acked)
	}
	if err := f.c.Collect(context.Background(), pageview("https://example.org/x"), req("81.2.69.1", uaChrome)); err == nil {
		t.Error("Collect after Close succeeded")
	}
}
