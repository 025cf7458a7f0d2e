package consent

import (
	"net/netip"
	"strings"
	"unicode"

	"github.com/mileusna/useragent"
)

// Evidence is what the ledger keeps to show how a choice was made, and no
// more: the browser family (not the full user-agent string, which
// fingerprints) and the network the request came from (an IPv4 /24 or an
// IPv6 /48, never the address).
type Evidence struct {
	UserAgentFamily string `json:"userAgentFamily,omitempty"`
	Network         string `json:"network,omitempty"`
}

// NewEvidence reduces a request's client address and user agent to
// evidence.
func NewEvidence(ip netip.Addr, userAgent string) Evidence {
	return Evidence{UserAgentFamily: UserAgentFamily(userAgent), Network: Network(ip)}
}

// Network truncates an address to the network that identifies no one:
// /24 for IPv4, /48 for IPv6. An invalid address gives "".
func Network(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	ip = ip.Unmap()
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// UserAgentFamily returns the browser family ("Firefox", "Chrome") of a
// user-agent string, or "other".
func UserAgentFamily(ua string) string {
	if ua == "" {
		return ""
	}
	if len(ua) > 1024 {
		ua = ua[:1024]
	}
	name := useragent.Parse(ua).Name
	name = strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || r == '-' || r == '.' {
			return r
		}
		return -1
	}, name)
	if name == "" {
		return "other"
	}
	if len(name) > 40 {
		name = name[:40]
	}
	return name
}
