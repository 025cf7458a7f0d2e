package activity

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// mapSeenSet is the seenSet as it was, one Go map per day: the reference
// the tests compare with and the benchmark's baseline.
type mapSeenSet struct {
	mu    sync.Mutex
	limit int
	days  map[dayID]map[int64]struct{}
	size  int
}

func newMapSeenSet(limit int) *mapSeenSet {
	return &mapSeenSet{limit: limit, days: map[dayID]map[int64]struct{}{}}
}

func (s *mapSeenSet) has(d dayID, k int64) bool {
	s.mu.Lock()
	_, ok := s.days[d][k]
	s.mu.Unlock()
	return ok
}

func (s *mapSeenSet) addAll(keys []dayKeys) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit > 0 && s.size+len(keys) > s.limit {
		s.days = map[dayID]map[int64]struct{}{}
		s.size = 0
	}
	for _, dk := range keys {
		m := s.days[dk.day]
		if m == nil {
			m = map[int64]struct{}{}
			s.days[dk.day] = m
		}
		if _, ok := m[dk.k]; !ok {
			m[dk.k] = struct{}{}
			s.size++
		}
	}
}

func (s *mapSeenSet) keep(live func(dayID) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for d, m := range s.days {
		if !live(d) {
			s.size -= len(m)
			delete(s.days, d)
		}
	}
}

// testKey draws keys the way that finds edge cases: mostly full-range
// (negative half the time), some from a small range around 0 so repeats,
// 0 itself and small negatives are common, and the extremes.
func testKey(r *rand.Rand) int64 {
	switch n := r.IntN(100); {
	case n < 70:
		return int64(r.Uint64())
	case n < 98:
		return int64(r.IntN(64)) - 32
	case n == 98:
		return math.MinInt64
	default:
		return math.MaxInt64
	}
}

func TestKeySet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 100, 10_000, 2 * keySetSplit, 300_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var s keySet
			want := map[int64]struct{}{}
			for range n {
				k := testKey(r)
				_, had := want[k]
				want[k] = struct{}{}
				if got := s.add(k); got == had {
					t.Fatalf("add(%d) = %v, want %v", k, got, !had)
				}
			}
			if s.len() != len(want) {
				t.Errorf("len() = %d, want %d", s.len(), len(want))
			}
			for k := range want {
				if !s.has(k) {
					t.Fatalf("has(%d) = false for a key added", k)
				}
			}
			for range 10_000 {
				k := testKey(r)
				if _, ok := want[k]; s.has(k) != ok {
					t.Fatalf("has(%d) = %v, want %v", k, !ok, ok)
				}
			}
			tables := []keyTable{s.one}
			if s.parts != nil {
				tables = s.parts[:]
			}
			for _, tb := range tables {
				if 4*tb.n > 3*len(tb.slots) {
					t.Errorf("%d keys in %d slots: over 3/4 full", tb.n, len(tb.slots))
				}
			}
			if split := s.n >= keySetSplit; split != (s.parts != nil) {
				t.Errorf("%d keys, split into parts = %v, want %v", s.n, s.parts != nil, split)
			}
		})
	}
	var nilSet *keySet
	if nilSet.has(0) || nilSet.has(1) {
		t.Error("a nil keySet holds a key")
	}
}

