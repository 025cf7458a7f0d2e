package activity

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"steward/internal/store"
)

// Ageing out the rollups. The retention sweep deletes raw events past the
// activity retention; the rollups counted from them follow, a site-local
// day once every event it could hold is past its time (the day ended
// before the cutoff). Where the policy keeps monthly aggregates
// ("13 months, then monthly aggregates") the day's rows are first added
// to activity_monthly; otherwise they are only deleted. Either way the
// day's daily rows, its hourly rows and every block covering it go.
//
// What is kept relates to no one. A monthly row holds one dimension and
// value, never a combination, and in the free-text dimensions (pages,
// referrers, search terms, campaigns, events, outbound links, downloads,
// regions, cities) a value is kept only if on some day of its month at
// least k different visitors had it — daily visitors are exact unique
// counts, so that proves k people; summed over days they are
// visitor-days, which one person returning k times would also reach.
// Every other value of the month is merged into OtherValue, so the
// dimension's totals stay whole. Total, country, browser, system and
// screen class keep their values: each is a closed list of broad classes
// every visitor falls in, and no value can spell a name or a path.
//
// A month is coarsened in pieces as its days pass the cutoff (an hourly
// sweep takes about one day at a time). Whether a value is kept is
// decided on the whole month — the days already coarsened (their peak)
// and the days still held daily — so every piece decides the same way,
// and the month ends as if it had been coarsened at once. Each piece (a
// site's days of one month, at most a week of them) is one transaction
// that adds to the month and deletes the days it added: a sweep stopped
// half-way never counts a day twice.
//
// The horizon (HorizonMarker) is the first day still held daily; reports
// read blocks only from there on, and months before it from the monthly
// table.

// OtherValue is the value rare values of a month are merged into.
const OtherValue = "(other)"

// closedDims keep every value in monthly rows.
var closedDims = map[string]bool{DimTotal: true, DimCountry: true, DimBrowser: true, DimOS: true, DimScreen: true}

// allDims are the dimensions of the daily rollup. Every query of ageing
// names them: the keys of the rollup tables begin (site, dim, …), so a
// range of days is an index range only within a dimension.
var allDims = []string{DimTotal, DimPage, DimReferrer, DimSearch, DimCampaign, DimCountry, DimRegion, DimCity,
	DimBrowser, DimOS, DimScreen, DimOutbound, DimDownload, DimEvent}

// inDims is the condition on dim that lets the index serve a day range.
var inDims = "dim IN ('" + strings.Join(allDims, "', '") + "')"

// pieceDays bounds the days one transaction ages out: a week of 2,000
// values a day held SQLite's writer 90-160 ms, a whole month 420 ms
// (BENCHMARKS.md).
const pieceDays = 7

// minMonthlyK floors the k of monthly rows: below two visitors a value
// would always be kept.
const minMonthlyK = 2

// Tables the ageing reports on.
const (
	TableDaily   = "activity_daily"
	TableHourly  = "activity_hourly"
	TableBlocks  = "activity_blocks"
	TableMonthly = "activity_monthly"
)

// HorizonMarker names the row of activity_rollup_state holding a site's
// first day number still held daily: days before it were aged out.
func HorizonMarker(site string) string { return "horizon:" + site }

// Rollups ages out the rollups of the configured sites.
type Rollups struct {
	db    *store.DB
	sites []Site
	k     int64
}

// NewRollups returns the ageing of sites' rollups; k is the policy's
// analytics k-anonymity (floored at 2).
func NewRollups(db *store.DB, sites []Site, k int) *Rollups {
	return &Rollups{db: db, sites: sites, k: int64(max(k, minMonthlyK))}
}

// AgeOut is what the retention sweep asks.
type AgeOut struct {
	// Before is the retention cutoff: days that ended by it are aged out.
	Before time.Time
	// Monthly keeps monthly aggregates; otherwise the days are deleted,
	// and monthly rows of months wholly before the cutoff too.
	Monthly bool
	// MonthlyFrom, with Monthly, is when the versions keeping monthly
	// aggregates began (zero: always): a day begun before it was collected,
	// at least in part, under a version that kept none, and is deleted.
	MonthlyFrom time.Time
	// DryRun counts what would change and changes nothing.
	DryRun bool
	// Pause rests between two transactions; an error stops the work.
	Pause func(context.Context) error
}

// Aged is what ageing did, or would do, to one table: rows removed,
// monthly rows added to (a row may be added to twice when its month is
// coarsened in two pieces), and the oldest day removed (YYYY-MM-DD).
type Aged struct {
	Table   string
	Removed int64
	Added   int64
	Oldest  string
}

