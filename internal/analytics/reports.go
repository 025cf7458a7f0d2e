// Package analytics owns the reports read from the activity rollups: the
// staff reports (pages, referrers, search terms, countries, browsers,
// systems, screens, campaigns, events, time series), the anonymised trends
// shared with partners and the public (k-suppression on visitor-days and
// optional differential-privacy noise), and their server-side SVG charts.
//
// Reports never read raw events: they sum rollup rows, so a 30-day report
// costs the same at ten thousand or ten million events. Days are the
// site's local days and the time series' hours its local hours (see
// package activity for how +05:30 and other offsets are bucketed).
package analytics

import (
	"context"
	cryptorand "crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"steward/internal/activity"
	"steward/internal/clock"
	"steward/internal/fault"
	"steward/internal/store"
)

// Report names and the rollup dimension each reads.
var reportDims = map[string]string{
	"pages":        activity.DimPage,
	"referrers":    activity.DimReferrer,
	"search-terms": activity.DimSearch,
	"countries":    activity.DimCountry,
	"regions":      activity.DimRegion,
	"cities":       activity.DimCity,
	"browsers":     activity.DimBrowser,
	"systems":      activity.DimOS,
	"screens":      activity.DimScreen,
	"campaigns":    activity.DimCampaign,
	"events":       activity.DimEvent,
	"outbound":     activity.DimOutbound,
	"downloads":    activity.DimDownload,
}

// Timeseries is the report of views and visitors over time.
const Timeseries = "timeseries"

// ReportNames lists every report, for the API and the console.
func ReportNames() []string {
	return []string{"pages", "referrers", "search-terms", "countries", "regions", "cities", "browsers", "systems", "screens",
		"campaigns", "events", "outbound", "downloads", Timeseries}
}

// Limits of a query.
const (
	defaultDays  = 30
	maxDays      = 400
	defaultLimit = 100
	maxLimit     = 1000
	maxHourDays  = 31
)

// Service answers report and trend queries.
type Service struct {
	db     *store.DB
	clock  clock.Clock
	sites  []activity.Site
	trends TrendsConfig
	secret [32]byte // keys the consistent trends noise
}

// New returns the report service for the configured sites.
func New(db *store.DB, c clock.Clock, sites []activity.Site, t TrendsConfig) (*Service, error) {
	t, err := t.validate()
	if err != nil {
		return nil, err
	}
	s := &Service{db: db, clock: c, sites: sites, trends: t}
	if _, err := cryptorand.Read(s.secret[:]); err != nil {
		return nil, fmt.Errorf("analytics: noise secret: %w", err)
	}
	return s, nil
}

// Query selects a site and a range of its local days.
type Query struct {
	Site     string // "" means the only site, when there is one
	From, To string // YYYY-MM-DD, inclusive; default the last 30 days
	Limit    int    // rows of a dimension report; default 100
	Interval string // time series: "day" (default) or "hour"
}

// span is a resolved query.
type span struct {
	site     activity.Site
	from, to time.Time // local midnights of the first and last day
	limit    int
	interval string
}

func (s span) fromDay() string { return s.from.Format(time.DateOnly) }
func (s span) toDay() string   { return s.to.Format(time.DateOnly) }

// start and end are the instants the range begins and ends.
func (s span) start() time.Time { return s.from.UTC() }
func (s span) end() time.Time {
	return time.Date(s.to.Year(), s.to.Month(), s.to.Day()+1, 0, 0, 0, 0, s.to.Location()).UTC()
}