func TestSeenSetMatchesMap(t *testing.T) {
	for _, limit := range []int{0, 500, 5_000} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, uint64(limit)))
			days := make([]dayID, 40)
			for i := range days {
				days[i] = dayID{fmt.Sprintf("site%d", i%5), fmt.Sprintf("2026-03-%02d", 1+i/5)}
			}
			got, want := newSeenSet(limit), newMapSeenSet(limit)
			emptied := 0
			for round := range 300 {
				// A batch mostly of a few days, as the writer's are.
				batch := make([]dayKeys, r.IntN(300))
				for i := range batch {
					batch[i] = dayKeys{days[r.IntN(len(days))], testKey(r)}
					if i > 0 && r.IntN(4) > 0 {
						batch[i].day = batch[i-1].day
					}
				}
				before := want.size
				got.addAll(batch)
				want.addAll(batch)
				if want.size < before {
					emptied++
				}
				if got.Len() != want.size {
					t.Fatalf("round %d: Len() = %d, want %d", round, got.Len(), want.size)
				}
				for range 200 {
					d, k := days[r.IntN(len(days))], testKey(r)
					if r.IntN(2) == 0 && len(batch) > 0 {
						dk := batch[r.IntN(len(batch))]
						d, k = dk.day, dk.k
					}
					if g, w := got.has(d, k), want.has(d, k); g != w {
						t.Fatalf("round %d: has(%v, %d) = %v, want %v", round, d, k, g, w)
					}
				}
				if round%50 == 49 {
					// Drop the oldest live day, as prune does at midnight.
					first := days[0].day
					for d := range want.days {
						first = min(first, d.day)
					}
					live := func(d dayID) bool { return d.day > first }
					got.keep(live)
					want.keep(live)
					if got.Len() != want.size || len(got.days) != len(want.days) {
						t.Fatalf("after keep: %d keys in %d days, want %d in %d", got.Len(), len(got.days), want.size, len(want.days))
					}
					for d := range got.days {
						if !live(d) {
							t.Fatalf("after keep: %v still held", d)
						}
					}
				}
			}
			if limit > 0 && emptied == 0 {
				t.Errorf("limit %d never emptied the set", limit)
			}
			if limit > 0 && got.Len() > limit {
				t.Errorf("Len() = %d, over the limit %d", got.Len(), limit)
			}
		})
	}
}

// seenSets are the two implementations BenchmarkSeenSet compares.
type seenSets interface {
	has(dayID, int64) bool
	addAll([]dayKeys)
}

// BenchmarkSeenSet compares the keySet-backed seenSet with the map-backed
// one it replaced: has on a day of 1M keys (half the probes hit), addAll in
// batches of 1,024 (one op is one key; a new set every 1M keys), and the
// heap a day of 1M keys takes.
func BenchmarkSeenSet(b *testing.B) {
	const n, batch = 1_000_000, 1024
	r := rand.New(rand.NewPCG(5, 6))
	day := dayID{"demo", "2026-03-11"}
	keys := make([]dayKeys, 2*n) // the first n are added, the rest are misses
	for i := range keys {
		keys[i] = dayKeys{day, int64(r.Uint64())}
	}
	probes := make([]int64, 1<<20)
	for i := range probes {
		probes[i] = keys[r.IntN(len(keys))].k
	}
	impls := []struct {
		name string
		new  func() seenSets
	}{
		{"keySet", func() seenSets { return newSeenSet(0) }},
		{"map", func() seenSets { return newMapSeenSet(0) }},
	}
	for _, impl := range impls {
		b.Run("has/"+impl.name, func(b *testing.B) {
			s := impl.new()
			s.addAll(keys[:n])
			b.ResetTimer()
			hits := 0
			for i := range b.N {
				if s.has(day, probes[i&(len(probes)-1)]) {
					hits++
				}
			}
			b.ReportMetric(float64(hits)/float64(b.N), "hits/op")
		})
		b.Run("addAll/"+impl.name, func(b *testing.B) {
			perKey := heapPerKey(impl.new, keys[:n])
			b.ResetTimer()
			s := impl.new()
			for done, j := 0, 0; done < b.N; {
				if j == n {
					s, j = impl.new(), 0
				}
				m := min(batch, n-j, b.N-done)
				s.addAll(keys[j : j+m])
				j += m
				done += m
			}
			b.ReportMetric(perKey, "bytes/key") // after ResetTimer, which drops metrics
		})
	}
}

// heapPerKey is the live heap a new set holding keys takes, per key.
func heapPerKey(newSet func() seenSets, keys []dayKeys) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newSet()
	s.addAll(keys)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(len(keys))
}