// AgeOut coarsens or deletes the rollups of every day that ended by
// a.Before, one transaction per site and week of a month, and returns the counts
// per table (daily, hourly, blocks, monthly, in that order). What
// finished before an error stays done and counted.
func (r *Rollups) AgeOut(ctx context.Context, a AgeOut) ([]Aged, error) {
	out := []Aged{{Table: TableDaily}, {Table: TableHourly}, {Table: TableBlocks}, {Table: TableMonthly}}
	rest := func() error {
		if a.Pause == nil {
			return ctx.Err()
		}
		return a.Pause(ctx)
	}
	started := false
	sites, err := r.allSites(ctx)
	if err != nil {
		return out, err
	}
	for _, s := range sites {
		loc := s.Location
		if loc == nil {
			loc = time.UTC
		}
		cutDay := localDay(a.Before, loc)
		months, err := r.monthsBefore(ctx, s.ID, cutDay)
		if err != nil {
			return out, err
		}
		p := piece{site: s.ID, loc: loc, cutDay: cutDay, prevLast: -1}
		if a.Monthly && !a.MonthlyFrom.IsZero() {
			p.monthlyDay = firstDayFrom(a.MonthlyFrom, loc)
		}
		for _, mf := range months {
			m := mf[0]
			p.month, p.from = m, mf[1]
			for p.from < p.cutDay && p.from[:7] == m {
				if started {
					if err := rest(); err != nil {
						return out, err
					}
				}
				started = true
				if err := r.agePiece(ctx, &p, a, out); err != nil {
					return out, err
				}
			}
		}
		if before := monthlyRowsGoBefore(a.Monthly, cutDay, p.monthlyDay); before != "" {
			// Aggregates kept under an earlier rule go when a later one
			// keeps none of those months.
			q := `FROM activity_monthly WHERE site = $1 AND ` + inDims + ` AND month < $2`
			var n int64
			if a.DryRun {
				err = r.db.QueryRowContext(ctx, `SELECT COUNT(*) `+q, s.ID, before[:7]).Scan(&n)
			} else {
				var res sql.Result
				if res, err = r.db.ExecContext(ctx, `DELETE `+q, s.ID, before[:7]); err == nil {
					n, _ = res.RowsAffected()
				}
			}
			if err != nil {
				return out, fmt.Errorf("activity: age out monthly rows: %w", err)
			}
			out[3].Removed += n
		}
	}
	return out, nil
}

// allSites are the configured sites and, counted in UTC days, any site
// whose rollups remain after it left the configuration: its aggregates
// are aged by the same rule, not kept for ever.
func (r *Rollups) allSites(ctx context.Context) ([]Site, error) {
	sites := slices.Clone(r.sites)
	// One index seek per site (the key begins with site), not a scan of
	// every daily row.
	var after string
	for {
		var id sql.NullString
		if err := r.db.QueryRowContext(ctx, `SELECT MIN(site) FROM activity_daily WHERE site > $1`, after).Scan(&id); err != nil {
			return nil, fmt.Errorf("activity: age out: %w", err)
		}
		if !id.Valid {
			return sites, nil
		}
		after = id.String
		if !slices.ContainsFunc(sites, func(s Site) bool { return s.ID == after }) {
			sites = append(sites, Site{ID: after, Location: time.UTC})
		}
	}
}

// firstDayFrom is the first site-local day that begins at or after t.
func firstDayFrom(t time.Time, loc *time.Location) string {
	lt := t.In(loc)
	day := lt.Format(time.DateOnly)
	if lt.Hour() != 0 || lt.Minute() != 0 || lt.Second() != 0 || lt.Nanosecond() != 0 {
		day = lt.AddDate(0, 0, 1).Format(time.DateOnly)
	}
	return day
}

// monthlyRowsGoBefore is the day whose month and later months keep their
// monthly rows ("" for all): without monthly aggregates the months wholly
// past; with them since monthlyDay, the months wholly before it.
func monthlyRowsGoBefore(monthly bool, cutDay, monthlyDay string) string {
	switch {
	case !monthly:
		return cutDay
	case monthlyDay != "":
		return min(cutDay, monthlyDay)
	}
	return ""
}

