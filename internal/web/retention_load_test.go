package web_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"steward/internal/app"
	"steward/internal/retention"
	"steward/internal/store"
)

// TestLoadCollectBesideSweep measures collection (TestLoadCollect's
// generator: wrk when installed, the Go client otherwise) against a
// Steward child process, first alone and then while `steward retention run` — a second
// process on the same database — sweeps expired events. The sweep paces
// itself (bounded batches, a pause between them), so collection should
// keep most of its throughput and a low p99. STEWARD_LOADTEST=full sweeps
// 1,000,000 events over 20-second runs; the default is a quick check.
func TestLoadCollectBesideSweep(t *testing.T) {
	rows, d := 20000, 2*time.Second
	if os.Getenv("STEWARD_LOADTEST") == "full" {
		rows, d = 1_000_000, 20*time.Second
	}
	gen := newLoadDriver(t)
	t.Logf("generator: %s", gen.name)
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			env, open := engineEnv(t, engine)
			c := startChild(t, "steward", env...)
			drive(c.url, 64, time.Second, nil) // warm up; the child's own first sweep has run
			db := open()
			q := `INSERT INTO activity_events (site, at, visitor, type, page)
				WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
				SELECT 'load', $2, i, 'pageview', '/old/' || (i % 400) FROM n`
			if db.Engine == store.Postgres {
				q = `INSERT INTO activity_events (site, at, visitor, type, page)
					SELECT 'load', $2, i, 'pageview', '/old/' || (i % 400) FROM generate_series(1, $1::int) i`
			}
			if _, err := db.ExecContext(context.Background(), q, rows, time.Now().AddDate(-2, 0, 0)); err != nil {
				t.Fatal(err)
			}
			alone := gen.run(c.url, d)
			// The second process: the sweep as the CLI runs it.
			cfg := app.Config{Addr: "127.0.0.1:0", Dev: true, DataDir: envValue(env, "CHILD_DATA_DIR"), DatabaseURL: envValue(env, "CHILD_DATABASE_URL"),
				PolicyPath: envValue(env, "CHILD_POLICY")}
			a, err := app.Open(context.Background(), cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler), app.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			done := make(chan retention.Report, 1)
			go func() {
				rep, err := a.Retention.Sweep(context.Background())
				if err != nil {
					t.Error(err)
				}
				done <- rep
			}()
			beside := gen.run(c.url, d)
			rep := <-done
			var removed int64
			for _, l := range rep.Lines {
				if l.Table == "activity_events" {
					removed += l.Due
				}
			}
			if removed < int64(rows) {
				t.Errorf("the sweep removed %d of %d expired events", removed, rows)
			}
			if alone.other+beside.other > 0 {
				t.Errorf("%d collect requests failed", alone.other+beside.other)
			}
			t.Logf("%s: collect alone %.0f req/s (p50 %v, p99 %v); beside the sweep %.0f req/s (p50 %v, p99 %v); ratio %.2f; the sweep removed %d events in %v (%.0f rows/s)",
				engine, alone.rate(), alone.percentile(0.5).Round(10*time.Microsecond), alone.percentile(0.99).Round(10*time.Microsecond),
				beside.rate(), beside.percentile(0.5).Round(10*time.Microsecond), beside.percentile(0.99).Round(10*time.Microsecond),
				beside.rate()/alone.rate(), removed, rep.Took.Round(time.Millisecond), float64(removed)/rep.Took.Seconds())
		})
	}
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}
