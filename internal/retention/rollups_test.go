package retention_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"steward/internal/activity"
	"steward/internal/analytics"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/retention"
	"steward/internal/schema"
	"steward/internal/store/storetest"
)

// dayRow is one activity_daily row the rollup tests write.
type dayRow struct {
	dim, value                             string
	views, visitors, durationMS, durations int64
}

// rollupDays writes daily rows (and an hourly row per day) for the days
// from..to of the first site: a total, a page k visitors saw, a page,
// search terms, a referrer and a city one visitor had, and a country.
func (e *env) rollupDays(t *testing.T, from, to string) map[string][]dayRow {
	t.Helper()
	site := e.svc.Activity.Sites()[0]
	out := map[string][]dayRow{}
	d0, _ := time.Parse(time.DateOnly, from)
	d1, _ := time.Parse(time.DateOnly, to)
	for d := d0; !d.After(d1); d = d.AddDate(0, 0, 1) {
		day := d.Format(time.DateOnly)
		n := int64(d.Day())
		rows := []dayRow{
			{activity.DimTotal, "", 100 + n, 40 + n, 9000 + n, 30},
			{activity.DimPage, "/popular", 60, 12, 6000, 20},
			{activity.DimPage, "/people/ann-smith-" + day, 1, 1, 500, 1},
			{activity.DimSearch, "ann smith " + day, 1, 1, 0, 0},
			// One person searching their name every day reaches k
			// visitor-days in a month, but never k visitors in a day.
			{activity.DimSearch, "ann smith", 1, 1, 0, 0},
			{activity.DimReferrer, "ann-smith-" + day + ".example", 1, 1, 0, 0},
			{activity.DimCity, "IS/Reykjavik", 1, 1, 0, 0},
			{activity.DimCountry, "IS", 1, 1, 0, 0},
		}
		for _, r := range rows {
			if _, err := e.db.ExecContext(e.ctx, `INSERT INTO activity_daily (site, dim, day, value, views, visitors, duration_ms, durations)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, site.ID, r.dim, day, r.value, r.views, r.visitors, r.durationMS, r.durations); err != nil {
				t.Fatal(err)
			}
		}
		noon, _ := time.ParseInLocation(time.DateOnly, day, site.Location)
		if _, err := e.db.ExecContext(e.ctx, `INSERT INTO activity_hourly (site, hour, views, visitors) VALUES ($1, $2, $3, $4)`,
			site.ID, noon.Add(12*time.Hour).UTC(), 100+n, 40+n); err != nil {
			t.Fatal(err)
		}
		out[day] = rows
	}
	if _, err := activity.BuildBlocks(e.ctx, e.db, e.svc.Activity.Sites(), e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	return out
}

// monthly returns the monthly rows of a month, by dim and value.
func (e *env) monthly(t *testing.T, month string) map[[2]string][3]int64 {
	t.Helper()
	rows, err := e.db.QueryContext(e.ctx, `SELECT dim, value, views, visitors, duration_ms FROM activity_monthly WHERE month = $1`, month)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[[2]string][3]int64{}
	for rows.Next() {
		var k [2]string
		var v [3]int64
		if err := rows.Scan(&k[0], &k[1], &v[0], &v[1], &v[2]); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// cutDay is the site-local day the activity cutoff falls on: days before
// it ended before the cutoff.
func (e *env) cutDay(t *testing.T) string {
	t.Helper()
	rule, _ := retention.Rule(e.pol, "activity")
	c, ok := rule.Cutoff(e.clk.Now())
	if !ok {
		t.Fatalf("activity is kept for %s", rule)
	}
	return c.In(e.svc.Activity.Sites()[0].Location).Format(time.DateOnly)
}

// TestRollupsCoarsenedToMonthsPastTheirTime: under each example policy
// (activity: 13 months, then monthly aggregates) and a fake clock, the
// daily rollups of the day just inside 13 months stay daily; those of
// every day that ended before the cutoff leave activity_daily, the hourly
// table and the blocks, and the month holds their sums exactly — views,
// visitors and duration of every dimension — with free-text values one
// visitor had merged into "(other)". The dry run lists exactly what the
// sweep does, the audit log records the counts, a second sweep does
// nothing, and reports over the coarsened months still answer.
func TestRollupsCoarsenedToMonthsPastTheirTime(t *testing.T) {
	for _, name := range []string{"jmir.yaml", "mixi.yaml"} {
		t.Run(name, func(t *testing.T) {
			each(t, name, func(t *testing.T, e *env) {
				if r, _ := retention.Rule(e.pol, "activity"); r.Then != policy.ThenMonthly {
					t.Fatalf("%s keeps no monthly aggregates of activity: %s", name, r)
				}
				// The cutoff falls on the 15th: a month wholly past, one
				// cut by the cutoff.
				e.clk.Set(time.Date(2027, 5, 15, 17, 0, 0, 0, time.UTC))
				cut := e.cutDay(t)
				cutT, _ := time.Parse(time.DateOnly, cut)
				first := time.Date(cutT.Year(), cutT.Month()-1, 1, 0, 0, 0, 0, time.UTC)
				days := e.rollupDays(t, first.Format(time.DateOnly), cutT.AddDate(0, 0, 2).Format(time.DateOnly))
				before := e.count(t, `SELECT COUNT(*) FROM activity_blocks`)
				if before == 0 {
					t.Fatal("no blocks were built")
				}
				plan, err := e.svc.Retention.Plan(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				rep, err := e.svc.Retention.Sweep(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				// (c) The dry run listed exactly what the sweep did.
				want := map[string][2]int64{}
				var due [2]int64
				for _, l := range plan.Lines {
					if strings.HasPrefix(l.Event, "day ended") {
						want[l.Table] = [2]int64{l.Due, l.Added}
					}
				}
				for _, l := range rep.Lines {
					if strings.HasPrefix(l.Event, "day ended") {
						if got := [2]int64{l.Due, l.Added}; got != want[l.Table] {
							t.Errorf("%s: swept %v (removed, added), the dry run listed %v", l.Table, got, want[l.Table])
						}
						due[0] += l.Due
						due[1] += l.Added
						delete(want, l.Table)
					}
				}
				if len(want) > 0 {
					t.Errorf("the dry run listed %v, the sweep did not", want)
				}
				var pastDays, pastRows int64
				for day, rows := range days {
					if day < cut {
						pastDays++
						pastRows += int64(len(rows))
					}
				}
				for _, l := range rep.Lines {
					switch l.Table {
					case "activity_daily":
						if l.Due != pastRows || l.Oldest == nil || !l.Oldest.Equal(first) {
							t.Errorf("daily line %+v, want %d rows from %s", l, pastRows, first)
						}
					case "activity_hourly":
						if l.Due != pastDays {
							t.Errorf("hourly line %+v, want %d rows", l, pastDays)
						}
					case "activity_blocks":
						if l.Due == 0 {
							t.Errorf("no block removed: %+v", l)
						}
					}
				}
				// Just inside stays daily, just past is gone.
				if n := e.count(t, `SELECT COUNT(*) FROM activity_daily WHERE day = $1`, cut); n != len(days[cut]) {
					t.Errorf("the day just inside 13 months (%s) has %d daily rows, want %d", cut, n, len(days[cut]))
				}
				dayBefore := cutT.AddDate(0, 0, -1).Format(time.DateOnly)
				if n := e.count(t, `SELECT COUNT(*) FROM activity_daily WHERE day < $1`, cut); n != 0 {
					t.Errorf("%d daily rows left before %s (just past: %s)", n, cut, dayBefore)
				}
				if n := e.count(t, `SELECT COUNT(*) FROM activity_hourly`); n != len(days)-int(pastDays) {
					t.Errorf("%d hourly rows left, want %d", n, len(days)-int(pastDays))
				}
				// (a) Each month holds the sums of the days it replaced.
				for _, m := range []string{first.Format("2006-01"), cut[:7]} {
					sum := map[[2]string][3]int64{}
					for day, rows := range days {
						if day >= cut || day[:7] != m {
							continue
						}
						for _, r := range rows {
							v := r.value
							if r.visitors < 10 && r.dim != activity.DimCountry && r.dim != activity.DimTotal {
								v = activity.OtherValue
							}
							s := sum[[2]string{r.dim, v}]
							sum[[2]string{r.dim, v}] = [3]int64{s[0] + r.views, s[1] + r.visitors, s[2] + r.durationMS}
						}
					}
					got := e.monthly(t, m)
					if len(got) != len(sum) {
						t.Errorf("%s: %d monthly rows, want %d: %v", m, len(got), len(sum), got)
					}
					for k, v := range sum {
						if got[k] != v {
							t.Errorf("%s %s %q: (views, visitors, duration) %v, the days it replaced sum to %v", m, k[0], k[1], got[k], v)
						}
					}
				}
				// (b) Nothing one visitor had is left of a coarsened day.
				if n := e.count(t, `SELECT COUNT(*) FROM activity_monthly WHERE value LIKE '%ann%' OR value = 'IS/Reykjavik'`); n != 0 {
					t.Errorf("%d monthly rows hold a value one visitor had", n)
				}
				// (d) The audit log records the counts, never a value.
				var detail string
				if err := e.db.QueryRowContext(e.ctx, `SELECT detail FROM audit_log WHERE action = 'retention.swept' ORDER BY seq DESC LIMIT 1`).Scan(&detail); err != nil {
					t.Fatal(err)
				}
				for _, w := range []string{fmt.Sprintf(`"rollups_removed":"%d"`, due[0]), fmt.Sprintf(`"rollups_added":"%d"`, due[1])} {
					if !strings.Contains(detail, w) {
						t.Errorf("audit detail %s lacks %s", detail, w)
					}
				}
				if strings.Contains(detail, "ann") || strings.Contains(detail, "popular") {
					t.Errorf("audit detail holds data: %s", detail)
				}
				// /metrics counts them.
				if got := e.removedMetric(t, "activity_daily"); got != float64(pastRows) {
					t.Errorf("steward_retention_rows_removed_total{table=activity_daily} = %v, want %d", got, pastRows)
				}
				// Idempotent: the next sweep finds nothing of it.
				again, err := e.svc.Retention.Sweep(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range again.Lines {
					if strings.HasPrefix(l.Event, "day ended") && (l.Due != 0 || l.Added != 0) {
						t.Errorf("a second sweep changed %+v", l)
					}
				}
				// Reports over the coarsened months answer from the monthly
				// rows, and the days still daily from theirs.
				endOfCutMonth := time.Date(cutT.Year(), cutT.Month()+1, 0, 0, 0, 0, 0, time.UTC)
				q := analytics.Query{From: first.Format(time.DateOnly), To: endOfCutMonth.Format(time.DateOnly)}
				r, err := e.svc.Analytics.Report(e.ctx, "pages", q)
				if err != nil {
					t.Fatal(err)
				}
				var views, cutViews int64
				for day, rows := range days {
					views += rows[0].views
					if day >= cut || day[:7] != cut[:7] {
						cutViews += rows[0].views
					}
				}
				if r.Totals.Views != views || r.DailyFrom != cut {
					t.Errorf("report totals %+v from %s, want %d views from %s", r.Totals, r.DailyFrom, views, cut)
				}
				values := map[string]int64{}
				for _, row := range r.Rows {
					values[row.Value] = row.Views
				}
				if values["/popular"] != 60*int64(len(days)) || values[activity.OtherValue] == 0 {
					t.Errorf("pages report %v", values)
				}
				ts, err := e.svc.Analytics.Report(e.ctx, analytics.Timeseries, q)
				if want := endOfCutMonth.Day() - cutT.Day() + 1; err != nil || len(ts.Points) != want {
					t.Errorf("time series of %d points, %v; want the %d days from the horizon", len(ts.Points), err, want)
				}
				// A range ending inside the month the cutoff cut counts its
				// coarsened days nothing there (a month row cannot be split).
				q.To = cutT.AddDate(0, 0, 2).Format(time.DateOnly)
				if r, err := e.svc.Analytics.Report(e.ctx, "pages", q); err != nil || r.Totals.Views != cutViews {
					t.Errorf("report to %s: %+v, %v; want %d views", q.To, r, err, cutViews)
				}
				// A range that cuts a coarsened month answers too.
				if _, err := e.svc.Analytics.Report(e.ctx, "search-terms", analytics.Query{From: first.AddDate(0, 0, 10).Format(time.DateOnly), To: cut}); err != nil {
					t.Error(err)
				}
			})
		})
	}
}

// TestRollupsLeaveNothingThatLinksBack: a search term, a page and a
// referrer one visitor had in a month now past 13 months leave no row in
// any activity table after the sweep, while the month's totals remain.
func TestRollupsLeaveNothingThatLinksBack(t *testing.T) {
	for _, name := range []string{"jmir.yaml", "mixi.yaml"} {
		t.Run(name, func(t *testing.T) {
			each(t, name, func(t *testing.T, e *env) {
				site := e.svc.Activity.Sites()[0]
				send := func(ip, url, ref string) {
					t.Helper()
					err := e.svc.Activity.Collect(e.ctx, activity.Input{Site: site.ID, Type: "pageview", URL: site.Origins[0] + url, Referrer: ref},
						activity.Request{IP: netip.MustParseAddr(ip), UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
							Origin: site.Origins[0]})
					if err != nil {
						t.Fatalf("collect: %v", err)
					}
				}
				t0 := time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)
				e.clk.Set(t0)
				send("81.2.69.142", "/people/zyx-quorlen?q=zyx+quorlen", "https://quorlen-family.example/photos")
				for i := range 12 {
					send(fmt.Sprintf("81.2.69.%d", 10+i), "/popular", "")
				}
				if err := e.svc.Activity.Flush(e.ctx); err != nil {
					t.Fatal(err)
				}
				if e.count(t, `SELECT COUNT(*) FROM activity_daily WHERE value LIKE '%quorlen%'`) == 0 {
					t.Fatal("the unique values were not rolled up")
				}
				if _, err := activity.BuildBlocks(e.ctx, e.db, e.svc.Activity.Sites(), t0.AddDate(0, 1, 0)); err != nil {
					t.Fatal(err)
				}
				e.clk.Set(t0.AddDate(0, 14, 0))
				if _, err := e.svc.Retention.Sweep(e.ctx); err != nil {
					t.Fatal(err)
				}
				tables := []string{"activity_events", "activity_member_events", "activity_daily", "activity_hourly", "activity_blocks",
					"activity_monthly", "activity_seen", "activity_salts", "activity_rollup_state", "activity_pending"}
				for _, tb := range tables {
					if bytes.Contains(bytes.ToLower(storetest.RowBytes(t, e.db, `SELECT * FROM `+tb)), []byte("quorlen")) {
						t.Errorf("%s still holds what one visitor had", tb)
					}
				}
				var views, visitors int64
				if err := e.db.QueryRowContext(e.ctx, `SELECT views, visitors FROM activity_monthly WHERE dim = 'total' AND month = '2026-03'`).Scan(&views, &visitors); err != nil {
					t.Fatal(err)
				}
				if views != 13 || visitors != 13 {
					t.Errorf("the month's totals: %d views, %d visitors; want 13, 13", views, visitors)
				}
				if n := e.count(t, `SELECT COUNT(*) FROM activity_monthly WHERE dim = 'page' AND value = '/popular' AND visitors = 12`); n != 1 {
					t.Error("the page twelve visitors saw is not kept by name")
				}
			})
		})
	}
}

// stopAfterFirst ages out through the app's rollups, cancelling the
// sweep's context at the first pause between two transactions.
type stopAfterFirst struct {
	retention.Rollup
	cancel context.CancelFunc
}

func (s stopAfterFirst) AgeOut(ctx context.Context, a retention.AgeOut) ([]retention.Aged, error) {
	pause := a.Pause
	a.Pause = func(ctx context.Context) error {
		s.cancel()
		return pause(ctx)
	}
	return s.Rollup.AgeOut(ctx, a)
}

// TestRollupsSweepStoppedHalfWay: a sweep cancelled between two months
// leaves the first coarsened and the rest daily; the next sweep finishes,
// and every month holds its days' sums exactly once.
func TestRollupsSweepStoppedHalfWay(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		e.clk.Set(time.Date(2027, 5, 15, 17, 0, 0, 0, time.UTC))
		cut := e.cutDay(t)
		cutT, _ := time.Parse(time.DateOnly, cut)
		first := time.Date(cutT.Year(), cutT.Month()-3, 1, 0, 0, 0, 0, time.UTC)
		days := e.rollupDays(t, first.Format(time.DateOnly), cut)
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		reg := e.registry(t)
		s, err := retention.New(retention.Deps{DB: e.db, Clock: e.clk, Policy: e.pol, Registry: reg, Subjects: e.svc.Subjects,
			Door: e.svc.Door, Audit: e.svc.Audit, Rights: e.svc.Rights, Pause: -1,
			Rollups: []retention.Rollup{stopAfterFirst{e.svc.Rollups[0], cancel}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Sweep(ctx); err == nil {
			t.Fatal("the cancelled sweep reported no error")
		}
		done := e.count(t, `SELECT COUNT(DISTINCT month) FROM activity_monthly`)
		if done != 1 {
			t.Fatalf("the stopped sweep coarsened %d months, want 1", done)
		}
		var stopped string
		if err := e.db.QueryRowContext(e.ctx, `SELECT detail FROM audit_log WHERE action = 'retention.swept' ORDER BY seq DESC LIMIT 1`).Scan(&stopped); err != nil || !strings.Contains(stopped, `"stopped":"true"`) {
			t.Errorf("the stopped sweep's audit record: %s, %v", stopped, err)
		}
		if _, err := e.svc.Retention.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
		for m := first; m.Format(time.DateOnly) < cut; m = m.AddDate(0, 1, 0) {
			var want [3]int64
			for day, rows := range days {
				if day < cut && day[:7] == m.Format("2006-01") {
					want[0] += rows[0].views
					want[1] += rows[0].visitors
					want[2] += rows[0].durationMS
				}
			}
			if got := e.monthly(t, m.Format("2006-01"))[[2]string{activity.DimTotal, ""}]; got != want {
				t.Errorf("%s: totals %v, the days sum to %v", m.Format("2006-01"), got, want)
			}
		}
	})
}

// TestRollupsDeletedWithoutMonthlyAggregates: where the rule keeps no
// aggregates, the rollups of days past the period are deleted with the
// events, and monthly rows an earlier rule kept go once their month is
// past.
func TestRollupsDeletedWithoutMonthlyAggregates(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		e.clk.Set(time.Date(2027, 5, 15, 17, 0, 0, 0, time.UTC))
		cut := e.cutDay(t)
		cutT, _ := time.Parse(time.DateOnly, cut)
		first := time.Date(cutT.Year(), cutT.Month()-1, 1, 0, 0, 0, 0, time.UTC)
		days := e.rollupDays(t, first.Format(time.DateOnly), cutT.AddDate(0, 0, 40).Format(time.DateOnly))
		// The example's sweep coarsens what is past today.
		if _, err := e.svc.Retention.Sweep(e.ctx); err != nil {
			t.Fatal(err)
		}
		if e.count(t, `SELECT COUNT(*) FROM activity_monthly`) == 0 {
			t.Fatal("nothing was coarsened")
		}
		// The policy stops keeping aggregates; a month later the sweep
		// deletes the days then past and the months wholly past.
		p := e.withActivity(t, "13 months")
		e.clk.Set(e.clk.Now().AddDate(0, 1, 0))
		if _, _, err := policy.Publish(e.ctx, e.db, p, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		s := e.serviceFor(t, p)
		plan, err := s.Plan(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := s.Sweep(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		newCut := cutT.AddDate(0, 1, 0).Format(time.DateOnly)
		var pastRows int64
		for day, rows := range days {
			if day >= cut && day < newCut {
				pastRows += int64(len(rows))
			}
		}
		for i, l := range rep.Lines {
			if l.Table == "activity_daily" && (l.Due != pastRows || l.Added != 0 || plan.Lines[i].Due != l.Due) {
				t.Errorf("daily line %+v (dry run %+v), want %d rows deleted, none added", l, plan.Lines[i], pastRows)
			}
		}
		if n := e.count(t, `SELECT COUNT(*) FROM activity_daily WHERE day < $1`, newCut); n != 0 {
			t.Errorf("%d daily rows past their time", n)
		}
		if n := e.count(t, `SELECT COUNT(*) FROM activity_daily WHERE day >= $1`, newCut); n == 0 {
			t.Error("the days still in their time went too")
		}
		if n := e.count(t, `SELECT COUNT(*) FROM activity_monthly WHERE month < $1`, newCut[:7]); n != 0 {
			t.Errorf("%d monthly rows of months wholly past are kept", n)
		}
	})
}

func (e *env) registry(t *testing.T) *registry.Registry {
	t.Helper()
	reg, err := schema.Registry()
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// removedMetric reads the sweep's rows-removed counter of a table.
func (e *env) removedMetric(t *testing.T, table string) float64 {
	t.Helper()
	mfs, err := e.svc.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "steward_retention_rows_removed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" && l.GetValue() == table {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// TestRollupsFollowThePolicyTheyWereCollectedUnder: days collected while
// the policy kept no aggregates are deleted when their time comes, even
// after a later version keeps monthly aggregates; days collected under
// that later version are coarsened.
func TestRollupsFollowThePolicyTheyWereCollectedUnder(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		publish := func(p *policy.Policy, at time.Time) *retention.Service {
			t.Helper()
			e.clk.Set(at)
			if _, _, err := policy.Publish(e.ctx, e.db, p, at); err != nil {
				t.Fatal(err)
			}
			return e.serviceFor(t, p)
		}
		// January and February under "13 months" (then deleted), from
		// March under "13 months, then monthly aggregates".
		publish(e.withActivity(t, "13 months"), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
		monthly := e.withActivity(t, "13 months, then monthly aggregates")
		s := publish(monthly, time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC))
		// The change is significant: it is in force from its effective
		// date, which the days are counted from.
		e.rollupDays(t, "2027-01-01", "2027-04-30")
		e.clk.Set(time.Date(2028, 5, 20, 12, 0, 0, 0, time.UTC))
		plan, err := s.Plan(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := s.Sweep(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Removed() != rep.Removed() {
			t.Errorf("the dry run listed %d, the sweep removed %d", plan.Removed(), rep.Removed())
		}
		if n := e.count(t, `SELECT COUNT(*) FROM activity_daily WHERE day < '2027-04-01'`); n != 0 {
			t.Errorf("%d daily rows of January to March past their time", n)
		}
		for _, m := range []string{"2027-01", "2027-02"} {
			if n := e.count(t, `SELECT COUNT(*) FROM activity_monthly WHERE month = $1`, m); n != 0 {
				t.Errorf("%s, collected while no aggregates were kept, has %d monthly rows", m, n)
			}
		}
		if n := e.count(t, `SELECT COUNT(*) FROM activity_monthly WHERE month = '2027-03'`); n == 0 {
			t.Error("March, collected under monthly aggregates, was not coarsened")
		}
	})
}
