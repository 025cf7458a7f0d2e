package jobs

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	base, max := 30*time.Second, 6*time.Hour
	cases := []struct {
		attempt  int
		low, top time.Duration
	}{
		{1, 15 * time.Second, 30 * time.Second},
		{2, 30 * time.Second, time.Minute},
		{5, 4 * time.Minute, 8 * time.Minute},
		{12, 3 * time.Hour, 6 * time.Hour},  // capped
		{100, 3 * time.Hour, 6 * time.Hour}, // no overflow
	}
	for _, c := range cases {
		for range 50 {
			if got := backoff(base, max, c.attempt); got < c.low || got > c.top {
				t.Fatalf("backoff(attempt %d) = %v, want within [%v, %v]", c.attempt, got, c.low, c.top)
			}
		}
	}
}

func TestErrorTextMasksPersonalValues(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"send to bob@example.com failed", "send to [email] failed"},
		{"dial 198.51.100.23:25: refused", "dial [ip]:25: refused"},
		{"peer 2001:db8:0:0:1:2:3:4 gone", "peer [ip] gone"},
		{"peer fe80::1 gone", "peer [ip] gone"},
		{"at 12:30:45 the line\r\nbroke", "at 12:30:45 the line  broke"},
	}
	for _, c := range cases {
		if got := ErrorText(errors.New(c.in)); got != c.want {
			t.Errorf("ErrorText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := ErrorText(errors.New(strings.Repeat("é", 400)))
	if len(long) > maxErrorLen || !strings.HasSuffix(long, "…") || !strings.HasPrefix(long, "é") {
		t.Errorf("long error cut to %d bytes: %q", len(long), long)
	}
}
