package rights_test

import (
	"fmt"
	"io"
	"testing"

	"steward/internal/rights"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// The benchmark: a member with 100,000 activity rows and 1,000
// other records, in a database holding 100,000 rows of other members, then
// 1,000,000. Export and erasure must stay under 2 s on both engines, and
// the tenfold larger database must cost under 1.5×. Run with
//
//	STEWARD_TEST_DATABASE_URL=postgres://… go test ./internal/rights -run '^$' -bench . -benchtime 3x
//
// Figures are in BENCHMARKS.md (rights section).

const (
	benchActivity = 100_000
	benchRecords  = 1_000
)

// fill inserts n activity rows for subject (or, when spread > 0, for
// spread other subjects in turn) in one statement per engine.
func fill(b testing.TB, db *store.DB, subject string, spread, n int) {
	b.Helper()
	subj := "$2"
	if spread > 0 {
		// $2 stays in the statement so both engines see the same
		// parameters; PostgreSQL must be told its type.
		subj = fmt.Sprintf("COALESCE(NULLIF(CAST($2 AS TEXT), ''), 's_other' || (i %% %d))", spread)
	}
	cols := `subject_id, policy_version, site, at, type, page, referrer, search, country, browser, os, screen`
	sel := `SELECT ` + subj + `, 1, 'demo', $3, 'pageview', '/articles/' || i, 'https://example.org/', 'q' || (i % 100), 'CA', 'Firefox', 'Linux', '1920x1080'`
	var q string
	if db.Engine == store.SQLite {
		q = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) INSERT INTO activity_member_events (` + cols + `) ` + sel + ` FROM n`
	} else {
		q = `INSERT INTO activity_member_events (` + cols + `) ` + sel + ` FROM generate_series(1, $1) AS i`
	}
	if _, err := db.Exec(q, n, subject, t0); err != nil {
		b.Fatalf("fill: %v", err)
	}
	if db.Engine == store.Postgres {
		db.Exec(`ANALYZE activity_member_events`)
	}
}

// benchMember creates a member with every table touched, 100,000 activity
// rows and 1,000 comments.
func benchMember(b testing.TB, e *env, n int) string {
	b.Helper()
	id := e.member(fmt.Sprintf("member%d@example.org", n))
	e.seed(id, fmt.Sprintf("M%d", n))
	fill(b, e.db, id, 0, benchActivity)
	var q string
	if e.db.Engine == store.SQLite {
		q = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
			INSERT INTO test_comments (id, author_id, thread, body, created_at) SELECT $2 || '-c' || i, $2, 't', 'comment ' || i, $3 FROM n`
	} else {
		q = `INSERT INTO test_comments (id, author_id, thread, body, created_at) SELECT $2 || '-c' || i, $2, 't', 'comment ' || i, $3 FROM generate_series(1, $1) AS i`
	}
	if _, err := e.db.Exec(q, benchRecords, id, t0); err != nil {
		b.Fatal(err)
	}
	return id
}

func benchEngines(b *testing.B, fn func(b *testing.B, db func(testing.TB) *store.DB)) {
	b.Run("sqlite", func(b *testing.B) {
		fn(b, func(tb testing.TB) *store.DB { return storetest.SQLite(tb, modules()) })
	})
	b.Run("postgres", func(b *testing.B) {
		fn(b, func(tb testing.TB) *store.DB { return storetest.Postgres(tb, modules()) })
	})
}

// Each engine gets one database: measured with 100,000 rows of other
// members, then grown to 1,000,000 and measured again, so both figures
// come from the same process, cache and machine load.
func BenchmarkExport(b *testing.B) {
	benchEngines(b, func(b *testing.B, open func(testing.TB) *store.DB) {
		e := newEnv(b, open(b), "jmir.yaml", envOpts{})
		id := benchMember(b, e, 0)
		have := 0
		for _, others := range []int{100_000, 1_000_000} {
			fill(b, e.db, "", 1000, others-have)
			have = others
			b.Run(fmt.Sprintf("others=%d/access-report", others), func(b *testing.B) {
				for b.Loop() {
					if err := e.rights.AccessReport(e.ctx, id, io.Discard); err != nil {
						b.Fatal(err)
					}
				}
			})
			for _, typ := range []rights.Type{rights.Access, rights.Portability} {
				b.Run(fmt.Sprintf("others=%d/%s-zip", others, typ), func(b *testing.B) {
					for b.Loop() {
						r := e.file(id, rights.Filing{Type: typ})
						e.run()
						if got := e.request(r.ID); got.Status != rights.StatusCompleted {
							b.Fatalf("export: %s", got.Status)
						}
					}
				})
			}
		}
	})
}

func BenchmarkErase(b *testing.B) {
	benchEngines(b, func(b *testing.B, open func(testing.TB) *store.DB) {
		e := newEnv(b, open(b), "jmir.yaml", envOpts{})
		have, n := 0, 0
		for _, others := range []int{100_000, 1_000_000} {
			fill(b, e.db, "", 1000, others-have)
			have = others
			b.Run(fmt.Sprintf("others=%d", others), func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					n++
					id := benchMember(b, e, n)
					b.StartTimer()
					r := e.file(id, rights.Filing{Type: rights.Erasure})
					e.run()
					if got := e.request(r.ID); got.Status != rights.StatusCompleted {
						b.Fatalf("erasure: %s %s", got.Status, got.Result)
					}
				}
			})
		}
	})
}