func (s *Service) resolve(q Query) (span, error) {
	var sp span
	switch {
	case q.Site == "" && len(s.sites) == 1:
		sp.site = s.sites[0]
	case q.Site == "":
		return sp, fault.FieldError("site", "site is required when more than one site is configured")
	default:
		found := false
		for _, site := range s.sites {
			if site.ID == q.Site {
				sp.site, found = site, true
			}
		}
		if !found {
			return sp, &fault.Error{Code: fault.NotFound, Field: "site", Message: "no such site"}
		}
	}
	loc := sp.site.Location
	if loc == nil {
		loc = time.UTC
		sp.site.Location = loc
	}
	today := s.clock.Now().In(loc)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, loc)
	parse := func(field, v string, def time.Time) (time.Time, error) {
		if v == "" {
			return def, nil
		}
		d, err := time.ParseInLocation(time.DateOnly, v, loc)
		if err != nil {
			return d, fault.FieldError(field, "%s must be a date written YYYY-MM-DD", field)
		}
		return d, nil
	}
	var err error
	if sp.to, err = parse("to", q.To, today); err != nil {
		return sp, err
	}
	if sp.from, err = parse("from", q.From, sp.to.AddDate(0, 0, -(defaultDays-1))); err != nil {
		return sp, err
	}
	if sp.from.After(sp.to) {
		return sp, fault.FieldError("from", "from must not be after to")
	}
	days := int(sp.to.Sub(sp.from).Hours()/24) + 1
	if days > maxDays {
		return sp, fault.FieldError("from", "a report covers at most %d days", maxDays)
	}
	switch {
	case q.Limit == 0:
		sp.limit = defaultLimit
	case q.Limit < 0 || q.Limit > maxLimit:
		return sp, fault.FieldError("limit", "limit must be between 1 and %d", maxLimit)
	default:
		sp.limit = q.Limit
	}
	switch q.Interval {
	case "", "day":
		sp.interval = "day"
	case "hour":
		if days > maxHourDays {
			return sp, fault.FieldError("interval", "hourly series cover at most %d days", maxHourDays)
		}
		sp.interval = "hour"
	default:
		return sp, fault.FieldError("interval", "interval must be day or hour")
	}
	return sp, nil
}

// Row is one value of a dimension report.
type Row struct {
	Value    string `json:"value"`
	Views    int64  `json:"views"`
	Visitors int64  `json:"visitors"`
	// AvgDurationMS is the time spent per view (pages only).
	AvgDurationMS int64 `json:"avg_duration_ms,omitempty"`
}

// Point is one bucket of a time series; Start is local to the site.
type Point struct {
	Start    time.Time `json:"start"`
	Views    int64     `json:"views"`
	Visitors int64     `json:"visitors"`
}

// Totals are the site's totals over the range. Visitors are
// visitor-days: a visitor is counted once per day, and days cannot be
// linked.
type Totals struct {
	Views         int64 `json:"views"`
	Visitors      int64 `json:"visitors"`
	AvgDurationMS int64 `json:"avg_duration_ms"`
}

// Report is the answer to a staff report query.
type Report struct {
	Site     string  `json:"site"`
	Report   string  `json:"report"`
	From     string  `json:"from"`
	To       string  `json:"to"`
	TimeZone string  `json:"time_zone"`
	Totals   Totals  `json:"totals"`
	Rows     []Row   `json:"rows,omitempty"`
	Interval string  `json:"interval,omitempty"`
	Points   []Point `json:"points,omitempty"`
	// DailyFrom is set when the range reaches before the first day still
	// held daily: earlier days were aged out by the retention sweep and
	// are counted only through whole months of the range (see pieces);
	// the series starts there.
	DailyFrom string `json:"daily_from,omitempty"`
}

// Report runs the named report (see ReportNames).
func (s *Service) Report(ctx context.Context, name string, q Query) (*Report, error) {
	dim, ok := reportDims[name]
	if !ok && name != Timeseries {
		return nil, fault.New(fault.NotFound, "no report named %q; reports are %s", name, strings.Join(ReportNames(), ", "))
	}
	sp, err := s.resolve(q)
	if err != nil {
		return nil, err
	}
	r := &Report{Site: sp.site.ID, Report: name, From: sp.fromDay(), To: sp.toDay(), TimeZone: sp.site.Location.String()}
	if r.Totals, err = s.totals(ctx, sp); err != nil {
		return nil, err
	}
	// Days before the horizon have no daily or hourly rows left: the
	// series starts at it rather than show them as empty.
	series := sp
	if h, err := s.horizon(ctx, sp.site.ID); err != nil {
		return nil, err
	} else if first, _ := activity.DayNumber(sp.fromDay()); h > first {
		r.DailyFrom = activity.DayOfNumber(h)
		if d, err := time.ParseInLocation(time.DateOnly, r.DailyFrom, sp.site.Location); err == nil {
			series.from = d
		}
	}
	if name == Timeseries {
		r.Interval = sp.interval
		switch {
		case series.from.After(series.to):
		case sp.interval == "hour":
			r.Points, err = s.hourly(ctx, series)
		default:
			r.Points, err = s.daily(ctx, series)
		}
		return r, err
	}
	r.Rows, err = s.dimension(ctx, sp, dim)
	return r, err
}

