package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"steward/internal/app"
)

// TestBrowserPasskeySecondFactor runs passkey.js in Chromium with a
// virtual authenticator (the DevTools WebAuthn domain): a privacy
// officer, whose role needs a second factor, registers a passkey on the
// page their first login lands on, sees their recovery codes, and on the
// next login gives the passkey and reaches their account. The server
// checks everything the browser sends with go-webauthn, at
// http://localhost (a secure context and a domain, as WebAuthn needs).
func TestBrowserPasskeySecondFactor(t *testing.T) {
	bctx := startBrowser(t, 90*time.Second)
	port := freePort(t)
	s := startSteward(t, app.Config{Addr: "127.0.0.1:" + port, BaseURL: "http://localhost:" + port, Dev: true}, nil)
	base := "http://localhost:" + port
	ctx := context.Background()
	if err := s.app.Identity.CreateStaff(ctx, "pia@example.org", "privacy", passkeyPassword); err != nil {
		t.Fatal(err)
	}
	if !s.app.Identity.PasskeysEnabled() {
		t.Fatal("passkeys are off at " + base)
	}
	if _, err := chromedp.Call(bctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn domain: %v", err)
	}
	if _, err := chromedp.Call(bctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
		HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}}); err != nil {
		t.Fatalf("virtual authenticator: %v", err)
	}
	login := chromedp.Steps(
		chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS("#f-email")),
		chromedp.SendKeys(chromedp.CSS("#f-email"), "pia@example.org"), chromedp.SendKeys(chromedp.CSS("#f-password"), passkeyPassword),
		chromedp.Click(chromedp.CSS("main form button[type=submit]")),
	)
	walk(t, bctx,
		browserStep{"log in", login},
		browserStep{"land on the enrolment page", waitFor(`location.pathname === '/account/second-factor' && !!document.querySelector('button[data-passkey=register]') && !document.querySelector('button[data-passkey=register]').hidden`, "the passkey button")},
		browserStep{"register a passkey", chromedp.Click(chromedp.CSS(`button[data-passkey=register]`))},
		browserStep{"recovery codes shown", waitFor(`document.querySelectorAll('ul.codes li').length === 10`, "the recovery codes")},
		browserStep{"account reachable", chromedp.Steps(chromedp.Navigate(base+"/account"), waitFor(`location.pathname === '/account'`, "the account page"))},
	)
	factors, err := s.app.Identity.SecondFactors(ctx, staffID(t, s, "pia@example.org"))
	if err != nil {
		t.Fatal(err)
	}
	if len(factors) != 1 || factors[0].Kind != "passkey" {
		t.Fatalf("factors after registering in the browser: %+v", factors)
	}
	// A new login owes the factor; the passkey gives it.
	if _, err := chromedp.Call(bctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	walk(t, bctx,
		browserStep{"log in again", login},
		browserStep{"asked for the second factor", waitFor(`location.pathname === '/account/second-factor' && !!document.querySelector('button[data-passkey=login]') && !document.querySelector('button[data-passkey=login]').hidden`, "the passkey sign-in button")},
		browserStep{"give the passkey", chromedp.Click(chromedp.CSS(`button[data-passkey=login]`))},
		browserStep{"signed in", waitFor(`location.pathname === '/admin' && document.body.innerText.includes('You are signed in with the role privacy')`, "the staff console")},
	)
}

// staffID finds a staff member's subject id by address.
func staffID(t *testing.T, s *steward, email string) string {
	t.Helper()
	sub, err := s.app.Subjects.FindByEmail(context.Background(), s.app.DB, s.app.Door, email)
	if err != nil {
		t.Fatal(err)
	}
	return sub.ID
}

const passkeyPassword = "correct horse battery staple lantern"
