package web_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"steward/examples"
	"steward/internal/app"
	"steward/internal/app/services/servicestest"
)

// TestBrowserSignInToAnApplication: a person in Chromium opens the
// operator's application (another origin), is sent to Steward, logs in
// there, agrees on the consent screen, and lands back in the application
// signed in — the application exchanging the code and verifying the ID
// token with go-oidc on its server. The login form's and the consent
// screen's POSTs end in the application's origin, which a redirect could
// not reach past the pages' form-action 'self'.
func TestBrowserSignInToAnApplication(t *testing.T) {
	bctx := startBrowser(t, 90*time.Second)
	port := freePort(t)
	base := "http://localhost:" + port

	// The application, at another origin.
	const secret = "browser-test-client-secret"
	var conf oauth2.Config
	var verifier *oidc.IDTokenVerifier
	pkce := map[string]string{} // state → verifier
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			state, v := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
			pkce[state] = v
			http.Redirect(w, r, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(v), oidc.Nonce("n-"+state[:8])), http.StatusFound)
		case "/callback":
			v, ok := pkce[r.URL.Query().Get("state")]
			if !ok {
				http.Error(w, "unknown state", http.StatusBadRequest)
				return
			}
			tok, err := conf.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(v))
			if err != nil {
				http.Error(w, "exchange: "+err.Error(), http.StatusBadGateway)
				return
			}
			idt, err := verifier.Verify(r.Context(), tok.Extra("id_token").(string))
			if err != nil {
				http.Error(w, "verify: "+err.Error(), http.StatusBadGateway)
				return
			}
			var c struct{ Name, Email string }
			idt.Claims(&c)
			fmt.Fprintf(w, "<!doctype html><title>App</title><p id=who>Signed in as %s &lt;%s&gt;</p>", html.EscapeString(c.Name), html.EscapeString(c.Email))
		default:
			http.NotFound(w, r)
		}
	}))
	defer rp.Close()

	raw, err := fs.ReadFile(examples.FS, "jmir.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const registered = "https://submit.jmir.example/oidc/callback"
	if !bytes.Contains(raw, []byte(registered)) {
		t.Fatalf("jmir.yaml no longer registers %s", registered)
	}
	pol := filepath.Join(t.TempDir(), "jmir.yaml")
	if err := os.WriteFile(pol, bytes.Replace(raw, []byte(registered), []byte(rp.URL+"/callback"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startStewardEnv(t, app.Config{Addr: "127.0.0.1:" + port, BaseURL: base, Dev: true, PolicyPath: pol}, nil, app.Options{},
		func(name string) string {
			if name == "STEWARD_CLIENT_SUBMISSION_SECRET" {
				return secret
			}
			return ""
		})
	ctx := context.Background()
	servicestest.Member(t, s.app.Services, "ada@example.org", "Ada Lovelace")
	provider, err := oidc.NewProvider(ctx, base+"/oidc")
	if err != nil {
		t.Fatal(err)
	}
	conf = oauth2.Config{ClientID: "submission-system", ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: rp.URL + "/callback",
		Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	verifier = provider.Verifier(&oidc.Config{ClientID: "submission-system"})

	walk(t, bctx,
		browserStep{"open the application", chromedp.Steps(chromedp.Navigate(rp.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#f-email")))},
		browserStep{"log in at Steward", chromedp.Steps(
			chromedp.SendKeys(chromedp.CSS("#f-email"), "ada@example.org"), chromedp.SendKeys(chromedp.CSS("#f-password"), servicestest.Password),
			chromedp.Click(chromedp.CSS("main form button[type=submit]")))},
		browserStep{"the consent screen", waitFor(`!!document.querySelector('button[value=continue]')`, "the consent screen")},
		browserStep{"continue", chromedp.Click(chromedp.CSS(`button[value=continue]`))},
		browserStep{"signed in to the application", waitFor(`!!document.getElementById('who')`, "the application's page")},
	)
	who, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById('who').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if who != "Signed in as Ada Lovelace <ada@example.org>" {
		t.Fatalf("the application shows %q", who)
	}
}