// monthsBefore lists the months ("2006-01") of a site's daily rows before
// cutDay, oldest first, each with its first day still held daily: pieces
// start there, not at days an earlier sweep already took.
func (r *Rollups) monthsBefore(ctx context.Context, site, cutDay string) ([][2]string, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT SUBSTR(day, 1, 7), MIN(day) FROM activity_daily WHERE site = $1 AND `+inDims+` AND day < $2 GROUP BY SUBSTR(day, 1, 7)`, site, cutDay)
	if err != nil {
		return nil, fmt.Errorf("activity: age out: %w", err)
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var m [2]string
		if err := rows.Scan(&m[0], &m[1]); err != nil {
			return nil, fmt.Errorf("activity: age out: %w", err)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, rows.Err()
}

// piece is one site's month being aged out; prevLast is the day number
// of the last day the previous piece of this run took (-1: none), so a
// dry run counts each block and hour once, as the sweep removes them.
type piece struct {
	site   string
	loc    *time.Location
	cutDay string
	// monthlyDay is the first day whose aggregates may be kept ("": all,
	// when the rule keeps them); days before it are deleted.
	monthlyDay string
	month      string
	from       string // the first day of the piece
	prevLast   int64
	prevEnd    time.Time
}

type monthKey struct{ dim, value string }

type monthRow struct {
	views, visitors, durationMS, durations, peak int64
}

func (m *monthRow) add(o monthRow) {
	m.views += o.views
	m.visitors += o.visitors
	m.durationMS += o.durationMS
	m.durations += o.durations
	m.peak = max(m.peak, o.peak)
}

// agePiece ages out, in one transaction, the days of p.month from
// p.from: at most pieceDays of them, all before the cutoff (a dry run
// only reads), and moves p.from past them.
func (r *Rollups) agePiece(ctx context.Context, p *piece, a AgeOut, out []Aged) error {
	first, err := time.Parse(time.DateOnly, p.month+"-01")
	if err != nil {
		return fmt.Errorf("activity: age out: bad month %q", p.month)
	}
	from, err := time.Parse(time.DateOnly, p.from)
	if err != nil {
		return fmt.Errorf("activity: age out: bad day %q: %w", p.from, err)
	}
	next := first.AddDate(0, 1, 0).Format(time.DateOnly)
	upto := min(next, p.cutDay, from.AddDate(0, 0, pieceDays).Format(time.DateOnly)) // exclusive
	if p.from < p.monthlyDay {
		upto = min(upto, p.monthlyDay) // a piece is all deleted or all coarsened
	}
	monthly := a.Monthly && p.from >= p.monthlyDay
	uptoN, err := DayNumber(upto)
	if err != nil {
		return fmt.Errorf("activity: age out: %w", err)
	}
	last := uptoN - 1
	end, err := time.ParseInLocation(time.DateOnly, upto, p.loc)
	if err != nil {
		return fmt.Errorf("activity: age out: bad day %q: %w", upto, err)
	}
	end = end.UTC()
	var n [4]int64
	var oldest string
	work := func(q store.Q) error {
		n = [4]int64{}
		if !a.DryRun {
			// Writing the site's horizon first takes its row lock (the
			// write lock on SQLite): a second sweep at the same moment
			// waits here, then finds these days gone.
			if _, err := q.ExecContext(ctx, `INSERT INTO activity_rollup_state (name, last_id) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET last_id = CASE WHEN excluded.last_id > activity_rollup_state.last_id
THEN excluded.last_id ELSE activity_rollup_state.last_id END`, HorizonMarker(p.site), uptoN); err != nil {
				return err
			}
		}
		rows, err := q.QueryContext(ctx, `SELECT dim, value, day, views, visitors, duration_ms, durations FROM activity_daily
WHERE site = $1 AND `+inDims+` AND day >= $2 AND day < $3`, p.site, p.from, upto)
		if err != nil {
			return err
		}
		piece := map[monthKey]*monthRow{}
		for rows.Next() {
			var k monthKey
			var day string
			var v monthRow
			if err := rows.Scan(&k.dim, &k.value, &day, &v.views, &v.visitors, &v.durationMS, &v.durations); err != nil {
				rows.Close()
				return err
			}
			v.peak = v.visitors
			if piece[k] == nil {
				piece[k] = &monthRow{}
			}
			piece[k].add(v)
			if oldest == "" || day < oldest {
				oldest = day
			}
			n[0]++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if monthly && len(piece) > 0 {
			merged, err := r.fold(ctx, q, p, next, piece)
			if err != nil {
				return err
			}
			n[3] = int64(len(merged))
			if !a.DryRun {
				if err := r.addMonthly(ctx, q, p, merged); err != nil {
					return err
				}
			}
		}
		// Hours, blocks and days: counted in a dry run, deleted otherwise.
		hourQ, hourArgs := `FROM activity_hourly WHERE site = $1 AND hour < $2`, []any{p.site, end}
		if p.prevLast >= 0 {
			hourQ += ` AND hour >= $3`
			hourArgs = append(hourArgs, p.prevEnd)
		}
		stmts := []struct {
			into  int
			from  string
			args  []any
			label string
		}{{1, hourQ, hourArgs, "hourly"}}
		for level := 1; level <= MaxBlockLevel; level++ {
			bq, bargs := `FROM activity_blocks WHERE site = $1 AND `+inDims+` AND level = $2 AND block <= $3`, []any{p.site, level, last >> level}
			if p.prevLast >= 0 {
				bq += ` AND block > $4`
				bargs = append(bargs, p.prevLast>>level)
			}
			stmts = append(stmts, struct {
				into  int
				from  string
				args  []any
				label string
			}{2, bq, bargs, "blocks"})
		}
		for _, st := range stmts {
			var c int64
			if a.DryRun {
				if err := q.QueryRowContext(ctx, `SELECT COUNT(*) `+st.from, st.args...).Scan(&c); err != nil {
					return fmt.Errorf("%s: %w", st.label, err)
				}
			} else {
				res, err := q.ExecContext(ctx, `DELETE `+st.from, st.args...)
				if err != nil {
					return fmt.Errorf("%s: %w", st.label, err)
				}
				c, _ = res.RowsAffected()
			}
			n[st.into] += c
		}
		if a.DryRun {
			return nil
		}
		res, err := q.ExecContext(ctx, `DELETE FROM activity_daily WHERE site = $1 AND `+inDims+` AND day >= $2 AND day < $3`, p.site, p.from, upto)
		if err != nil {
			return err
		}
		if got, _ := res.RowsAffected(); got != n[0] {
			return fmt.Errorf("read %d daily rows but deleted %d", n[0], got)
		}
		return nil
	}
	if a.DryRun {
		err = work(r.db)
	} else {
		err = r.db.InTx(ctx, func(tx *sql.Tx) error { return work(tx) })
	}
	if err != nil {
		return fmt.Errorf("activity: age out %s %s: %w", p.site, p.month, err)
	}
	for i := range n {
		if i == 3 {
			out[i].Added += n[i]
		} else {
			out[i].Removed += n[i]
		}
	}
	if oldest != "" {
		for _, i := range []int{0, 1} {
			if out[i].Oldest == "" || oldest < out[i].Oldest {
				out[i].Oldest = oldest
			}
		}
	}
	p.prevLast, p.prevEnd, p.from = last, end, upto
	return nil
}

// fold merges the piece's free-text values that no day of the whole month
// (the days coarsened before included) gave k visitors into OtherValue.
func (r *Rollups) fold(ctx context.Context, q store.Q, p *piece, next string, piece map[monthKey]*monthRow) (map[monthKey]*monthRow, error) {
	peak := map[monthKey]int64{}
	scan := func(query string, args ...any) error {
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k monthKey
			var v int64
			if err := rows.Scan(&k.dim, &k.value, &v); err != nil {
				return err
			}
			peak[k] = max(peak[k], v)
		}
		return rows.Err()
	}
	if err := scan(`SELECT dim, value, MAX(visitors) FROM activity_daily WHERE site = $1 AND `+inDims+` AND day >= $2 AND day < $3 GROUP BY dim, value`,
		p.site, p.month+"-01", next); err != nil {
		return nil, err
	}
	if err := scan(`SELECT dim, value, peak FROM activity_monthly WHERE site = $1 AND `+inDims+` AND month = $2`, p.site, p.month); err != nil {
		return nil, err
	}
	out := map[monthKey]*monthRow{}
	for k, v := range piece {
		to := k
		if !closedDims[k.dim] && peak[k] < r.k {
			to.value = OtherValue
		}
		if out[to] == nil {
			out[to] = &monthRow{}
		}
		out[to].add(*v)
	}
	return out, nil
}

// addMonthly adds rows to the month, a hundred per statement.
func (r *Rollups) addMonthly(ctx context.Context, q store.Q, p *piece, rows map[monthKey]*monthRow) error {
	keys := make([]monthKey, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	// One order for every process, so concurrent sweeps lock alike.
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].dim != keys[j].dim {
			return keys[i].dim < keys[j].dim
		}
		return keys[i].value < keys[j].value
	})
	const chunk = 100
	for len(keys) > 0 {
		part := keys[:min(chunk, len(keys))]
		keys = keys[len(part):]
		var vals []string
		args := []any{p.site, p.month}
		for _, k := range part {
			v := rows[k]
			i := len(args)
			vals = append(vals, fmt.Sprintf("($1, $%d, $2, $%d, $%d, $%d, $%d, $%d, $%d)", i+1, i+2, i+3, i+4, i+5, i+6, i+7))
			args = append(args, k.dim, k.value, v.views, v.visitors, v.durationMS, v.durations, v.peak)
		}
		_, err := q.ExecContext(ctx, `INSERT INTO activity_monthly (site, dim, month, value, views, visitors, duration_ms, durations, peak)
VALUES `+strings.Join(vals, ", ")+`
ON CONFLICT (site, dim, month, value) DO UPDATE SET views = activity_monthly.views + excluded.views,
visitors = activity_monthly.visitors + excluded.visitors, duration_ms = activity_monthly.duration_ms + excluded.duration_ms,
durations = activity_monthly.durations + excluded.durations,
peak = CASE WHEN excluded.peak > activity_monthly.peak THEN excluded.peak ELSE activity_monthly.peak END`, args...)
		if err != nil {
			return fmt.Errorf("monthly rows: %w", err)
		}
	}
	return nil
}
