package support

import (
	"bytes"
	"strings"
	"testing"

	"steward/internal/policy"
)

// FuzzRoute: whatever recipient address arrives, routing never panics, a
// reply address is accepted only when its signature is the service's for
// that very request, and the desk's own address routes to no request.
func FuzzRoute(f *testing.F) {
	s := &Service{d: Deps{Address: "help@journal.example", LinkKey: bytes.Repeat([]byte{1}, 32), Policy: policy.Published{}}}
	good := s.ReplyAddress("r_abc")
	for _, seed := range []string{good, "help@journal.example", "HELP+r_abc.00@journal.example", "help+@journal.example", "help+x.y.z@journal.example",
		"nobody@else.example", "help+r_abc." + strings.Repeat("0", 20) + "@journal.example", "@", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		desk, id, err := s.route(addr)
		if err != nil && !desk {
			t.Fatalf("%q: an error for an address not the desk's", addr)
		}
		if id != "" {
			if err != nil {
				t.Fatalf("%q: both a request and an error", addr)
			}
			if !strings.EqualFold(strings.TrimSpace(addr), s.ReplyAddress(id)) {
				t.Fatalf("%q routed to %q, whose reply address is %q", addr, id, s.ReplyAddress(id))
			}
		}
	})
}
