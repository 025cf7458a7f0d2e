package web

import (
	"net/http"
	"os"
	"testing"

	"steward/internal/store"
	"steward/internal/store/storetest"
)

// BenchmarkOpenIDRoundTrip is an application signing a returning member
// in through Steward: authorize, the sign-in page (which asks nothing
// new and sends the browser straight on), op's callback issuing the
// code, the code exchange with PKCE and client secret (ID token signed
// RS256, claims read through the door), and userinfo (claims read
// again). Baseline in the same run: the member's own GET /api/v1/me, one
// authenticated request that opens the same profile.
//
//	go test ./internal/web -run '^$' -bench OpenIDRoundTrip -benchtime 200x -count 3
//	STEWARD_TEST_DATABASE_URL=postgres://… (the same, on PostgreSQL too)
func BenchmarkOpenIDRoundTrip(b *testing.B) {
	engines := map[string]func(testing.TB) *store.DB{"sqlite": func(t testing.TB) *store.DB { return storetest.SQLite(t, modules()) }}
	if os.Getenv(storetest.EnvURL) != "" {
		engines["postgres"] = func(t testing.TB) *store.DB { return storetest.Postgres(t, modules()) }
	}
	for name, open := range engines {
		e := openidEnv(b, open(b))
		c, token := e.member("bench@example.org", "Bench Member")
		a := e.app(b, "profile", "email")
		browser := e.browser(token)
		code, f := a.signIn(e, browser, []string{}) // the first sign-in answers the screen
		a.tokens(code, f)
		b.Run(name+"/authorize-token-userinfo", func(b *testing.B) {
			for b.Loop() {
				code, f := a.signIn(e, browser, nil)
				tok, _ := a.tokens(code, f)
				if _, err := a.userinfo(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/baseline-get-me", func(b *testing.B) {
			for b.Loop() {
				if r := e.do(c, "GET", "/api/v1/me", nil); r.StatusCode != http.StatusOK {
					b.Fatal(r.StatusCode)
				}
			}
		})
	}
}
