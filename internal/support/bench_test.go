package support_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/support"
)

// benchEngines runs a benchmark on SQLite and, when configured, PostgreSQL.
func benchEngines(b *testing.B, fn func(b *testing.B, db *store.DB)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, storetest.SQLite(b, schema.Migrations())) })
	if storetest.PostgresURL(b) != "" {
		b.Run("postgres", func(b *testing.B) { fn(b, storetest.Postgres(b, schema.Migrations())) })
	}
}

// BenchmarkQueue100k: the first page of the staff queue (50 requests, their
// titles opened) with 100,000 requests waiting. 200 real requests are the
// oldest; the other 99,800 are copies of their rows under new ids, newer.
func BenchmarkQueue100k(b *testing.B) {
	benchEngines(b, func(b *testing.B, db *store.DB) {
		e := newEnv(b, db, "jmir.yaml")
		var members []string
		for i := range 20 {
			members = append(members, e.member(fmt.Sprintf("m%d@example.org", i), "Member"))
		}
		for i := range 200 {
			e.clk.Advance(time.Second)
			if _, err := e.s.Open(e.ctx, members[i%len(members)], fmt.Sprintf("Question %d", i), "text", nil); err != nil {
				b.Fatal(err)
			}
		}
		start := e.clk.Now()
		for batch := range 500 {
			q := `INSERT INTO support_requests (id, subject_id, title_sealed, channel, status, assignee, policy_version, created_at, updated_at)
SELECT id || '` + fmt.Sprintf("-%d", batch) + `' || $1, subject_id, title_sealed, channel, status, assignee, policy_version, created_at, $2
FROM support_requests WHERE id NOT LIKE '%-%' ORDER BY id`
			if _, err := db.ExecContext(e.ctx, q, "", start.Add(time.Duration(batch+1)*time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
		var n int
		db.QueryRowContext(e.ctx, `SELECT COUNT(*) FROM support_requests`).Scan(&n)
		if n < 99000 {
			b.Fatalf("%d requests", n)
		}
		b.ResetTimer()
		for b.Loop() {
			page, next, err := e.s.Queue(e.ctx, supportStaff, support.QueueFilter{})
			if err != nil || len(page) != 50 || next == "" || page[0].Title == "" {
				b.Fatalf("queue: %d rows, next %q, %v", len(page), next, err)
			}
		}
	})
}

// BenchmarkDeliverReply: one reply by mail (a 2 KB text and a 20 KB
// attachment) parsed, checked against its request and threaded.
func BenchmarkDeliverReply(b *testing.B) {
	benchEngines(b, func(b *testing.B, db *store.DB) {
		e := newEnv(b, db, "jmir.yaml")
		ann := e.member("ann@example.org", "Ann")
		th, err := e.s.Open(e.ctx, ann, "Question", "text", nil)
		if err != nil {
			b.Fatal(err)
		}
		reply := e.s.ReplyAddress(th.ID)
		raw := message("ann@example.org", reply, "Re: Question", string(bytes.Repeat([]byte("words "), 340)), bytes.Repeat([]byte("log line\n"), 2200))
		lim := e.s.MailLimits("")
		b.SetBytes(int64(len(raw)))
		b.ResetTimer()
		for b.Loop() {
			if err := e.s.Deliver(e.ctx, []string{reply}, bytes.NewReader(raw), lim); err != nil {
				b.Fatal(err)
			}
		}
	})
}
