package retention

import (
	"testing"
	"time"
)

// TestRestGrowsWithTheWork: a sweep rests at least its pause, and six
// times as long as a slow batch took, so it never works more than a
// seventh of the time beside collection.
func TestRestGrowsWithTheWork(t *testing.T) {
	s := &Service{d: Deps{Pause: 20 * time.Millisecond}}
	for _, c := range []struct{ worked, want time.Duration }{
		{0, 20 * time.Millisecond},
		{time.Millisecond, 20 * time.Millisecond},
		{10 * time.Millisecond, 60 * time.Millisecond},
		{time.Second, 6 * time.Second},
	} {
		if got := s.restAfter(c.worked); got != c.want {
			t.Errorf("after %v of work: rest %v, want %v", c.worked, got, c.want)
		}
	}
}
