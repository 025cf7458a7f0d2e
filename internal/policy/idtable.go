package policy

// idTable maps the few purpose or category ids of a policy to small
// integers. It replaces a Go map on the guard's hot path: the ids are known
// when the guard is compiled, so a hash of three bytes and the length,
// checked by one string comparison, is enough, and it costs a fraction of
// hashing the whole string.
type idTable struct {
	slots []idSlot
	mask  uint32
}

type idSlot struct {
	key string
	idx int32 // -1: empty
}

func cheapHash(s string) uint32 {
	n := len(s)
	if n == 0 {
		return 0
	}
	h := uint32(n)*0x9e3779b1 ^ uint32(s[0])<<8 ^ uint32(s[n-1])<<16 ^ uint32(s[n/2])<<24 ^ uint32(s[n/3])
	h ^= h >> 15
	h *= 0x85ebca6b
	h ^= h >> 13
	return h
}

// newIDTable indexes ids by their position; a repeated id keeps its first
// position.
func newIDTable(ids []string) idTable {
	size := uint32(8)
	for size < uint32(len(ids))*4 {
		size <<= 1
	}
	t := idTable{slots: make([]idSlot, size), mask: size - 1}
	for i := range t.slots {
		t.slots[i].idx = -1
	}
	for i, id := range ids {
		t.insert(id, int32(i))
	}
	return t
}

func (t *idTable) insert(key string, idx int32) {
	for i := cheapHash(key) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.idx < 0 {
			s.key, s.idx = key, idx
			return
		}
		if s.key == key {
			return
		}
	}
}

// lookup returns the index of key, or -1.
func (t *idTable) lookup(key string) int {
	if len(t.slots) == 0 {
		return -1
	}
	for i := cheapHash(key) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.idx < 0 {
			return -1
		}
		if s.key == key {
			return int(s.idx)
		}
	}
}
