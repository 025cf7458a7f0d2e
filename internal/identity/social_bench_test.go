package identity

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"steward/internal/policy"
)

// BenchmarkVerifyIDToken is the relying side's cost of an ID token once
// the provider's keys are cached: go-oidc's checks (RS256 signature by a
// key of the JWKS, issuer, audience, expiry), the nonce, and copying the
// declared claims out of ten. Record results in BENCHMARKS.md with
//
//	go test -run '^$' -bench VerifyIDToken -benchmem ./internal/identity/
func BenchmarkVerifyIDToken(b *testing.B) {
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Shutdown() })
	cfg := m.Config()
	pol := &policy.Policy{IdentityProviders: []policy.IdentityProvider{{ID: "orcid", Name: "ORCID", Issuer: cfg.Issuer, ClientID: cfg.ClientID,
		SecretEnv: "SECRET", Claims: []string{FieldName, FieldEmail, FieldPicture}}}}
	ps, _, err := readProviders(pol, func(string) string { return cfg.ClientSecret }, "https://steward.example.org", slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	p, err := ps["orcid"].discovered(ctx, http.DefaultClient, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	raw, err := m.Keypair.SignJWT(jwt.MapClaims{
		"iss": cfg.Issuer, "sub": "0000-0002-1825-0097", "aud": cfg.ClientID, "nonce": "the-nonce",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"name": "Ada Lovelace", "email": "ada@example.org", "email_verified": true, "picture": "https://img.example.net/ada.png",
		"given_name": "Ada", "family_name": "Lovelace", "phone_number": "+44 20 7946 0321", "birthdate": "1815-12-10",
		"gender": "female", "locale": "en-GB", "preferred_username": "ada",
	})
	if err != nil {
		b.Fatal(err)
	}
	// The first verification fetches the JWKS; the loop measures the rest.
	if _, err := p.verify(ctx, raw, "the-nonce", ""); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		idt, err := p.verify(ctx, raw, "the-nonce", "")
		if err != nil {
			b.Fatal(err)
		}
		got, err := p.importClaims(idt.Claims)
		if err != nil || got.name == "" || got.email == "" || got.picture == "" {
			b.Fatalf("claims = %+v, %v", got, err)
		}
	}
}
