package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"steward/internal/consent"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// The operator's application, as jmir.yaml declares it (recipient
// submission-system), signing people in with Steward through a standard
// client library: go-oidc for discovery and ID-token verification,
// x/oauth2 for the code flow with PKCE.
const (
	appID       = "submission-system"
	appSecret   = "submission-client-secret-for-tests"
	appRedirect = "https://submit.jmir.example/oidc/callback"
)

// openidEnv is jmir.yaml with the application's secret set.
func openidEnv(t testing.TB, db *store.DB) *env {
	t.Helper()
	return newEnv(t, db, envOptions{policyFile: "jmir.yaml", getenv: func(name string) string {
		if name == "STEWARD_CLIENT_SUBMISSION_SECRET" {
			return appSecret
		}
		return ""
	}})
}

// toServer is a client that reaches the test server under the
// deployment's public host (steward.test), as the application and the
// member's browser do.
func (e *env) toServer(jar http.CookieJar) *http.Client {
	addr := strings.TrimPrefix(e.ts.URL, "http://")
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	return &http.Client{Transport: tr, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// app is the relying party.
type app struct {
	t        testing.TB
	ctx      context.Context
	provider *oidc.Provider
	conf     oauth2.Config
}

func (e *env) app(t testing.TB, scopes ...string) *app {
	t.Helper()
	ctx := oidc.ClientContext(context.Background(), e.toServer(nil))
	p, err := oidc.NewProvider(ctx, "http://steward.test/oidc")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &app{t: t, ctx: ctx, provider: p, conf: oauth2.Config{ClientID: appID, ClientSecret: appSecret, Endpoint: p.Endpoint(),
		RedirectURL: appRedirect, Scopes: append([]string{oidc.ScopeOpenID}, scopes...)}}
}

// browser is a member's browser signed in to Steward with the session
// token.
func (e *env) browser(token string) *http.Client {
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(&url.URL{Scheme: "http", Host: "steward.test", Path: "/"}, []*http.Cookie{{Name: SessionCookie, Value: token, Path: "/"}})
	return e.toServer(jar)
}

// get follows one step of the browser and returns the response.
func get(t testing.TB, c *http.Client, u string) *http.Response {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func body(t testing.TB, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// start sends the browser to the application's authorization URL and
// returns the sign-in page's address Steward sends it to, with the
// state, nonce and PKCE verifier the application keeps.
type flow struct {
	state, nonce, verifier string
}

func (a *app) authorize(browser *http.Client, extra ...oauth2.AuthCodeOption) (*http.Response, flow) {
	a.t.Helper()
	f := flow{state: "st-" + rand8(), nonce: "n-" + rand8(), verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier)}, extra...)
	return get(a.t, browser, a.conf.AuthCodeURL(f.state, opts...)), f
}

func rand8() string { return strings.ToLower(rand.Text())[:8] }

// continueURL reads where Steward's last page sends the browser on to
// the application (a refresh, not a redirect: see toApplication), or ""
// when the page is not that one.
func continueURL(page string) string {
	m := regexp.MustCompile(`http-equiv="refresh" content="0;url=([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// signIn walks the browser through the whole sign-in, ticking the
// consent scopes in agree on the screen (nil: expect no screen), and
// returns the code and state the application receives.
func (a *app) signIn(e *env, browser *http.Client, agree []string, opts ...oauth2.AuthCodeOption) (code string, f flow) {
	a.t.Helper()
	res, f := a.authorize(browser, opts...)
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "http://steward.test/oidc/sign-in?request=") {
		a.t.Fatalf("authorize = %d, Location %q: %s", res.StatusCode, loc, body(a.t, res))
	}
	res = get(a.t, browser, loc)
	page := body(a.t, res)
	if res.StatusCode != http.StatusOK {
		a.t.Fatalf("sign-in page = %d: %s", res.StatusCode, page)
	}
	if agree != nil {
		if !strings.Contains(page, "JMIR&#39;s manuscript submission system") || slices.Contains(a.conf.Scopes, "offers") != strings.Contains(page, `value="offers"`) ||
			strings.Contains(page, "phone") {
			a.t.Fatalf("consent screen does not show the application and its consent scope:\n%s", page)
		}
		form := url.Values{"request": {strings.TrimPrefix(loc, "http://steward.test/oidc/sign-in?request=")}, "action": {"continue"}}
		for _, s := range agree {
			form.Add("agree", s)
		}
		res, err := browser.PostForm("http://steward.test/oidc/sign-in", form)
		if err != nil {
			a.t.Fatal(err)
		}
		if page = body(a.t, res); res.StatusCode != http.StatusOK {
			a.t.Fatalf("answer = %d: %s", res.StatusCode, page)
		}
	}
	to := continueURL(page)
	back, err := url.Parse(to)
	if to == "" || err != nil || !strings.HasPrefix(back.String(), appRedirect+"?") {
		a.t.Fatalf("not sent back to the application (a screen where none was expected?):\n%s", page)
	}
	if back.Query().Get("state") != f.state {
		a.t.Fatalf("state came back as %q, want %q", back.Query().Get("state"), f.state)
	}
	return back.Query().Get("code"), f
}

// tokens exchanges the code and verifies the ID token as an application
// must (signature by a key of the JWKS, issuer, audience, expiry, nonce).
func (a *app) tokens(code string, f flow) (*oauth2.Token, map[string]any) {
	a.t.Helper()
	tok, err := a.conf.Exchange(a.ctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		a.t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.provider.Verifier(&oidc.Config{ClientID: appID}).Verify(a.ctx, raw)
	if err != nil {
		a.t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != f.nonce {
		a.t.Fatalf("nonce %q, want %q", idt.Nonce, f.nonce)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		a.t.Fatal(err)
	}
	return tok, claims
}

// userinfo asks the userinfo endpoint with the access token.
func (a *app) userinfo(tok *oauth2.Token) (map[string]any, error) {
	ui, err := a.provider.UserInfo(a.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, err
	}
	claims := map[string]any{}
	return claims, ui.Claims(&claims)
}

// personal keeps of claims those that say something about the person.
func personal(claims map[string]any) []string {
	protocol := []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "azp", "at_hash", "c_hash", "acr", "sid", "jti", "nbf", "client_id"}
	var out []string
	for k := range claims {
		if !slices.Contains(protocol, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// TestPromiseJ7_OpenIDProvider is the Done-when on both engines:
// an application signs a member in through Steward with a standard
// client library and receives exactly the claims its scopes and the
// member's consent allow — the contract scopes' name and address at once,
// the organisation (a consent scope) only after the member agreed on the
// screen and never after they withdrew — and the member revokes it from
// the privacy centre, which ends its token at once.
func TestPromiseJ7_OpenIDProvider(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := openidEnv(t, db)
		c, token := e.member("ada@example.org", "Ada Lovelace")
		if r := e.do(nil, "PATCH", "/api/v1/me", map[string]any{"organisation": "Analytical Engines Ltd", "phone": "+44 20 7946 0000"},
			"Authorization", "Bearer "+token); r.StatusCode != http.StatusOK {
			t.Fatalf("profile: %d %s", r.StatusCode, r.body)
		}
		subjectID := annID(t, e, c)
		// The member agreed to JMIR's own marketing in general: that is not
		// consent to give this application anything.
		if r := e.do(nil, "PUT", "/api/v1/me/consents/marketing", map[string]string{"state": "given"}, "Authorization", "Bearer "+token); r.StatusCode != http.StatusOK {
			t.Fatalf("consent: %d %s", r.StatusCode, r.body)
		}
		// The application asks for every declared scope and for phone,
		// which the policy does not let it ask for.
		a := e.app(t, "profile", "email", "offers", "phone")
		browser := e.browser(token)

		// 1. The member signs in without ticking the consent box.
		code, f := a.signIn(e, browser, []string{})
		tok, claims := a.tokens(code, f)
		if got, want := personal(claims), []string{"email", "email_verified", "name"}; !slices.Equal(got, want) {
			t.Fatalf("ID token without consent carries %v, want %v (%v)", got, want, claims)
		}
		if claims["name"] != "Ada Lovelace" || claims["email"] != "ada@example.org" || claims["email_verified"] != true {
			t.Fatalf("ID token claims %v", claims)
		}
		sub, _ := claims["sub"].(string)
		if sub == "" || sub == subjectID || strings.Contains(sub, "ada") {
			t.Fatalf("the application knows the member as %q: not a reference of its own", sub)
		}
		info, err := a.userinfo(tok)
		if err != nil {
			t.Fatal(err)
		}
		if got := personal(info); !slices.Equal(got, []string{"email", "email_verified", "name"}) || info["sub"] != sub {
			t.Fatalf("userinfo without consent: %v", info)
		}

		// 2. A sign-in that asks nothing new shows no screen; the
		// application asks again (prompt=consent) and the member agrees to
		// share the organisation: the ledger holds the consent, for this
		// application, with a signed receipt.
		code, f = a.signIn(e, browser, nil)
		if _, claims = a.tokens(code, f); claims["organisation"] != nil {
			t.Fatalf("a declined consent scope was released: %v", claims)
		}
		code, f = a.signIn(e, browser, []string{"offers"}, oauth2.SetAuthURLParam("prompt", "consent"))
		tok, claims = a.tokens(code, f)
		if claims["organisation"] != "Analytical Engines Ltd" || claims["sub"] != sub {
			t.Fatalf("after consent the ID token carries %v", claims)
		}
		if got := personal(claims); !slices.Equal(got, []string{"email", "email_verified", "name", "organisation"}) {
			t.Fatalf("after consent the ID token carries %v", got)
		}
		recs, err := e.svc.Consent.History(context.Background(), subjectID)
		if err != nil {
			t.Fatal(err)
		}
		var given *consent.Record
		for i := range recs {
			if recs[i].Scope == "client:"+appID && recs[i].State == consent.Given && recs[i].Purpose == "marketing" {
				given = &recs[i]
			}
		}
		if given == nil || len(given.Receipt) == 0 || given.CollectionPoint != "/oidc/sign-in" {
			t.Fatalf("no signed consent record for the application: %+v", recs)
		}

		// Each release is a disclosure on the register (what the access
		// report lists): the contract scopes' and, on the consent given
		// for this application, the organisation's.
		got, err := e.svc.Disclosure.Received(context.Background(), e.db, []string{subjectID})
		if err != nil {
			t.Fatal(err)
		}
		var contract, consented bool
		for _, d := range got {
			contract = contract || d.Recipient == appID && d.Purpose == "provide-service" && d.Basis == "contract" && slices.Contains(d.Fields, "email")
			consented = consented || d.Recipient == appID && d.Purpose == "marketing" && d.Basis == "consent" && slices.Equal(d.Fields, []string{"organisation"})
		}
		if !contract || !consented {
			t.Fatalf("the register of disclosures holds %+v", got)
		}

		// 3. A later sign-in asks nothing: no screen, same claims.
		code, f = a.signIn(e, browser, nil)
		_, claims = a.tokens(code, f)
		if claims["organisation"] != "Analytical Engines Ltd" {
			t.Fatalf("a returning sign-in lost the agreed claim: %v", claims)
		}

		// 4. J7: the member unticks the box on a later screen; the token
		// issued while they agreed no longer yields the organisation.
		code, f = a.signIn(e, browser, []string{}, oauth2.SetAuthURLParam("prompt", "consent"))
		a.tokens(code, f)
		if info, err = a.userinfo(tok); err != nil {
			t.Fatal(err)
		}
		if _, ok := info["organisation"]; ok {
			t.Fatalf("after the member withdrew it for this application, userinfo still carries %v", info)
		}
		// Agreeing again, then withdrawing consent to marketing as a whole
		// in the privacy centre, ends it too.
		code, f = a.signIn(e, browser, []string{"offers"}, oauth2.SetAuthURLParam("prompt", "consent"))
		if tok, claims = a.tokens(code, f); claims["organisation"] == nil {
			t.Fatalf("agreeing again released nothing: %v", claims)
		}
		if r := e.do(nil, "PUT", "/api/v1/me/consents/marketing", map[string]string{"state": "withdrawn"}, "Authorization", "Bearer "+token); r.StatusCode != http.StatusOK {
			t.Fatalf("withdraw: %d %s", r.StatusCode, r.body)
		}
		info, err = a.userinfo(tok)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := info["organisation"]; ok || info["name"] != "Ada Lovelace" {
			t.Fatalf("after withdrawal userinfo still carries %v", info)
		}

		// 5. The privacy centre lists the application; revoking it ends
		// the token at once and empties the list.
		r := e.do(nil, "GET", "/api/v1/me/applications", nil, "Authorization", "Bearer "+token)
		var list struct {
			Applications []struct {
				ClientID string `json:"client_id"`
				Name     string `json:"name"`
			} `json:"applications"`
		}
		r.json(t, &list)
		if len(list.Applications) != 1 || list.Applications[0].ClientID != appID {
			t.Fatalf("connected applications: %s", r.body)
		}
		if page := e.do(c, "GET", "/account/applications", nil); page.StatusCode != http.StatusOK || !strings.Contains(string(page.body), "Disconnect JMIR&#39;s manuscript submission system") {
			t.Fatalf("privacy centre page: %d %s", page.StatusCode, page.body)
		}
		if r := e.do(nil, "DELETE", "/api/v1/me/applications/"+appID, nil, "Authorization", "Bearer "+token); r.StatusCode != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", r.StatusCode, r.body)
		}
		if _, err := a.userinfo(tok); err == nil {
			t.Fatal("a revoked application's token still opens userinfo")
		}
		r = e.do(nil, "GET", "/api/v1/me/applications", nil, "Authorization", "Bearer "+token)
		r.json(t, &list)
		if len(list.Applications) != 0 {
			t.Fatalf("after revoking: %s", r.body)
		}
		// Every release was audited with the claim names, never values.
		entries, err := e.audit.ForSubject(context.Background(), e.db, subjectID)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, en := range entries {
			actions = append(actions, en.Action)
			for k, v := range en.Detail {
				for _, value := range []string{"Ada", "ada@example.org", "Analytical Engines"} {
					if strings.Contains(v, value) {
						t.Fatalf("audit entry %s holds a released value in %s: %q", en.Action, k, v)
					}
				}
			}
		}
		if !slices.Contains(actions, "openid.released") || !slices.Contains(actions, "openid.revoked") || !slices.Contains(actions, "openid.approved") {
			t.Fatalf("audit: %v", actions)
		}
	})
}

// TestOpenIDProviderRefusals: what a careless or hostile application or
// visitor tries is refused with the protocol's error, and nothing is
// released: a redirect URI not registered exactly, no PKCE, a wrong
// client secret, a code used twice or with the wrong verifier, an
// unknown client; a member who cancels sends the application
// access_denied; prompt=none without a session gets login_required.
func TestOpenIDProviderRefusals(t *testing.T) {
	e := openidEnv(t, storetest.SQLite(t, modules()))
	_, token := e.member("bo@example.org", "Bo Bell")
	a := e.app(t, "profile", "email")
	browser := e.browser(token)

	// An open redirect: a registered prefix, another host, a fragment.
	for _, bad := range []string{appRedirect + "/../evil", "https://evil.example/cb", appRedirect + "x", "https://submit.jmir.example/oidc/callback?x=1"} {
		conf := a.conf
		conf.RedirectURL = bad
		res := get(t, browser, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if loc := res.Header.Get("Location"); res.StatusCode < 400 || strings.Contains(loc, "evil") || strings.HasPrefix(loc, bad) {
			t.Fatalf("redirect_uri %q: %d, Location %q", bad, res.StatusCode, loc)
		}
		res.Body.Close()
	}
	// An unknown client.
	conf := a.conf
	conf.ClientID = "somebody-else"
	if res := get(t, browser, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); res.StatusCode < 400 {
		t.Fatalf("unknown client: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	// No PKCE: the error goes back to the (registered) redirect URI.
	res := get(t, browser, a.conf.AuthCodeURL("s-nopkce"))
	if back, _ := url.Parse(res.Header.Get("Location")); res.StatusCode != http.StatusFound || back.Query().Get("error") != "invalid_request" || back.Query().Get("state") != "s-nopkce" {
		t.Fatalf("no PKCE: %d %s", res.StatusCode, res.Header.Get("Location"))
	}

	// Not signed in: the sign-in page sends the browser to log in first,
	// and with prompt=none the application gets login_required.
	anon := e.toServer(nil)
	res, _ = a.authorize(anon)
	res = get(t, anon, res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login?next=%2Foidc%2Fsign-in") {
		t.Fatalf("anonymous sign-in page: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	res, f := a.authorize(anon, oauth2.SetAuthURLParam("prompt", "none"))
	res = get(t, anon, res.Header.Get("Location"))
	if back, _ := url.Parse(continueURL(body(t, res))); back == nil || back.Query().Get("error") != "login_required" || back.Query().Get("state") != f.state {
		t.Fatalf("prompt=none without a session: %d", res.StatusCode)
	}

	// The member cancels: access_denied, and the request is gone.
	res, f = a.authorize(browser)
	signIn := res.Header.Get("Location")
	id := strings.TrimPrefix(signIn, "http://steward.test/oidc/sign-in?request=")
	res, err := browser.PostForm("http://steward.test/oidc/sign-in", url.Values{"request": {id}, "action": {"cancel"}})
	if err != nil {
		t.Fatal(err)
	}
	if back, _ := url.Parse(continueURL(body(t, res))); back == nil || !strings.HasPrefix(back.String(), appRedirect) || back.Query().Get("error") != "access_denied" || back.Query().Get("state") != f.state {
		t.Fatalf("cancel: %d", res.StatusCode)
	}
	if res := get(t, browser, signIn); res.StatusCode != http.StatusNotFound {
		t.Fatalf("a cancelled request still answers: %d", res.StatusCode)
	}

	// A code: wrong verifier, wrong secret, then spent once.
	code, f := a.signIn(e, browser, []string{})
	if _, err := a.conf.Exchange(a.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("wrong PKCE verifier: %v", err)
	}
	code, f = a.signIn(e, browser, nil)
	wrong := a.conf
	wrong.ClientSecret = "not-the-secret"
	if _, err := wrong.Exchange(a.ctx, code, oauth2.VerifierOption(f.verifier)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("wrong client secret: %v", err)
	}
	a.tokens(code, f)
	if _, err := a.conf.Exchange(a.ctx, code, oauth2.VerifierOption(f.verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("a code used twice: %v", err)
	}
	// A forged access token opens nothing.
	if _, err := a.userinfo(&oauth2.Token{AccessToken: "forged", TokenType: "Bearer"}); err == nil {
		t.Fatal("a forged access token opened userinfo")
	}
}

// TestOpenIDKeyRotation: the rotation job makes a new signing key after
// RotateEvery, published at once and signing two minutes later (so every
// process's JWKS has it first); the JWKS publishes the old key a day more
// (so tokens it signed still verify), then drops it.
func TestOpenIDKeyRotation(t *testing.T) {
	e := openidEnv(t, storetest.SQLite(t, modules()))
	_, token := e.member("cy@example.org", "Cy Young")
	a := e.app(t, "profile")
	browser := e.browser(token)
	kidOf := func() (string, string) {
		code, f := a.signIn(e, browser, nil)
		tok, err := a.conf.Exchange(a.ctx, code, oauth2.VerifierOption(f.verifier))
		if err != nil {
			t.Fatal(err)
		}
		raw := tok.Extra("id_token").(string)
		hdr, _ := base64URLDecode(strings.Split(raw, ".")[0])
		var h struct{ Kid string }
		if err := jsonUnmarshal(hdr, &h); err != nil {
			t.Fatal(err)
		}
		return h.Kid, raw
	}
	// The first sign-in answers the screen.
	code, f := a.signIn(e, browser, []string{})
	a.tokens(code, f)
	kid1, raw1 := kidOf()
	ctx := context.Background()
	if _, err := e.runner.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	if kid, _ := kidOf(); kid != kid1 {
		t.Fatalf("the rotation job replaced a fresh key")
	}
	e.clock.Advance(31 * 24 * time.Hour)
	if _, err := e.runner.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	_, token = e.login("cy@example.org", testPassword) // the session expired meanwhile
	browser = e.browser(token)
	// The new key is published at once but signs only once every process
	// has had time to publish it.
	if kid, _ := kidOf(); kid != kid1 {
		t.Fatal("a key signed before every process could publish it")
	}
	if got := e.jwks(t); len(got) != 2 {
		t.Fatalf("the new key is not published at once: %v", got)
	}
	e.clock.Advance(3 * time.Minute)
	kid2, _ := kidOf()
	if kid2 == kid1 {
		t.Fatal("no new key after RotateEvery")
	}
	if got := e.jwks(t); !slices.Contains(got, kid1) || !slices.Contains(got, kid2) {
		t.Fatalf("JWKS after rotation: %v", got)
	}
	// A fresh verifier (fetching the JWKS now) still accepts a token the
	// old key signed (signature only: the token has long expired).
	p, err := oidc.NewProvider(a.ctx, "http://steward.test/oidc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Verifier(&oidc.Config{ClientID: appID, SkipExpiryCheck: true}).Verify(a.ctx, raw1); err != nil {
		t.Fatalf("a token of the replaced key no longer verifies: %v", err)
	}
	e.clock.Advance(25 * time.Hour)
	if _, err := e.runner.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.jwks(t); slices.Contains(got, kid1) || !slices.Contains(got, kid2) {
		t.Fatalf("JWKS a day after: %v", got)
	}
}

// jwks lists the key ids the provider publishes.
func (e *env) jwks(t *testing.T) []string {
	t.Helper()
	res := get(t, e.toServer(nil), "http://steward.test/oidc/keys")
	var set struct{ Keys []struct{ Kid string } }
	if err := jsonUnmarshal([]byte(body(t, res)), &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

func base64URLDecode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestOpenIDCodeGoesOnlyToTheApprovingSession: a sign-in request's id is
// no key to its code. An attacker who starts a sign-in and has a signed-in
// victim open it gets nothing from the request's id: op's callback is not
// served, and the code travels only in the approving session's answer. A
// code exchanged by several requests at once yields one token set.
func TestOpenIDCodeGoesOnlyToTheApprovingSession(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := openidEnv(t, db)
		vc, token := e.member("vic@example.org", "Vic Victim")
		a := e.app(t, "profile", "email")
		victim := e.browser(token)
		code, f := a.signIn(e, victim, []string{}) // the victim has used the application before
		a.tokens(code, f)

		attacker := e.toServer(nil)
		res, _ := a.authorize(attacker)
		link := res.Header.Get("Location")
		id := strings.TrimPrefix(link, "http://steward.test/oidc/sign-in?request=")
		victimPage := body(t, get(t, victim, link)) // approved without a screen
		if continueURL(victimPage) == "" {
			t.Fatalf("the victim's sign-in did not complete: %s", victimPage)
		}
		callback := "http://steward.test/oidc/authorize/callback?id=" + url.QueryEscape(id)
		noCode := func(try string, res *http.Response) {
			t.Helper()
			page := body(t, res)
			if strings.Contains(res.Header.Get("Location"), "code=") || strings.Contains(page, "code=") {
				t.Fatalf("the attacker got a code from %s: %d %s %s", try, res.StatusCode, res.Header.Get("Location"), page)
			}
		}
		for _, try := range []string{callback, link} {
			noCode("GET "+try, get(t, attacker, try))
		}
		// Nor by another method, even in the moment between the
		// approval's commit and its code (the request approved, no code
		// saved yet: the state the victim's approval passes through).
		res, _ = a.authorize(attacker)
		id = strings.TrimPrefix(res.Header.Get("Location"), "http://steward.test/oidc/sign-in?request=")
		if _, err := db.ExecContext(context.Background(), `UPDATE openid_requests SET subject_id = $2, granted_scopes = 'openid profile email', auth_time = $3 WHERE id = $1`,
			id, annID(t, e, vc), e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		for _, try := range []string{"http://steward.test/oidc/authorize/callback", callback} {
			r, err := attacker.PostForm(try, url.Values{"id": {id}})
			if err != nil {
				t.Fatal(err)
			}
			noCode("POST "+try, r)
		}

		// One code, four exchanges at once: one token set (five rounds:
		// a race shows only some of the time).
		for round := range 5 {
			code, f = a.signIn(e, victim, nil)
			var wg sync.WaitGroup
			var mu sync.Mutex
			won := 0
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := a.conf.Exchange(a.ctx, code, oauth2.VerifierOption(f.verifier)); err == nil {
						mu.Lock()
						won++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if won != 1 {
				t.Fatalf("round %d: %d of 4 concurrent exchanges of one code got tokens, want 1", round, won)
			}
		}
	})
}

// TestOpenIDClientConsentIsNotPurposeConsent: agreeing on the sign-in
// screen that one application may have the organisation is consent to
// that application only — the purpose (marketing) stays not consented in
// the privacy centre and the subject's state — yet the application
// receives the claim; withdrawing it there or revoking the application
// ends it.
func TestOpenIDClientConsentIsNotPurposeConsent(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := openidEnv(t, db)
		c, token := e.member("cora@example.org", "Cora Client")
		if r := e.do(nil, "PATCH", "/api/v1/me", map[string]any{"organisation": "Coral Reef Institute"}, "Authorization", "Bearer "+token); r.StatusCode != http.StatusOK {
			t.Fatalf("profile: %d %s", r.StatusCode, r.body)
		}
		id := annID(t, e, c)
		a := e.app(t, "profile", "offers")
		code, f := a.signIn(e, e.browser(token), []string{"offers"})
		tok, claims := a.tokens(code, f)
		if claims["organisation"] != "Coral Reef Institute" {
			t.Fatalf("the agreed claim was not released: %v", claims)
		}
		ctx := context.Background()
		choices, err := e.svc.Consent.Choices(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range choices {
			if ch.Purpose == "marketing" && (ch.InForce || ch.State != "not_asked") {
				t.Fatalf("consent for one application shows as consent to marketing: %+v", ch)
			}
		}
		st, err := e.svc.Subjects.State(ctx, e.db, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Consents["marketing"] {
			t.Fatal("the subject's state says marketing is consented")
		}
		// The application's own withdrawal button: revoke it.
		if r := e.do(c, "POST", "/account/applications/"+appID+"/revoke", url.Values{}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("revoke: %d %s", r.StatusCode, r.body)
		}
		if _, err := a.userinfo(tok); err == nil {
			t.Fatal("userinfo after revoking")
		}
		if in, err := e.svc.Consent.ScopeInForce(ctx, e.db, id, "marketing", "client:"+appID); err != nil || in {
			t.Fatalf("the application's consent survived its revocation: %v %v", in, err)
		}
	})
}

// TestOpenIDFreshLoginAndHint: an application asking for a recent login
// (max_age, prompt=login) gets the password asked again, or
// login_required with prompt=none; one naming another member
// (id_token_hint) is never answered for the member signed in.
func TestOpenIDFreshLoginAndHint(t *testing.T) {
	e := openidEnv(t, storetest.SQLite(t, modules()))
	_, ann := e.member("ann@example.org", "Ann A")
	_, bob := e.member("bob@example.org", "Bob B")
	a := e.app(t, "profile")
	annB, bobB := e.browser(ann), e.browser(bob)
	code, f := a.signIn(e, annB, []string{})
	_, annClaims := a.tokens(code, f)
	code, f = a.signIn(e, bobB, []string{})
	a.tokens(code, f)
	e.clock.Advance(20 * time.Minute) // past the privileged window

	// max_age=0: the screen asks for the password, even for a returning member.
	res, f := a.authorize(bobB, oauth2.SetAuthURLParam("max_age", "0"))
	link := res.Header.Get("Location")
	page := body(t, get(t, bobB, link))
	if !strings.Contains(page, `name="password"`) {
		t.Fatalf("max_age=0 did not ask for the password: %s", page)
	}
	reqID := strings.TrimPrefix(link, "http://steward.test/oidc/sign-in?request=")
	res, err := bobB.PostForm("http://steward.test/oidc/sign-in", url.Values{"request": {reqID}, "action": {"continue"}, "password": {"wrong password entirely"}})
	if err != nil {
		t.Fatal(err)
	}
	if page := body(t, res); res.StatusCode != http.StatusUnprocessableEntity || continueURL(page) != "" {
		t.Fatalf("a wrong password: %d", res.StatusCode)
	}
	res, err = bobB.PostForm("http://steward.test/oidc/sign-in", url.Values{"request": {reqID}, "action": {"continue"}, "password": {testPassword}})
	if err != nil {
		t.Fatal(err)
	}
	back, _ := url.Parse(continueURL(body(t, res)))
	if back == nil || back.Query().Get("code") == "" {
		t.Fatalf("the password given: %d", res.StatusCode)
	}
	_, claims := a.tokens(back.Query().Get("code"), f)
	if at, _ := claims["auth_time"].(float64); int64(at) != e.clock.Now().Unix() {
		t.Fatalf("auth_time %v, want the password's time %d", claims["auth_time"], e.clock.Now().Unix())
	}
	// prompt=none with max_age=0, a second later: login_required, no page.
	e.clock.Advance(time.Second)
	res, f = a.authorize(bobB, oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("max_age", "0"))
	if back, _ := url.Parse(continueURL(body(t, get(t, bobB, res.Header.Get("Location"))))); back == nil || back.Query().Get("error") != "login_required" {
		t.Fatal("prompt=none with max_age=0 was not login_required")
	}
	// Ann's ID token as the hint while Bob is signed in.
	hint := oauth2.SetAuthURLParam("id_token_hint", idTokenOf(t, a, annB))
	_ = annClaims
	res, _ = a.authorize(bobB, hint, oauth2.SetAuthURLParam("prompt", "none"))
	if back, _ := url.Parse(continueURL(body(t, get(t, bobB, res.Header.Get("Location"))))); back == nil || back.Query().Get("error") != "login_required" || back.Query().Get("code") != "" {
		t.Fatal("prompt=none naming another member was answered")
	}
	res, _ = a.authorize(bobB, hint)
	if res := get(t, bobB, res.Header.Get("Location")); res.StatusCode != http.StatusConflict {
		t.Fatalf("a sign-in naming another member: %d", res.StatusCode)
	}
}

// idTokenOf signs a member in and returns the raw ID token.
func idTokenOf(t *testing.T, a *app, browser *http.Client) string {
	t.Helper()
	res, f := a.authorize(browser)
	back, _ := url.Parse(continueURL(body(t, get(t, browser, res.Header.Get("Location")))))
	tok, err := a.conf.Exchange(a.ctx, back.Query().Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok.Extra("id_token").(string)
}

// TestOpenIDDiscoveryOffersOnlyWhatIsServed: the discovery document
// announces the code flow, pairwise subjects and the declared claims, and
// nothing the provider refuses; logout and the device flow answer 404; no
// origin is granted CORS.
func TestOpenIDDiscoveryOffersOnlyWhatIsServed(t *testing.T) {
	e := openidEnv(t, storetest.SQLite(t, modules()))
	c := e.toServer(nil)
	var doc struct {
		ResponseTypes []string `json:"response_types_supported"`
		GrantTypes    []string `json:"grant_types_supported"`
		SubjectTypes  []string `json:"subject_types_supported"`
		Claims        []string `json:"claims_supported"`
		EndSession    string   `json:"end_session_endpoint"`
		Device        string   `json:"device_authorization_endpoint"`
	}
	if err := json.Unmarshal([]byte(body(t, get(t, c, "http://steward.test/oidc/.well-known/openid-configuration"))), &doc); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(doc.ResponseTypes, []string{"code"}) || !slices.Equal(doc.GrantTypes, []string{"authorization_code"}) ||
		!slices.Equal(doc.SubjectTypes, []string{"pairwise"}) || doc.EndSession != "" || doc.Device != "" ||
		!slices.Contains(doc.Claims, "organisation") || slices.Contains(doc.Claims, "phone_number") {
		t.Fatalf("discovery: %+v", doc)
	}
	for _, path := range []string{"/oidc/end_session", "/oidc/authorize/callback?id=x"} {
		if res := get(t, c, "http://steward.test"+path); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", path, res.StatusCode)
		}
	}
	req, _ := http.NewRequest("POST", "http://steward.test/oidc/oauth/token", strings.NewReader("grant_type=authorization_code&code=x"))
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("CORS granted to %q", got)
	}
}
