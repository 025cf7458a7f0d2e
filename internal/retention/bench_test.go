package retention_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"steward/internal/app/services"
	"steward/internal/app/services/servicestest"
	"steward/internal/retention"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// benchSize reads a size from the environment (for quick runs), or the
// issue's figure.
func benchSize(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchEngines(b *testing.B, fn func(b *testing.B, db *store.DB)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, storetest.SQLite(b, schema.Migrations())) })
	b.Run("postgres", func(b *testing.B) { fn(b, storetest.Postgres(b, schema.Migrations())) })
}

// seedSubjects inserts n subjects of a kind (member, email) known only by
// an id, created at at.
func seedSubjects(b *testing.B, db *store.DB, kind, prefix string, n int, at time.Time) {
	b.Helper()
	ctx := context.Background()
	q := `INSERT INTO subjects (id, kind, source, policy_version, created_at)
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
		SELECT $2 || i, $4, 'bench', 1, $3 FROM n`
	if db.Engine == store.Postgres {
		q = `INSERT INTO subjects (id, kind, source, policy_version, created_at) SELECT $2 || i, $4, 'bench', 1, $3 FROM generate_series(1, $1::int) i`
	}
	if _, err := db.ExecContext(ctx, q, n, prefix, at, kind); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSweepActivity: a sweep of STEWARD_BENCH_ROWS (1,000,000)
// expired member events of 1,000 members, at the production batch size
// and pause. Reports rows per second.
func BenchmarkSweepActivity(b *testing.B) {
	rows := benchSize("STEWARD_BENCH_ROWS", 1_000_000)
	benchEngines(b, func(b *testing.B, db *store.DB) {
		ctx := context.Background()
		svc, clk := servicestest.Build(b, db, servicestest.Example(b, "jmir.yaml"), services.Config{}, nil)
		seedSubjects(b, db, "member", "sub_member_", 1000, clk.Now())
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			q := `INSERT INTO activity_member_events (subject_id, policy_version, site, at, type)
				WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
				SELECT 'sub_member_' || (1 + i % 1000), 1, 'demo', $2, 'pageview' FROM n`
			if db.Engine == store.Postgres {
				q = `INSERT INTO activity_member_events (subject_id, policy_version, site, at, type)
					SELECT 'sub_member_' || (1 + i % 1000), 1, 'demo', $2, 'pageview' FROM generate_series(1, $1::int) i`
			}
			if _, err := db.ExecContext(ctx, q, rows, clk.Now()); err != nil {
				b.Fatal(err)
			}
			clk.Advance(14 * 31 * 24 * time.Hour)
			b.StartTimer()
			start := time.Now()
			rep, err := svc.Retention.Sweep(ctx)
			if err != nil {
				b.Fatal(err)
			}
			took := time.Since(start)
			if rep.Removed() < int64(rows) {
				b.Fatalf("removed %d of %d", rep.Removed(), rows)
			}
			b.ReportMetric(float64(rep.Removed())/took.Seconds(), "rows/s")
			b.ReportMetric(float64(rep.KeysDestroyed), "keys")
		}
	})
}

// BenchmarkSweepExpiredSubjects: a sweep erasing STEWARD_BENCH_SUBJECTS
// (10,000) people with nothing left, each through the rights engine's
// erasure (plan, every registered table, keys, verification, ledger).
// Reports the cost per person.
func BenchmarkSweepExpiredSubjects(b *testing.B) {
	n := benchSize("STEWARD_BENCH_SUBJECTS", 10_000)
	benchEngines(b, func(b *testing.B, db *store.DB) {
		ctx := context.Background()
		svc, clk := servicestest.Build(b, db, servicestest.Example(b, "jmir.yaml"), services.Config{}, nil)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			seedSubjects(b, db, "email", fmt.Sprintf("sub_gone%d_", i), n, clk.Now())
			clk.Advance(40 * 24 * time.Hour)
			b.StartTimer()
			start := time.Now()
			rep, err := svc.Retention.Sweep(ctx)
			if err != nil {
				b.Fatal(err)
			}
			took := time.Since(start)
			if rep.SubjectsErased != int64(n) {
				b.Fatalf("erased %d of %d", rep.SubjectsErased, n)
			}
			b.ReportMetric(float64(took.Milliseconds())/float64(n), "ms/person")
		}
	})
	_ = retention.JobSweep
}
