package web

import (
	"net/http"
	"net/netip"
	"strings"
)

// client is who sent a request, as far as Steward can believe it.
type client struct {
	// IP is the client address: the peer's, or the one a trusted proxy
	// reports. It is used for rate limits and, truncated, for logs; it is
	// never stored whole.
	IP netip.Addr
	// HTTPS says the client's connection used TLS: ours, or a trusted
	// proxy's.
	HTTPS bool
}

// clientOf resolves the client of r. Forwarding headers (Forwarded, or
// X-Forwarded-For and X-Forwarded-Proto) are read only when the peer is a
// trusted proxy; then the chain is walked from the nearest hop outwards,
// skipping hops that are themselves trusted proxies, so a client cannot
// choose its address by sending its own header.
func (s *server) clientOf(r *http.Request) client {
	c := client{HTTPS: r.TLS != nil}
	peer, ok := parseHostAddr(r.RemoteAddr)
	if !ok {
		return c
	}
	c.IP = peer
	if !s.trusted(peer) {
		return c
	}
	if fwd := r.Header.Values("Forwarded"); len(fwd) > 0 {
		hops := parseForwarded(fwd)
		for i := len(hops) - 1; i >= 0; i-- {
			ip, ok := parseHostAddr(hops[i].forAddr)
			if !ok {
				break // "unknown" or an obfuscated name: stop at what we know
			}
			c.IP = ip
			if hops[i].proto != "" {
				c.HTTPS = strings.EqualFold(hops[i].proto, "https")
			}
			if !s.trusted(ip) {
				break
			}
		}
		return c
	}
	xff := splitList(r.Header.Values("X-Forwarded-For"))
	protos := splitList(r.Header.Values("X-Forwarded-Proto"))
	hop := -1
	for i := len(xff) - 1; i >= 0; i-- {
		ip, ok := parseHostAddr(xff[i])
		if !ok {
			break
		}
		c.IP, hop = ip, i
		if !s.trusted(ip) {
			break
		}
	}
	switch {
	case len(protos) == 0:
	case hop >= 0 && len(protos) == len(xff):
		// One proto per hop: take the one of the hop we believe.
		c.HTTPS = strings.EqualFold(protos[hop], "https")
	default:
		// Otherwise believe only the nearest proxy.
		c.HTTPS = strings.EqualFold(protos[len(protos)-1], "https")
	}
	return c
}

func (s *server) trusted(ip netip.Addr) bool {
	for _, p := range s.d.Config.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseHostAddr parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port",
// returning the address unmapped from IPv4-in-IPv6.
func parseHostAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

func splitList(values []string) []string {
	// The common case, one proxy adding one address, needs no copy.
	if len(values) == 1 {
		if v := values[0]; v != "" && !strings.ContainsRune(v, ',') && strings.TrimSpace(v) == v {
			return values
		}
	}
	var out []string
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

type forwardedHop struct{ forAddr, proto string }

// parseForwarded reads RFC 7239 Forwarded headers: comma-separated hops of
// semicolon-separated key=value pairs, values optionally quoted.
func parseForwarded(values []string) []forwardedHop {
	var hops []forwardedHop
	for _, v := range values {
		for _, elem := range splitQuoted(v, ',') {
			var h forwardedHop
			for _, pair := range splitQuoted(elem, ';') {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok {
					continue
				}
				val = strings.Trim(strings.TrimSpace(val), `"`)
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "for":
					h.forAddr = val
				case "proto":
					h.proto = val
				}
			}
			hops = append(hops, h)
		}
	}
	return hops
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case sep:
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// truncatedNetwork is what logs may say about a client: its /24 (IPv4) or
// /48 (IPv6) network, never the address.
func truncatedNetwork(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
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