func (s *Service) totals(ctx context.Context, sp span) (Totals, error) {
	var t Totals
	var dur int64
	from, args, err := s.pieces(ctx, sp, activity.DimTotal)
	if err != nil {
		return t, err
	}
	err = s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(v),0), COALESCE(SUM(u),0), COALESCE(SUM(d),0) FROM `+from+` WHERE value = ''`,
		args...).Scan(&t.Views, &t.Visitors, &dur)
	if err != nil {
		return t, fmt.Errorf("analytics: totals: %w", err)
	}
	if t.Views > 0 {
		t.AvgDurationMS = dur / t.Views
	}
	return t, nil
}

func (s *Service) dimension(ctx context.Context, sp span, dim string) ([]Row, error) {
	from, args, err := s.pieces(ctx, sp, dim)
	if err != nil {
		return nil, err
	}
	args = append(args, sp.limit)
	rows, err := s.db.QueryContext(ctx, `SELECT value, SUM(v) AS views, SUM(u), SUM(d) FROM `+from+`
GROUP BY value HAVING SUM(v) > 0 ORDER BY views DESC, value LIMIT $`+fmt.Sprint(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("analytics: %s report: %w", dim, err)
	}
	defer rows.Close()
	out := []Row{}
	for rows.Next() {
		var r Row
		var dur int64
		if err := rows.Scan(&r.Value, &r.Views, &r.Visitors, &dur); err != nil {
			return nil, fmt.Errorf("analytics: %s report: %w", dim, err)
		}
		if dim == activity.DimPage && r.Views > 0 {
			r.AvgDurationMS = dur / r.Views
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// horizon is the first day number of a site still held daily (0 when
// none was aged out).
func (s *Service) horizon(ctx context.Context, site string) (int64, error) {
	var h int64
	err := s.db.QueryRowContext(ctx, `SELECT last_id FROM activity_rollup_state WHERE name = $1`, activity.HorizonMarker(site)).Scan(&h)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("analytics: horizon: %w", err)
	}
	return h, nil
}

// pieces returns a FROM clause (a subquery with columns value, v, u, d)
// covering the span's days of one dimension with the fewest rows: whole
// built blocks (2 to 256 days, see activity/blocks.go) where the span
// holds them, daily rows elsewhere; and its arguments.
//
// Days the retention sweep aged out (before the horizon) have no daily
// rows and no blocks; where the policy keeps monthly aggregates they are
// read from activity_monthly for each calendar month wholly inside the
// span. A month the span cuts counts only its days still held daily: a
// monthly row cannot be split, so its aged-out days count nothing there.
// A month's aged-out days and its days still daily are disjoint (ageing
// moves rows from one table to the other in one transaction), so a month
// partly aged out is counted whole. In free-text dimensions a month's
// rare values appear merged as activity.OtherValue.
func (s *Service) pieces(ctx context.Context, sp span, dim string) (string, []any, error) {
	first, err := activity.DayNumber(sp.fromDay())
	if err != nil {
		return "", nil, err
	}
	last, err := activity.DayNumber(sp.toDay())
	if err != nil {
		return "", nil, err
	}
	// next[level] is the first block of that level not built yet.
	next := make([]int64, activity.MaxBlockLevel+1)
	rows, err := s.db.QueryContext(ctx, `SELECT name, last_id FROM activity_rollup_state WHERE name LIKE $1 OR name = $2`,
		"blocks:"+sp.site.ID+":%", activity.HorizonMarker(sp.site.ID))
	if err != nil {
		return "", nil, fmt.Errorf("analytics: block markers: %w", err)
	}
	var horizon int64
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			rows.Close()
			return "", nil, err
		}
		for l := 1; l <= activity.MaxBlockLevel; l++ {
			if name == activity.BlockMarker(sp.site.ID, l) {
				next[l] = n
			}
		}
		if name == activity.HorizonMarker(sp.site.ID) {
			horizon = n
		}
	}
	rows.Close()
	type block struct {
		level int
		n     int64
	}
	var blocks []block
	var ranges [][2]int64
	for d := first; d <= last; {
		level := 0
		for l := activity.MaxBlockLevel; l >= 1; l-- {
			size := int64(1) << l
			if d%size == 0 && d+size-1 <= last && d>>l < next[l] && d >= horizon {
				level = l
				break
			}
		}
		if level > 0 {
			blocks = append(blocks, block{level, d >> level})
			d += int64(1) << level
			continue
		}
		if n := len(ranges); n > 0 && ranges[n-1][1] == d-1 {
			ranges[n-1][1] = d
		} else {
			ranges = append(ranges, [2]int64{d, d})
		}
		d++
	}
	args := []any{sp.site.ID, dim}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + fmt.Sprint(len(args))
	}
	var parts []string
	if len(ranges) > 0 {
		var conds []string
		for _, r := range ranges {
			conds = append(conds, "(day >= "+arg(activity.DayOfNumber(r[0]))+" AND day <= "+arg(activity.DayOfNumber(r[1]))+")")
		}
		parts = append(parts, `SELECT value, views AS v, visitors AS u, duration_ms AS d FROM activity_daily
