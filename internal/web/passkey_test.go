package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"steward/internal/identity/identitytest"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestPasskeyOverHTTP: staff add a passkey through the JSON endpoints (and
// get their recovery codes), a later session gives it and reaches what
// the role allows; an answer made for another origin is refused, a
// session owing its factor cannot add a passkey, and the page offers the
// passkey through its script.
func TestPasskeyOverHTTP(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		const origin = "https://steward.test"
		e := newEnv(t, db, envOptions{policyFile: "jmir.yaml", config: Config{BaseURL: origin}})
		if err := e.identity.CreateStaff(context.Background(), "privacy@example.org", "privacy", testPassword); err != nil {
			t.Fatal(err)
		}
		key := identitytest.NewPasskey(t, "steward.test")
		c, _ := e.login("privacy@example.org", testPassword)
		opts := e.do(c, "POST", "/api/v1/me/second-factors/passkey/options", nil)
		if opts.StatusCode != http.StatusOK {
			t.Fatalf("creation options: %d %s", opts.StatusCode, opts.body)
		}
		r := e.do(c, "POST", "/api/v1/me/second-factors/passkey", key.Register(opts.body, origin))
		var added struct {
			Codes []string `json:"recovery_codes"`
		}
		r.json(t, &added)
		if r.StatusCode != http.StatusOK || len(added.Codes) != 10 {
			t.Fatalf("add the passkey: %d %s", r.StatusCode, r.body)
		}
		if r := e.do(c, "GET", "/api/v1/admin/requests", nil); r.StatusCode != http.StatusOK {
			t.Errorf("after adding a passkey: %d %s", r.StatusCode, r.body)
		}

		c2, _ := e.login("privacy@example.org", testPassword)
		if r := e.do(c2, "POST", "/api/v1/me/second-factors/passkey/options", nil); r.StatusCode != http.StatusForbidden {
			t.Errorf("a session owing its factor began adding a passkey: %d %s", r.StatusCode, r.body)
		}
		page := e.do(c2, "GET", "/account/second-factor", nil)
		if !strings.Contains(string(page.body), `data-passkey="login"`) || !strings.Contains(string(page.body), `src="/static/passkey.js"`) {
			t.Errorf("the second-factor page offers no passkey: %s", page.body)
		}
		if js := e.do(c2, "GET", "/static/passkey.js", nil); js.StatusCode != http.StatusOK || !strings.Contains(string(js.body), "navigator.credentials.get") {
			t.Errorf("passkey.js: %d", js.StatusCode)
		}
		opts = e.do(c2, "POST", "/api/v1/sessions/current/second-factor/passkey/options", nil)
		if opts.StatusCode != http.StatusOK {
			t.Fatalf("assertion options: %d %s", opts.StatusCode, opts.body)
		}
		key.Counter = 1
		if r := e.do(c2, "POST", "/api/v1/sessions/current/second-factor/passkey", key.Assert(opts.body, "https://other.example")); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("an assertion from another origin: %d %s", r.StatusCode, r.body)
		}
		if r := e.do(c2, "GET", "/api/v1/admin/requests", nil); r.StatusCode != http.StatusForbidden {
			t.Errorf("after a refused assertion: %d", r.StatusCode)
		}
		opts = e.do(c2, "POST", "/api/v1/sessions/current/second-factor/passkey/options", nil)
		if r := e.do(c2, "POST", "/api/v1/sessions/current/second-factor/passkey", key.Assert(opts.body, origin)); r.StatusCode != http.StatusNoContent {
			t.Fatalf("the passkey: %d %s", r.StatusCode, r.body)
		}
		if r := e.do(c2, "GET", "/api/v1/admin/requests", nil); r.StatusCode != http.StatusOK {
			t.Errorf("after the passkey: %d %s", r.StatusCode, r.body)
		}
	})
}
