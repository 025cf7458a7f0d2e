package analytics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"steward/internal/activity"
	"steward/internal/clock"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

const ua = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

func mods() []store.Migrations { return []store.Migrations{activity.Migrations()} }

type env struct {
	db  *store.DB
	clk *clock.Fake
	c   *activity.Collector
}

func newEnv(t *testing.T, db *store.DB, loc *time.Location, start time.Time) *env {
	t.Helper()
	fields := map[string]bool{}
	for _, f := range activity.AllFields {
		fields[f] = true
	}
	clk := clock.NewFake(start)
	c, err := activity.New(activity.Deps{DB: db, Clock: clk, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: activity.Config{
		Sites:  []activity.Site{{ID: "demo", Origins: []string{"https://example.org"}, Location: loc}},
		Fields: fields, Granularity: policy.GranularityCountry,
	}})
	if err != nil {
		t.Fatal(err)
	}
	c.Start(context.Background())
	t.Cleanup(func() { c.Close(context.Background()) })
	return &env{db: db, clk: clk, c: c}
}

// view records a page view of path by visitor n at instant at.
func (e *env) view(t *testing.T, at time.Time, path string, n int) {
	t.Helper()
	e.clk.Set(at)
	in := activity.Input{Site: "demo", Type: activity.TypePageview, URL: "https://example.org" + path}
	r := activity.Request{IP: netip.AddrFrom4([4]byte{81, 2, byte(n >> 8), byte(n)}), UserAgent: ua}
	if err := e.c.Collect(context.Background(), in, r); err != nil {
		t.Fatalf("Collect: %v", err)
	}
}

func (e *env) service(t *testing.T, trends TrendsConfig) *Service {
	t.Helper()
	if err := e.c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := New(e.db, e.clk, e.c.Sites(), trends)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A site in India (+05:30): its day starts at 18:30 UTC the day before and
// its hours at half past UTC hours. Events a minute either side of local
// midnight land in different local days, and the hourly series of a local
// day has 24 points starting at local midnight.
func TestReportsInHalfHourTimeZone(t *testing.T) {
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		midnight := time.Date(2026, 3, 11, 0, 0, 0, 0, kolkata) // = 2026-03-10 18:30 UTC
		e := newEnv(t, db, kolkata, midnight)
		e.view(t, midnight.Add(-time.Minute), "/late", 1) // 10 March local, 23:59
		e.view(t, midnight.Add(time.Minute), "/early", 1) // 11 March local, 00:01
		e.view(t, midnight.Add(29*time.Minute), "/a", 2)  // 11 March, 00:29 (UTC 18:59)
		e.view(t, midnight.Add(31*time.Minute), "/a", 3)  // 11 March, 00:31 (UTC 19:01)
		e.view(t, midnight.Add(90*time.Minute), "/a", 2)  // 11 March, 01:30
		s := e.service(t, TrendsConfig{})

		r, err := s.Report(context.Background(), "pages", Query{From: "2026-03-11", To: "2026-03-11"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]Row{}
		for _, row := range r.Rows {
			got[row.Value] = row
		}
		if got["/late"].Views != 0 || got["/early"].Views != 1 || got["/a"].Views != 3 || got["/a"].Visitors != 2 {
			t.Errorf("11 March pages = %+v, want /early 1 view, /a 3 views 2 visitors, no /late", r.Rows)
		}
		if r.Totals.Views != 4 || r.Totals.Visitors != 3 {
			t.Errorf("totals = %+v, want 4 views 3 visitors", r.Totals)
		}
		if r.TimeZone != "Asia/Kolkata" {
			t.Errorf("time zone = %q", r.TimeZone)
		}

		ts, err := s.Report(context.Background(), Timeseries, Query{From: "2026-03-11", To: "2026-03-11", Interval: "hour"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ts.Points) != 24 {
			t.Fatalf("hourly points = %d, want 24", len(ts.Points))
		}
		if !ts.Points[0].Start.Equal(midnight) {
			t.Errorf("first hour starts %v, want local midnight %v", ts.Points[0].Start, midnight)
		}
		if _, off := ts.Points[0].Start.Zone(); off != 5*3600+1800 {
			t.Errorf("points are not in the site's zone: offset %d", off)
		}
		// 00:00-01:00 local holds /early, /a (00:29) and /a (00:31): three
		// views by three visitors; 01:00-02:00 holds the repeat view of
		// visitor 2, who was already counted that day.
		if p := ts.Points[0]; p.Views != 3 || p.Visitors != 3 {
			t.Errorf("00:00 local = %d views %d visitors, want 3/3", p.Views, p.Visitors)
		}
		if p := ts.Points[1]; p.Views != 1 || p.Visitors != 0 {
			t.Errorf("01:00 local = %d views %d visitors, want 1/0", p.Views, p.Visitors)
		}

		days, err := s.Report(context.Background(), Timeseries, Query{From: "2026-03-10", To: "2026-03-11"})
		if err != nil {
			t.Fatal(err)
		}
		if len(days.Points) != 2 || days.Points[0].Views != 1 || days.Points[1].Views != 4 {
			t.Errorf("daily series = %+v, want 10 March 1 view, 11 March 4", days.Points)
		}
	})
}

func TestReportValidation(t *testing.T) {
	db := storetest.SQLite(t, mods())
	e := newEnv(t, db, time.UTC, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	s := e.service(t, TrendsConfig{})
	cases := []struct {
		name   string
		report string
		q      Query
		code   fault.Code
	}{
		{"unknown report", "secrets", Query{}, fault.NotFound},
		{"unknown site", "pages", Query{Site: "other"}, fault.NotFound},
		{"bad date", "pages", Query{From: "10/03/2026"}, fault.Invalid},
		{"from after to", "pages", Query{From: "2026-03-10", To: "2026-03-01"}, fault.Invalid},
		{"too long", "pages", Query{From: "2020-01-01", To: "2026-03-01"}, fault.Invalid},
		{"bad limit", "pages", Query{Limit: 100000}, fault.Invalid},
		{"hourly too long", Timeseries, Query{From: "2026-01-01", To: "2026-03-01", Interval: "hour"}, fault.Invalid},
		{"bad interval", Timeseries, Query{Interval: "week"}, fault.Invalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Report(context.Background(), c.report, c.q)
			if got := fault.CodeOf(err); got != c.code {
				t.Errorf("code = %s (%v), want %s", got, err, c.code)
			}
		})
	}
	for _, name := range ReportNames() {
		if _, err := s.Report(context.Background(), name, Query{}); err != nil {
			t.Errorf("report %s on an empty site: %v", name, err)
		}
	}
}

// lockedSource makes a seeded source safe for concurrent report requests.
type lockedSource struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedSource) Uint64() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Uint64()
}

