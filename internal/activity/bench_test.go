package activity

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"steward/internal/store"
	"steward/internal/store/storetest"
)

// BenchmarkCollect measures Collect (validation, hashing, location, user
// agent, group commit with rollups) from 64 concurrent goroutines, without
// HTTP.
func BenchmarkCollect(b *testing.B) {
	storetest.EachB(b, mods(), func(b *testing.B, db *store.DB) {
		f := newFixture(b, db, testConfig(allFields(), time.UTC), time.Now().UTC())
		uas := []string{uaChrome, uaFirefox, uaSafari}
		var seq atomic.Int64
		b.SetParallelism(32) // 64 goroutines on 2 CPUs
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := seq.Add(1)
				in := pageview(fmt.Sprintf("https://example.org/articles/%d?utm_campaign=c%d", i%500, i%7))
				in.Referrer = fmt.Sprintf("https://ref%d.example/path", i%40)
				in.Screen = "laptop"
				r := Request{IP: netip.AddrFrom4([4]byte{81, 2, byte(i % 200), byte(i % 97)}), UserAgent: uas[i%3], Origin: "https://example.org"}
				if err := f.c.Collect(context.Background(), in, r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.StopTimer()
		st := f.c.Stats()
		b.ReportMetric(float64(st.Events)/float64(max(st.Batches, 1)), "events/batch")
		b.ReportMetric(float64(st.CommitTime.Microseconds())/float64(max(st.Batches, 1)), "µs/commit")
	})
}

// BenchmarkPrepare measures the per-event work before storage:
// validation, scrubbing, salt, hash, location and user agent.
func BenchmarkPrepare(b *testing.B) {
	db := storetest.SQLite(b, mods())
	f := newFixture(b, db, testConfig(allFields(), time.UTC), time.Now().UTC())
	in := pageview("https://example.org/articles/2026/how-to-count-visitors?utm_campaign=spring&q=privacy+law")
	in.Referrer = "https://news.example.com/some/path/here"
	in.Screen = "laptop"
	r := Request{IP: netip.MustParseAddr("81.2.69.142"), UserAgent: uaChrome, Origin: "https://example.org"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.c.Prepare(context.Background(), in, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScrub measures scrubbing a typical path.
func BenchmarkScrub(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Scrub("/articles/2026/how-to-count-visitors-without-cookies")
	}
}

// BenchmarkScrubFound measures scrubbing a path that holds an e-mail
// address, a token and a phone number: each replacement costs a second,
// checking pass.
func BenchmarkScrubFound(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Scrub("/users/jane.doe@example.com/reset/9f86d081884c7d659a2feaa0c55ad015/call/+49-30-1234567")
	}
}

// BenchmarkWriteBatch measures the writer alone: batches of 16 prepared
// page views written the way the group commit writes them (events, the
// rollups held back and written every second), in one goroutine, so the
// figure is the writer's CPU per event without the scheduling of
// concurrent requests (BATCH=n sets another batch size).
func BenchmarkWriteBatch(b *testing.B) {
	db := storetest.SQLite(b, mods())
	f := newFixture(b, db, testConfig(allFields(), time.UTC), time.Now().UTC())
	uas := []string{uaChrome, uaFirefox, uaSafari}
	size := 16
	if n, err := strconv.Atoi(os.Getenv("BATCH")); err == nil && n > 0 {
		size = n
	}
	evs := make([]Event, 0, 1024)
	for i := range 1024 {
		in := pageview(fmt.Sprintf("https://example.org/articles/%d?utm_campaign=c%d", i%500, i%7))
		in.Referrer = fmt.Sprintf("https://ref%d.example/path", i%40)
		in.Screen = "laptop"
		r := Request{IP: netip.AddrFrom4([4]byte{81, 2, byte(i % 200), byte(i % 97)}), UserAgent: uas[i%3], Origin: "https://example.org"}
		ev, err := f.c.Prepare(context.Background(), in, r)
		if err != nil {
			b.Fatal(err)
		}
		evs = append(evs, ev)
	}
	// The writer goroutine is idle (nothing is submitted); this goroutine
	// writes as it would.
	w := f.c.w
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += size {
		off := (i / size * size) % (len(evs) - size)
		if err := w.write(ctx, evs[off:off+size]); err != nil {
			b.Fatal(err)
		}
	}
}
