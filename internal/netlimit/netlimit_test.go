package netlimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestLimitsPerNetwork(t *testing.T) {
	l := New(time.Hour, 3)
	a, b := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("198.51.100.200")
	for i := range 3 {
		if !l.Allow(a) {
			t.Fatalf("attempt %d refused within the burst", i)
		}
	}
	if l.Allow(b) {
		t.Error("another address of the same /24 was not counted with it")
	}
	if !l.Allow(netip.MustParseAddr("203.0.113.1")) {
		t.Error("another network was refused")
	}
	if !l.Allow(netip.Addr{}) {
		t.Error("no address (CLI, tests) was limited")
	}
	v6 := netip.MustParseAddr("2001:db8:1:2::1")
	for range 3 {
		l.Allow(v6)
	}
	if l.Allow(netip.MustParseAddr("2001:db8:1:ffff::9")) {
		t.Error("an IPv6 address of the same /48 was not counted with it")
	}
}
