package analytics

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"steward/internal/activity"
	"steward/internal/clock"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// seedRollups fills the rollup tables with what 10 million events over the
// 30 days before now produce: per day 333,334 events over 2,000 pages, 300
// referrers, 1,000 search terms, 40 campaigns, 120 countries, 15
// browsers, 10 systems, 5 screen classes, 200 exit links, 100 downloads
// and 20 custom events, plus 720 hourly rows. Views sum to 10 million.
func seedRollups(b *testing.B, db *store.DB, now time.Time) {
	b.Helper()
	ctx := context.Background()
	dims := []struct {
		dim    string
		values int
		share  float64 // of the day's events
	}{
		{activity.DimPage, 2000, 0.8}, {activity.DimReferrer, 300, 0.2}, {activity.DimSearch, 1000, 0.1},
		{activity.DimCampaign, 40, 0.05}, {activity.DimCountry, 120, 0.8}, {activity.DimBrowser, 15, 0.8},
		{activity.DimOS, 10, 0.8}, {activity.DimScreen, 5, 0.8}, {activity.DimOutbound, 200, 0.03},
		{activity.DimDownload, 100, 0.02}, {activity.DimEvent, 20, 0.05},
	}
	const perDay = 10_000_000 / 30
	type row struct {
		dim, day, value string
		views, visitors int64
	}
	var rows []row
	for d := 0; d < 30; d++ {
		day := now.AddDate(0, 0, -d).Format(time.DateOnly)
		rows = append(rows, row{activity.DimTotal, day, "", perDay * 8 / 10, perDay / 4})
		for _, dm := range dims {
			total := int64(float64(perDay) * dm.share)
			for v := 0; v < dm.values; v++ {
				// A long tail: value v gets a share proportional to 1/(v+1).
				views := total / int64(dm.values) * 2 / int64(1+v%7)
				rows = append(rows, row{dm.dim, day, fmt.Sprintf("/%s/%d/%s", dm.dim, v, strings.Repeat("x", v%20)), views + 1, views/3 + 1})
			}
		}
	}
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		for i := 0; i < len(rows); i += 200 {
			end := min(i+200, len(rows))
			var q strings.Builder
			q.WriteString(`INSERT INTO activity_daily (site, dim, day, value, views, visitors, duration_ms, durations) VALUES `)
			var args []any
			for j, rw := range rows[i:end] {
				if j > 0 {
					q.WriteString(",")
				}
				n := len(args)
				fmt.Fprintf(&q, "($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8)
				args = append(args, "demo", rw.dim, rw.day, rw.value, rw.views, rw.visitors, rw.views*30000, rw.views)
			}
			q.WriteString(` ON CONFLICT DO NOTHING`)
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		for h := 0; h < 30*24; h++ {
			if _, err := tx.ExecContext(ctx, `INSERT INTO activity_hourly (site, hour, views, visitors) VALUES ($1, $2, $3, $4)`,
				"demo", now.Truncate(time.Hour).Add(-time.Duration(h)*time.Hour), perDay/24, perDay/100); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("seed: %v", err)
	}
}

// BenchmarkReport runs 30-day reports over rollups of 10 million events.
// The goal is under 50 ms per report.
func BenchmarkReport(b *testing.B) {
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	storetest.EachB(b, mods(), func(b *testing.B, db *store.DB) {
		seedRollups(b, db, now)
		sites := []activity.Site{{ID: "demo", Location: time.UTC}}
		if n, err := activity.BuildBlocks(context.Background(), db, sites, now); err != nil || n == 0 {
			b.Fatalf("build blocks: %d, %v", n, err)
		}
		if db.Engine == store.Postgres {
			db.ExecContext(context.Background(), `ANALYZE`)
		}
		s, err := New(db, clock.NewFake(now), sites, TrendsConfig{Enabled: true, K: 10, Epsilon: 1})
		if err != nil {
			b.Fatal(err)
		}
		q := Query{From: "2026-03-02", To: "2026-03-31"}
		for _, name := range []string{"pages", "search-terms", "countries", Timeseries, "timeseries-hourly", "trends"} {
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					var err error
					switch name {
					case "trends":
						_, err = s.Trends(context.Background(), Query{From: "2026-03-01", To: "2026-03-30"})
					case "timeseries-hourly":
						qq := q
						qq.Interval = "hour"
						_, err = s.Report(context.Background(), Timeseries, qq)
					default:
						_, err = s.Report(context.Background(), name, q)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}