WHERE site = $1 AND dim = $2 AND (`+strings.Join(conds, " OR ")+`)`)
	}
	if len(blocks) > 0 {
		var conds []string
		for _, b := range blocks {
			conds = append(conds, "(level = "+arg(b.level)+" AND block = "+arg(b.n)+")")
		}
		parts = append(parts, `SELECT value, views AS v, visitors AS u, duration_ms AS d FROM activity_blocks
WHERE site = $1 AND dim = $2 AND (`+strings.Join(conds, " OR ")+`)`)
	}
	if first < horizon {
		var months []string
		for m := time.Date(sp.from.Year(), sp.from.Month(), 1, 0, 0, 0, 0, time.UTC); ; m = m.AddDate(0, 1, 0) {
			mFirst, _ := activity.DayNumber(m.Format(time.DateOnly))
			mLast, _ := activity.DayNumber(m.AddDate(0, 1, -1).Format(time.DateOnly))
			if mFirst >= horizon || mLast > last {
				break
			}
			if mFirst >= first {
				months = append(months, arg(m.Format("2006-01")))
			}
		}
		if len(months) > 0 {
			parts = append(parts, `SELECT value, views AS v, visitors AS u, duration_ms AS d FROM activity_monthly
WHERE site = $1 AND dim = $2 AND month IN (`+strings.Join(months, ", ")+`)`)
		}
	}
	return "(" + strings.Join(parts, " UNION ALL ") + ") pieces", args, nil
}

func (s *Service) daily(ctx context.Context, sp span) ([]Point, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT day, views, visitors FROM activity_daily
WHERE site = $1 AND dim = $2 AND day >= $3 AND day <= $4 AND value = '' ORDER BY day`,
		sp.site.ID, activity.DimTotal, sp.fromDay(), sp.toDay())
	if err != nil {
		return nil, fmt.Errorf("analytics: daily series: %w", err)
	}
	defer rows.Close()
	got := map[string][2]int64{}
	for rows.Next() {
		var day string
		var v, u int64
		if err := rows.Scan(&day, &v, &u); err != nil {
			return nil, fmt.Errorf("analytics: daily series: %w", err)
		}
		got[day] = [2]int64{v, u}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []Point
	for d := sp.from; !d.After(sp.to); d = time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, d.Location()) {
		c := got[d.Format(time.DateOnly)]
		out = append(out, Point{Start: d, Views: c[0], Visitors: c[1]})
	}
	return out, nil
}

func (s *Service) hourly(ctx context.Context, sp span) ([]Point, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT hour, views, visitors FROM activity_hourly
WHERE site = $1 AND hour >= $2 AND hour < $3 ORDER BY hour`, sp.site.ID, sp.start(), sp.end())
	if err != nil {
		return nil, fmt.Errorf("analytics: hourly series: %w", err)
	}
	defer rows.Close()
	got := map[int64][2]int64{}
	for rows.Next() {
		var h time.Time
		var v, u int64
		if err := rows.Scan(&h, &v, &u); err != nil {
			return nil, fmt.Errorf("analytics: hourly series: %w", err)
		}
		got[h.Unix()] = [2]int64{v, u}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Local hours are an hour apart in absolute time, also across a DST
	// change (that day simply has 23 or 25 of them).
	var out []Point
	for h := sp.start(); h.Before(sp.end()); h = h.Add(time.Hour) {
		c := got[h.Unix()]
		out = append(out, Point{Start: h.In(sp.site.Location), Views: c[0], Visitors: c[1]})
	}
	return out, nil
}
