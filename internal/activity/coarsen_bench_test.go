package activity

import (
	"context"
	"fmt"
	"testing"
	"time"

	"steward/internal/store"
	"steward/internal/store/storetest"
)

// BenchmarkAgeOut measures coarsening daily rollups to months: a backlog
// of 13 months of 2,000 values a day (about 790,000 daily rows: pages,
// search terms, referrers, cities and countries, half of them below k), and
// the steady state of an hourly sweep, one day into its month. max-tx-ms
// is the longest transaction (one site and month), the time collection
// may wait for the writer.
func BenchmarkAgeOut(b *testing.B) {
	storetest.EachB(b, mods(), func(b *testing.B, db *store.DB) {
		sites := []Site{{ID: "demo", Location: time.UTC}}
		r := NewRollups(db, sites, 10)
		for _, c := range []struct {
			name   string
			before time.Time
		}{
			{"13-months", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
			{"one-day", time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)},
		} {
			b.Run(c.name, func(b *testing.B) {
				var maxTx time.Duration
				var daily int64
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					seedDaily(b, db)
					b.StartTimer()
					last := time.Now()
					aged, err := r.AgeOut(context.Background(), AgeOut{Before: c.before, Monthly: true, Pause: func(ctx context.Context) error {
						maxTx = max(maxTx, time.Since(last))
						last = time.Now()
						return nil
					}})
					maxTx = max(maxTx, time.Since(last))
					if err != nil {
						b.Fatal(err)
					}
					daily = aged[0].Removed
				}
				b.ReportMetric(float64(daily), "daily-rows")
				b.ReportMetric(float64(maxTx.Microseconds())/1000, "max-tx-ms")
			})
		}
	})
}

// seedDaily replaces the rollups with 2,000 values a day from 2025-01-01
// to 2026-01-31 and a total per day.
func seedDaily(b *testing.B, db *store.DB) {
	b.Helper()
	ctx := context.Background()
	for _, t := range []string{"activity_daily", "activity_monthly", "activity_hourly", "activity_blocks", "activity_rollup_state"} {
		if _, err := db.ExecContext(ctx, `DELETE FROM `+t); err != nil {
			b.Fatal(err)
		}
	}
	day := `date('2025-01-01', '+' || d.n || ' days')`
	if db.Engine == store.Postgres {
		day = `to_char(DATE '2025-01-01' + d.n, 'YYYY-MM-DD')`
	}
	// Values 0-999 pages, 1000-1399 search terms, 1400-1699 referrers,
	// 1700-1899 cities, 1900-1999 countries; visitors 1-20.
	q := fmt.Sprintf(`WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 395),
v(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM v WHERE i < 1999)
INSERT INTO activity_daily (site, dim, day, value, views, visitors, duration_ms, durations)
SELECT 'demo', CASE WHEN v.i < 1000 THEN 'page' WHEN v.i < 1400 THEN 'search' WHEN v.i < 1700 THEN 'referrer'
WHEN v.i < 1900 THEN 'city' ELSE 'country' END, %s, 'value-' || v.i, 3 + v.i %% 20, 1 + v.i %% 20, 1000, 2
FROM d CROSS JOIN v`, day)
	if _, err := db.ExecContext(ctx, q); err != nil {
		b.Fatal(err)
	}
	q = fmt.Sprintf(`WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 395)
INSERT INTO activity_daily (site, dim, day, value, views, visitors, duration_ms, durations)
SELECT 'demo', 'total', %s, '', 30000, 12000, 900000, 900 FROM d`, day)
	if _, err := db.ExecContext(ctx, q); err != nil {
		b.Fatal(err)
	}
	if _, err := BuildBlocks(ctx, db, []Site{{ID: "demo", Location: time.UTC}}, time.Date(2026, 2, 5, 0, 0, 0, 0, time.UTC)); err != nil {
		b.Fatal(err)
	}
}
