// Package netlimit limits how often one client network may do something
// that costs others (a form that mails an address, a request that opens
// a record): a token bucket per IPv4 /24 or IPv6 /48, in memory, with a
// bounded map. It is a first line against a flood from one place, not an
// account lock (identity keeps those in the database).
package netlimit

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxNetworks bounds the map; past it, every bucket is forgotten (a full
// bucket and a forgotten one allow the same).
const maxNetworks = 10000

// Limiter allows burst events at once per network, then one per every.
type Limiter struct {
	every time.Duration
	burst int

	mu sync.Mutex
	m  map[netip.Prefix]*rate.Limiter
}

// New returns a limiter.
func New(every time.Duration, burst int) *Limiter {
	return &Limiter{every: every, burst: burst, m: map[netip.Prefix]*rate.Limiter{}}
}

// Allow reports whether the client's network may act now, and counts it.
// A request with no client address (the CLI, tests) is not limited.
func (l *Limiter) Allow(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	bits := 24
	if ip.Is6() && !ip.Is4In6() {
		bits = 48
	}
	p, err := ip.Unmap().Prefix(bits)
	if err != nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[p]
	if !ok {
		if len(l.m) >= maxNetworks {
			clear(l.m)
		}
		b = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.m[p] = b
	}
	return b.Allow()
}