func TestTrendsSuppressSmallGroups(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		start := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
		e := newEnv(t, db, time.UTC, start)
		// /popular: 12 visitors on day 1; /rare: 3 visitors on each of two
		// days (6 visitor-days); /repeat: one visitor viewing 50 times.
		for n := 0; n < 12; n++ {
			e.view(t, start.Add(time.Duration(n)*time.Minute), "/popular", n)
		}
		for d := 0; d < 2; d++ {
			for n := 0; n < 3; n++ {
				e.view(t, start.Add(time.Duration(d)*24*time.Hour+time.Hour), "/rare", 100+n)
			}
		}
		for i := 0; i < 50; i++ {
			e.view(t, start.Add(2*time.Hour), "/repeat", 999)
		}
		q := Query{From: "2026-03-10", To: "2026-03-11"}
		e.clk.Set(time.Date(2026, 3, 12, 9, 0, 0, 0, time.UTC))

		s := e.service(t, TrendsConfig{Enabled: true, K: 10})
		tr, err := s.Trends(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.Pages) != 1 || tr.Pages[0].Value != "/popular" || tr.Pages[0].VisitorDays != 12 {
			t.Errorf("pages = %+v, want only /popular with 12 visitor-days", tr.Pages)
		}
		// Day 1 has 16 visitors, day 2 only 3.
		if len(tr.Days) != 1 || tr.Days[0].Day != "2026-03-10" || tr.Days[0].VisitorDays != 16 {
			t.Errorf("days = %+v, want only 2026-03-10 with 16", tr.Days)
		}
		if tr.Suppressed == 0 || tr.Privacy.K != 10 || tr.Privacy.Epsilon != 0 || tr.Privacy.Unit != "visitor-days" {
			t.Errorf("privacy = %+v suppressed %d", tr.Privacy, tr.Suppressed)
		}

		// With noise: the budget is stated, no published figure is under k,
		// and the noisy figure is near the true one.
		noisy := e.service(t, TrendsConfig{Enabled: true, K: 10, Epsilon: 1, Noise: &lockedSource{r: rand.New(rand.NewPCG(7, 7))}})
		tr, err = noisy.Trends(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Privacy.Epsilon != 1 || !strings.Contains(tr.Privacy.Mechanism, "geometric") || !strings.Contains(tr.Privacy.Statement, "1-differentially private") {
			t.Errorf("privacy = %+v, want ε=1 stated", tr.Privacy)
		}
		for _, p := range tr.Pages {
			if p.Value != "/popular" || p.VisitorDays < 10 || p.VisitorDays > 30 {
				t.Errorf("noisy page %+v: only /popular, ≥ k, near 12", p)
			}
		}

		// Production noise is consistent: asking again gives the same
		// figures, so averaging answers learns nothing.
		keyed := e.service(t, TrendsConfig{Enabled: true, K: 10, Epsilon: 0.5})
		a, err := keyed.Trends(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			b, err := keyed.Trends(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(a.Pages, a.Days) != fmt.Sprint(b.Pages, b.Days) {
				t.Fatalf("noisy answers differ between identical requests: %v vs %v", a.Pages, b.Pages)
			}
		}
		// A day still under way is never published.
		if _, err := s.Trends(context.Background(), Query{From: "2026-03-10", To: "2026-03-12"}); fault.FieldOf(err) != "to" {
			t.Errorf("trends including today: err = %v, want invalid to", err)
		}
		if d, err := s.Trends(context.Background(), Query{}); err != nil || d.To != "2026-03-11" {
			t.Errorf("default trends range ends %v (%v), want yesterday 2026-03-11", d, err)
		}

		off := e.service(t, TrendsConfig{Enabled: false})
		if _, err := off.Trends(context.Background(), q); fault.CodeOf(err) != fault.NotFound {
			t.Errorf("trends off: err = %v, want not_found", err)
		}
	})
}

