package identity

import (
	"log/slog"
	"testing"
)

// TestPasskeysNeedASecureContext: passkeys are on for an https base URL
// (RP ID its host, its origin the only one) and for localhost in
// development, and off for plain http elsewhere and for an IP address
// (an RP ID is a domain).
func TestPasskeysNeedASecureContext(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		base, rpID, origin string
	}{
		{"https://steward.example.org", "steward.example.org", "https://steward.example.org"},
		{"https://steward.example.org:8443/base", "steward.example.org", "https://steward.example.org:8443"},
		{"http://localhost:8080", "localhost", "http://localhost:8080"},
		{"http://127.0.0.1:8080", "", ""},
		{"https://192.0.2.1", "", ""},
		{"http://steward.example.org", "", ""},
		{"", "", ""},
	} {
		w, err := newPasskeys(c.base, "Steward", log)
		if err != nil {
			t.Fatalf("%q: %v", c.base, err)
		}
		switch {
		case c.rpID == "" && w != nil:
			t.Errorf("%q: passkeys on, want off", c.base)
		case c.rpID != "" && w == nil:
			t.Errorf("%q: passkeys off, want on", c.base)
		case w != nil && (w.Config.RPID != c.rpID || len(w.Config.RPOrigins) != 1 || w.Config.RPOrigins[0] != c.origin):
			t.Errorf("%q: RP ID %q, origins %v; want %q, [%s]", c.base, w.Config.RPID, w.Config.RPOrigins, c.rpID, c.origin)
		}
	}
}
