package policy

import (
	"strconv"
	"testing"
)

func TestIDTable(t *testing.T) {
	var ids []string
	for i := range 64 {
		ids = append(ids, "cat-"+strconv.Itoa(i))
	}
	ids = append(ids, "a", "b", "ab", "ba", "")
	tab := newIDTable(ids)
	for i, id := range ids {
		if got := tab.lookup(id); got != i {
			t.Errorf("lookup(%q) = %d, want %d", id, got, i)
		}
	}
	for _, absent := range []string{"cat-64", "c", "aa", "cat-", "CAT-1"} {
		if got := tab.lookup(absent); got != -1 {
			t.Errorf("lookup(%q) = %d, want -1", absent, got)
		}
	}
	var empty idTable
	if got := empty.lookup("x"); got != -1 {
		t.Errorf("empty lookup = %d", got)
	}
	dup := newIDTable([]string{"x", "x"})
	if got := dup.lookup("x"); got != 0 {
		t.Errorf("duplicate id lookup = %d, want the first position", got)
	}
}