func TestChartsEscapeLabels(t *testing.T) {
	rows := []Row{{Value: `<script>alert(1)</script>`, Views: 3}, {Value: "/a&b", Views: 1}}
	svg := string(BarChart(`Pages "top"`, rows, 10))
	if strings.Contains(svg, "<script>") || !strings.Contains(svg, "&lt;script&gt;") || !strings.Contains(svg, "/a&amp;b") {
		t.Errorf("labels not escaped: %s", svg)
	}
	pts := []Point{{Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Views: 5, Visitors: 2}, {Start: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Views: 9, Visitors: 4}}
	line := string(LineChart("Views & visitors", pts, false))
	for _, want := range []string{"<svg", "<polyline", `role="img"`, "Views &amp; visitors", "Mar 1", "Mar 2"} {
		if !strings.Contains(line, want) {
			t.Errorf("line chart lacks %q", want)
		}
	}
}

func ExampleBarChart() {
	svg := BarChart("Top pages", []Row{{Value: "/", Views: 10}}, 5)
	fmt.Println(strings.HasPrefix(string(svg), "<svg"))
	// Output: true
}

// Reports read whole blocks of finished days where they can: for any
// range, the answer equals the sum of the daily rows.
func TestBlocksMatchDailyRows(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		start := time.Date(2026, 1, 3, 10, 0, 0, 0, time.UTC)
		e := newEnv(t, db, time.UTC, start)
		for d := 0; d < 70; d++ {
			for n := 0; n < 1+d%4; n++ {
				e.view(t, start.AddDate(0, 0, d).Add(time.Duration(n)*time.Minute), fmt.Sprintf("/p%d", (d+n)%5), n+d%3)
			}
		}
		if err := e.c.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		built, err := e.c.BuildBlocks(context.Background())
		if err != nil || built == 0 {
			t.Fatalf("BuildBlocks = %d, %v", built, err)
		}
		if again, err := e.c.BuildBlocks(context.Background()); err != nil || again != 0 {
			t.Errorf("a second build built %d blocks (%v), want 0", again, err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity_blocks WHERE level = 6`); n == 0 {
			t.Error("no 64-day block was built")
		}
		s := e.service(t, TrendsConfig{})
		for _, r := range [][2]string{
			{"2026-01-03", "2026-03-13"}, {"2026-01-05", "2026-02-20"}, {"2026-02-01", "2026-02-28"},
			{"2026-01-10", "2026-01-10"}, {"2026-03-01", "2026-03-13"}, {"2025-12-01", "2026-01-31"},
		} {
			rep, err := s.Report(context.Background(), "pages", Query{From: r[0], To: r[1]})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][2]int64{}
			rows, err := db.QueryContext(context.Background(), `SELECT value, SUM(views), SUM(visitors) FROM activity_daily
WHERE site = 'demo' AND dim = 'page' AND day >= $1 AND day <= $2 GROUP BY value`, r[0], r[1])
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var v string
				var a, b int64
				rows.Scan(&v, &a, &b)
				want[v] = [2]int64{a, b}
			}
			rows.Close()
			if len(rep.Rows) != len(want) {
				t.Errorf("%v: %d rows, want %d", r, len(rep.Rows), len(want))
			}
			for _, row := range rep.Rows {
				if w := want[row.Value]; w != [2]int64{row.Views, row.Visitors} {
					t.Errorf("%v %s: %d/%d, want %d/%d", r, row.Value, row.Views, row.Visitors, w[0], w[1])
				}
			}
		}
	})
}

func count(t *testing.T, db *store.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
