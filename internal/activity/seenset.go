package activity

import (
	"math/bits"
	"sync"
)

// seenSet holds the seen-keys of the live days, per site-day so a whole day
// is dropped at once. With a limit (the PostgreSQL cache) the whole set is
// emptied when it would grow past it; without one (SQLite, where the set is
// authoritative) it grows with the day's distinct (visitor, value) pairs:
// 11 to 21 bytes each, by load (a map[int64]struct{} took about 38).
type seenSet struct {
	mu    sync.Mutex
	limit int
	days  map[dayID]*keySet
	size  int
}

func newSeenSet(limit int) *seenSet {
	return &seenSet{limit: limit, days: map[dayID]*keySet{}}
}

func (s *seenSet) has(d dayID, k int64) bool {
	s.mu.Lock()
	ok := s.days[d].has(k)
	s.mu.Unlock()
	return ok
}

func (s *seenSet) addAll(keys []dayKeys) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit > 0 && s.size+len(keys) > s.limit {
		s.days = map[dayID]*keySet{}
		s.size = 0
	}
	var last dayID
	var ks *keySet
	for _, dk := range keys {
		// A batch's keys mostly share a day: skip the map lookup (two
		// string hashes) while the day does not change.
		if ks == nil || dk.day != last {
			last = dk.day
			ks = s.days[last]
			if ks == nil {
				ks = &keySet{}
				s.days[last] = ks
			}
		}
		if ks.add(dk.k) {
			s.size++
		}
	}
}

// keep drops every day live does not name.
func (s *seenSet) keep(live func(dayID) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for d, ks := range s.days {
		if !live(d) {
			s.size -= ks.len()
			delete(s.days, d)
		}
	}
}

// Len is the number of keys held.
func (s *seenSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// keySet is a set of int64 keys: open addressing, linear probing,
// power-of-two tables at most 3/4 full, so a key costs 8 bytes over the
// load factor instead of a map's bucket overhead. 0 marks an empty slot;
// the key 0 itself is held in a flag. Past keySetSplit keys the set is
// split into 256 tables by the top bits of the mixed key, each growing on
// its own: doubling a single table of a million keys allocated 16 MB at
// once, with the old 8 MB still live, and peak RSS under load rose instead
// of falling. Keys are only ever added: a day's keys go all at once, with
// the keySet.
type keySet struct {
	one   keyTable       // the keys, until there are keySetSplit
	parts *[256]keyTable // then, by the top 8 bits of the mixed key
	n     int            // non-zero keys held
	zero  bool           // whether the key 0 is held
}

const keySetSplit = 1 << 16 // a 1 MB table

// keyMix is 2^64/φ, odd. The keys are FNV-1a hashes already, but their
// low bits are the weakest; multiplying by it and taking the high bits
// mixes every bit into the index.
const keyMix = 0x9e3779b97f4a7c15

func (s *keySet) table(k int64) *keyTable {
	if s.parts != nil {
		return &s.parts[uint64(k)*keyMix>>56]
	}
	return &s.one
}

// has is nil-safe so a day never added reads as empty.
func (s *keySet) has(k int64) bool {
	if s == nil {
		return false
	}
	if k == 0 {
		return s.zero
	}
	return s.table(k).has(k)
}

// add reports whether k was new.
func (s *keySet) add(k int64) bool {
	if k == 0 {
		if s.zero {
			return false
		}
		s.zero = true
		return true
	}
	if !s.table(k).add(k) {
		return false
	}
	s.n++
	if s.parts == nil && s.n >= keySetSplit {
		s.parts = new([256]keyTable)
		for i := range s.parts {
			s.parts[i].pre = 8
		}
		for _, k := range s.one.slots {
			if k != 0 {
				s.table(k).add(k)
			}
		}
		s.one = keyTable{}
	}
	return true
}

func (s *keySet) len() int {
	if s.zero {
		return s.n + 1
	}
	return s.n
}

// keyTable is one open-addressing table of non-zero keys. Its slot for a
// key is taken from the mixed key's top bits after the pre bits that
// chose the table.
type keyTable struct {
	slots []int64
	n     int
	shift uint8 // 64 - log2(len(slots))
	pre   uint8
}

// keyTableMin is the slot count of a new table; days with a handful of
// keys (a small site's quiet day) are common.
const keyTableMin = 8

func (t *keyTable) slot(k int64) int {
	return int(uint64(k) * keyMix << t.pre >> t.shift)
}

func (t *keyTable) has(k int64) bool {
	if t.n == 0 {
		return false
	}
	mask := len(t.slots) - 1
	for i := t.slot(k); ; i = (i + 1) & mask {
		switch t.slots[i] {
		case k:
			return true
		case 0:
			return false
		}
	}
}

func (t *keyTable) add(k int64) bool {
	if 4*(t.n+1) > 3*len(t.slots) {
		t.grow()
	}
	mask := len(t.slots) - 1
	for i := t.slot(k); ; i = (i + 1) & mask {
		switch t.slots[i] {
		case k:
			return false
		case 0:
			t.slots[i] = k
			t.n++
			return true
		}
	}
}

func (t *keyTable) grow() {
	size := keyTableMin
	if len(t.slots) > 0 {
		size = 2 * len(t.slots)
	}
	old := t.slots
	t.slots = make([]int64, size)
	t.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	mask := size - 1
	for _, k := range old {
		if k == 0 {
			continue
		}
		i := t.slot(k)
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = k
	}
}
