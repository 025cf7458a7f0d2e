package web_test

import (
	"context"
	"errors"
	"net"
	"strconv"
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
	chromium := chromiumPath(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	s := startSteward(t, app.Config{Addr: "127.0.0.1:" + port, BaseURL: "http://localhost:" + port, Dev: true}, nil)
	base := "http://localhost:" + port
	ctx := context.Background()
	if err := s.app.Identity.CreateStaff(ctx, "pia@example.org", "privacy", passkeyPassword); err != nil {
		t.Fatal(err)
	}
	if !s.app.Identity.PasskeysEnabled() {
		t.Fatal("passkeys are off at " + base)
	}

	bctxTimeout, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(bctxTimeout,
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.UserAgent(browserUA))
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	if _, err := chromedp.Call(bctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn domain: %v", err)
	}
	if _, err := chromedp.Call(bctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
		HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}}); err != nil {
		t.Fatalf("virtual authenticator: %v", err)
	}
	waitFor := func(expr, what string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			var err error
			for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				var ok bool
				if ok, err = chromedp.Evaluate[bool](expr)(ctx, tg); err == nil && ok {
					return nil
				}
			}
			var page string
			page, _ = chromedp.Evaluate[string](`document.body.innerText`)(ctx, tg)
			return errors.Join(errors.New(what+" did not happen; the page says: "+page), err)
		})
	}
	login := chromedp.Steps(
		chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS("#f-email")),
		chromedp.SendKeys(chromedp.CSS("#f-email"), "pia@example.org"), chromedp.SendKeys(chromedp.CSS("#f-password"), passkeyPassword),
		chromedp.Click(chromedp.CSS("main form button[type=submit]")),
	)
	steps := []struct {
		name string
		do   chromedp.Action[chromedp.Void]
	}{
		{"log in", login},
		{"land on the enrolment page", waitFor(`location.pathname === '/account/second-factor' && !!document.querySelector('button[data-passkey=register]') && !document.querySelector('button[data-passkey=register]').hidden`, "the passkey button")},
		{"register a passkey", chromedp.Click(chromedp.CSS(`button[data-passkey=register]`))},
		{"recovery codes shown", waitFor(`document.querySelectorAll('ul.codes li').length === 10`, "the recovery codes")},
		{"account reachable", chromedp.Steps(chromedp.Navigate(base+"/account"), waitFor(`location.pathname === '/account'`, "the account page"))},
	}
	for _, st := range steps {
		if err := chromedp.Do(bctx, st.do); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
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
	steps = []struct {
		name string
		do   chromedp.Action[chromedp.Void]
	}{
		{"log in again", login},
		{"asked for the second factor", waitFor(`location.pathname === '/account/second-factor' && !!document.querySelector('button[data-passkey=login]') && !document.querySelector('button[data-passkey=login]').hidden`, "the passkey sign-in button")},
		{"give the passkey", chromedp.Click(chromedp.CSS(`button[data-passkey=login]`))},
		{"signed in", waitFor(`location.pathname === '/admin' && document.body.innerText.includes('You are signed in with the role privacy')`, "the staff console")},
	}
	for _, st := range steps {
		if err := chromedp.Do(bctx, st.do); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
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
