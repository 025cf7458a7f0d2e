package clock

import (
	"testing"
	"time"
)

func TestAddMonths(t *testing.T) {
	tests := []struct {
		from string
		n    int
		want string
	}{
		{"2026-01-31", 1, "2026-02-28"},
		{"2028-01-31", 1, "2028-02-29"},
		{"2026-01-15", 1, "2026-02-15"},
		{"2026-03-31", 1, "2026-04-30"},
		{"2026-12-31", 2, "2027-02-28"},
		{"2026-11-30", 3, "2027-02-28"},
		{"2026-05-31", 12, "2027-05-31"},
	}
	for _, tt := range tests {
		from, _ := time.Parse(time.DateOnly, tt.from)
		got := AddMonths(from, tt.n).Format(time.DateOnly)
		if got != tt.want {
			t.Errorf("AddMonths(%s, %d) = %s, want %s", tt.from, tt.n, got, tt.want)
		}
	}
}

func TestFake(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	f.Advance(time.Hour)
	if got := f.Now(); !got.Equal(start.Add(time.Hour)) {
		t.Fatalf("Now = %v, want %v", got, start.Add(time.Hour))
	}
}
