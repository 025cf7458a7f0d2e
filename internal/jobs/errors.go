package jobs

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"
)

// backoff is the delay before retry number attempt: base doubled per
// attempt, capped, with "equal jitter" (between half and all of it) so
// that many jobs failing together do not retry together.
func backoff(base, max time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max || d <= 0 {
		d = max
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so the runner marks the job dead at once instead of
// retrying it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// retryAfter asks for the next attempt after d instead of the backoff.
type retryAfter struct {
	err error
	d   time.Duration
}

func (r retryAfter) Error() string { return r.err.Error() }
func (r retryAfter) Unwrap() error { return r.err }

// RetryAfter wraps err so the runner tries the job again after d (at
// least a second) instead of its backoff: for a failure whose end is
// known, such as a resource another process holds until a given time.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return retryAfter{err: err, d: max(d, time.Second)}
}

// retryDelay is the delay RetryAfter asked for, if it did.
func retryDelay(err error) (time.Duration, bool) {
	var r retryAfter
	if errors.As(err, &r) {
		return r.d, true
	}
	return 0, false
}

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// maxErrorLen bounds last_error: enough to diagnose, too short to hold a
// payload of personal data a handler might wrap into its error.
const maxErrorLen = 300

var (
	emailRE = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+`)
	ipv4RE  = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
	ipv6RE  = regexp.MustCompile(`(?i)\b(?:[0-9a-f]{1,4}:){4,7}[0-9a-f]{1,4}\b|\b[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?`)
)

// ErrorText turns an error into the short form Steward stores beside a
// job or a message (last_error): email addresses and IP addresses masked,
// since errors from libraries may echo them, control characters dropped,
// and the whole cut to a few hundred bytes.
func ErrorText(err error) string {
	s := err.Error()
	s = emailRE.ReplaceAllString(s, "[email]")
	s = ipv4RE.ReplaceAllString(s, "[ip]")
	s = ipv6RE.ReplaceAllString(s, "[ip]")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return truncate(s, maxErrorLen)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
