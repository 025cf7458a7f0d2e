package activity

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"steward/internal/clock"
	"steward/internal/policy"
	"steward/internal/store"
)

// Browser user agents the tests send.
const (
	uaChrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	uaSafari  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)

// allFields records everything (a JMIR-like policy).
func allFields() map[string]bool {
	m := map[string]bool{}
	for _, f := range AllFields {
		m[f] = true
	}
	return m
}

func testConfig(fields map[string]bool, loc *time.Location) Config {
	return Config{
		Sites:       []Site{{ID: "demo", Origins: []string{"https://example.org"}, Location: loc}},
		Fields:      fields,
		Granularity: policy.GranularityCity,
		SearchParam: "q",
	}
}

// syncBuffer is a log sink safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	c   *Collector
	db  *store.DB
	clk *clock.Fake
	log *syncBuffer
}

func newFixture(t testing.TB, db *store.DB, cfg Config, start time.Time) *fixture {
	t.Helper()
	return newFixtureWith(t, db, cfg, start, nil)
}

// newFixtureWith is newFixture with Deps adjusted by set (when not nil).
func newFixtureWith(t testing.TB, db *store.DB, cfg Config, start time.Time, set func(*Deps)) *fixture {
	t.Helper()
	f := &fixture{db: db, clk: clock.NewFake(start), log: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := Deps{DB: db, Clock: f.clk, Log: logger, Config: cfg}
	if set != nil {
		set(&d)
	}
	c, err := New(d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	f.c = c
	return f
}

func req(ip, ua string) Request {
	return Request{IP: netip.MustParseAddr(ip), UserAgent: ua, Origin: "https://example.org"}
}

// flush writes the rollups the collector holds back.
func (f *fixture) flush(t testing.TB) {
	t.Helper()
	if err := f.c.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func (f *fixture) collect(t testing.TB, in Input, r Request) {
	t.Helper()
	if err := f.c.Collect(context.Background(), in, r); err != nil {
		t.Fatalf("Collect(%+v): %v", in, err)
	}
}

func pageview(url string) Input { return Input{Site: "demo", Type: TypePageview, URL: url} }

func count(t testing.TB, db *store.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// daily returns views and visitors of a daily rollup row (0, 0 when none).
func daily(t testing.TB, db *store.DB, dim, day, value string) (views, visitors int64) {
	t.Helper()
	err := db.QueryRowContext(context.Background(),
		`SELECT COALESCE(SUM(views),0), COALESCE(SUM(visitors),0) FROM activity_daily WHERE site = 'demo' AND dim = $1 AND day = $2 AND value = $3`,
		dim, day, value).Scan(&views, &visitors)
	if err != nil {
		t.Fatalf("daily: %v", err)
	}
	return views, visitors
}

func mods() []store.Migrations { return []store.Migrations{Migrations()} }
