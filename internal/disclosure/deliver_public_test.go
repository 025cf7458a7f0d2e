package disclosure

import (
	"net/netip"
	"testing"
)

// A webhook reaches only public addresses: every special-purpose range,
// and an IPv4-mapped IPv6 address of one, is refused.
func TestPublicAddress(t *testing.T) {
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"2606:4700:4700::1111", true},
		{"::ffff:8.8.8.8", true},
		{"2001:4860:4860::8888", true},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"127.0.0.1", false},
		{"169.254.169.254", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"100.64.0.1", false},
		{"100.127.255.254", false},
		{"192.0.0.170", false},
		{"192.0.2.1", false},
		{"198.18.0.1", false},
		{"198.19.255.254", false},
		{"198.51.100.1", false},
		{"203.0.113.1", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},
		{"224.0.0.1", false},
		{"::1", false},
		{"::", false},
		{"::10.0.0.1", false},
		{"::ffff:0:10.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:100.64.0.1", false},
		{"::ffff:198.18.0.1", false},
		{"64:ff9b::a00:1", false},   // NAT64 of 10.0.0.1
		{"64:ff9b::808:808", false}, // NAT64, even of a public address
		{"64:ff9b:1::a00:1", false},
		{"100::1", false},
		{"2001::a00:1", false}, // Teredo
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false},
		{"2001:2::1", false},
		{"2001:db8::1", false},
		{"2002:a00:1::1", false}, // 6to4 of 10.0.0.1
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"fe80::1", false},
		{"fec0::1", false},
		{"ff02::1", false},
	} {
		if got := public(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("public(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
}
