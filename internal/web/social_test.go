package web

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"steward/internal/store"
	"steward/internal/store/storetest"
)

// orcid is a provider run in the test under jmir.yaml's declaration of
// ORCID: the policy's issuer and client id are replaced by the mock's,
// and the secret is read from the variable the policy names.
type orcid struct {
	m *mockoidc.MockOIDC
}

func startORCID(t *testing.T, now time.Time) *orcid {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.ClientID, m.ClientSecret = "APP-TEST0000000001", "orcid-client-secret"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	m.FastForward(now.Sub(time.Now()))
	return &orcid{m: m}
}

// socialEnv is jmir.yaml with its ORCID sign-in pointed at a provider run
// in the test.
func socialEnv(t *testing.T, db *store.DB) (*env, *orcid) {
	t.Helper()
	op := startORCID(t, time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	data := loadExample(t, "jmir.yaml")
	for from, to := range map[string]string{"issuer: https://orcid.org": "issuer: " + op.m.Issuer(), "client_id: APP-JMIREXAMPLE0001": "client_id: " + op.m.ClientID} {
		if !bytes.Contains(data, []byte(from)) {
			t.Fatalf("jmir.yaml no longer holds %q", from)
		}
		data = bytes.Replace(data, []byte(from), []byte(to), 1)
	}
	e := newEnv(t, db, envOptions{policyFile: "jmir.yaml", policyData: data, getenv: func(name string) string {
		if name == "STEWARD_OIDC_ORCID_SECRET" {
			return op.m.ClientSecret
		}
		return ""
	}})
	return e, op
}

// person queues who signs in at the provider next.
func (op *orcid) person(sub, name, email string, verified bool) {
	op.m.QueueUser(&mockoidc.MockUser{Subject: sub, Email: email, EmailVerified: verified, PreferredUsername: name, Phone: "+1 202 555 0100", Address: "1 Provider Road"})
}

// signInWith walks a browser through a sign-in: the button's link, the
// provider's redirect back, and the callback, whose answer it returns.
func (e *env) signInWith(t *testing.T, c *http.Client, start string) resp {
	t.Helper()
	r := e.do(c, "GET", start, nil)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET %s = %d: %s", start, r.StatusCode, r.body)
	}
	res, err := c.Get(r.Header.Get("Location")) // the provider signs in at once
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	back, err := url.Parse(res.Header.Get("Location"))
	if err != nil || back.Path != "/login/orcid/callback" {
		t.Fatalf("the provider sent the browser to %q", res.Header.Get("Location"))
	}
	return e.do(c, "GET", back.RequestURI(), nil)
}

func hasCookie(r resp, name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// A sign-in with ORCID over HTTP, as a browser does it: the buttons, the
// cookie that binds the sign-in to the browser, the new account signed
// in, its linked provider on the account page and in the API, the
// provider named as the source in the access report, unlinking refused
// while it is the only way in, and account erasure taking the link.
func TestSocialSignInOverHTTP(t *testing.T) {
	t.Parallel()
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e, op := socialEnv(t, db)
		ctx := context.Background()
		if r := e.do(nil, "GET", "/login", nil); !strings.Contains(string(r.body), `action="/login/orcid"`) {
			t.Errorf("the login page offers no ORCID button: %s", r.body)
		}
		if r := e.do(nil, "GET", "/signup", nil); !strings.Contains(string(r.body), `action="/login/orcid"`) || !strings.Contains(string(r.body), "ORCID gives us only your profile picture, your name and your email address") {
			t.Errorf("the sign-up page offers no ORCID sign-up saying what it imports: %s", r.body)
		}
		var providers struct {
			Providers []struct {
				ID     string
				Claims []string
			}
		}
		e.do(nil, "GET", "/api/v1/sign-in-providers", nil).json(t, &providers)
		if len(providers.Providers) != 1 || providers.Providers[0].ID != "orcid" || len(providers.Providers[0].Claims) != 3 {
			t.Errorf("providers = %+v", providers)
		}

		c := e.client()
		start := e.do(c, "GET", "/login/orcid?age_confirmed=yes", nil)
		ck := hasCookie(start, SignInCookie)
		if start.StatusCode != http.StatusSeeOther || ck == nil || !ck.HttpOnly || ck.Path != "/login/" || ck.SameSite != http.SameSiteLaxMode {
			t.Fatalf("start = %d, cookie %+v", start.StatusCode, ck)
		}
		op.person("orcid-0001", "ada", "ada@example.org", true)
		r := e.signInWith(t, c, "/login/orcid?age_confirmed=yes")
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account?done=signed-up" || hasCookie(r, SessionCookie) == nil {
			t.Fatalf("callback = %d to %q: %s", r.StatusCode, r.Header.Get("Location"), r.body)
		}
		page := e.do(c, "GET", "/account", nil)
		if page.StatusCode != 200 || !strings.Contains(string(page.body), "ORCID") || !strings.Contains(string(page.body), `action="/account/sign-in-links/orcid/unlink"`) {
			t.Fatalf("account page lists no ORCID link: %d %s", page.StatusCode, page.body)
		}
		var links struct {
			Links []struct{ Provider, Name string }
		}
		e.do(c, "GET", "/api/v1/me/sign-in-links", nil).json(t, &links)
		if len(links.Links) != 1 || links.Links[0].Name != "ORCID" {
			t.Errorf("links = %+v", links)
		}
		// J6: the access report says where the data came from.
		report := e.do(c, "GET", "/api/v1/me/data", nil)
		if !strings.Contains(string(report.body), "third-party:orcid") || !strings.Contains(string(report.body), "a third party you allowed to share it with us (orcid)") {
			t.Errorf("the access report does not name ORCID as the source: %s", report.body)
		}
		// The only way into an account without a password stays.
		if r := e.do(c, "DELETE", "/api/v1/me/sign-in-links/orcid", nil); r.StatusCode != http.StatusConflict {
			t.Errorf("unlinking the only way in = %d: %s", r.StatusCode, r.body)
		}
		// Erasure of the account takes the link with it.
		var er requestView
		e.do(c, "POST", "/api/v1/me/requests", map[string]any{"type": "erasure", "scope": "account"}).json(t, &er)
		e.runJobs(t)
		for _, table := range []string{"social_links", "accounts"} {
			var n int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil || n != 0 {
				t.Errorf("%s holds %d rows after the erasure (%v; request %+v)", table, n, err, er)
			}
		}
	})
}

// A refused callback is a page that says why, and stores nothing.
func TestSocialCallbackRefusalIsAPage(t *testing.T) {
	t.Parallel()
	e, _ := socialEnv(t, storetest.SQLite(t, modules()))
	c := e.client()
	e.do(c, "GET", "/login/orcid", nil)
	r := e.do(c, "GET", "/login/orcid/callback?state="+strings.Repeat("A", 43)+"&code=x", nil, "Accept", "text/html")
	if r.StatusCode != http.StatusForbidden || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "not started in this browser") {
		t.Errorf("mismatched state = %d %q: %s", r.StatusCode, r.Header.Get("Content-Type"), r.body)
	}
	if ck := hasCookie(r, SignInCookie); ck == nil || ck.MaxAge >= 0 {
		t.Errorf("the sign-in cookie was not ended: %+v", ck)
	}
	// The provider's refusal, relayed without the state it was given.
	r = e.do(c, "GET", "/login/orcid/callback?error=access_denied", nil, "Accept", "text/html")
	if r.StatusCode < 400 || r.StatusCode >= 500 || !strings.Contains(string(r.body), "without a valid state") {
		t.Errorf("callback without state = %d: %s", r.StatusCode, r.body)
	}
	if r := e.do(nil, "GET", "/login/evil", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("an undeclared provider = %d", r.StatusCode)
	}
	var n int
	e.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM accounts`).Scan(&n)
	if n != 0 {
		t.Errorf("%d accounts after refusals", n)
	}
}

// A provider's address that has an account: the page asks the
// account's password; a wrong one is refused on the form; the right one
// links and signs in; the account page then unlinks it.
func TestSocialLinkPages(t *testing.T) {
	t.Parallel()
	e, op := socialEnv(t, storetest.SQLite(t, modules()))
	e.member("grace@example.org", "Grace Hopper")
	c := e.client()
	op.person("orcid-0002", "grace", "grace@example.org", true)
	r := e.signInWith(t, c, "/login/orcid")
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login/orcid/link" || hasCookie(r, SessionCookie) != nil {
		t.Fatalf("callback for an existing address = %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	page := e.do(c, "GET", "/login/orcid/link", nil)
	if page.StatusCode != 200 || !strings.Contains(string(page.body), "Link ORCID to your account") {
		t.Fatalf("link page = %d: %s", page.StatusCode, page.body)
	}
	wrong := e.do(c, "POST", "/login/orcid/link", url.Values{"password": {"not the password of grace"}})
	if wrong.StatusCode != http.StatusUnauthorized || !strings.Contains(string(wrong.body), "the password is wrong") || hasCookie(wrong, SessionCookie) != nil {
		t.Errorf("wrong password = %d: %s", wrong.StatusCode, wrong.body)
	}
	right := e.do(c, "POST", "/login/orcid/link", url.Values{"password": {testPassword}})
	if right.StatusCode != http.StatusSeeOther || right.Header.Get("Location") != "/account?done=linked" || hasCookie(right, SessionCookie) == nil {
		t.Fatalf("right password = %d to %q: %s", right.StatusCode, right.Header.Get("Location"), right.body)
	}
	if again := e.do(c, "POST", "/login/orcid/link", url.Values{"password": {testPassword}}); again.StatusCode != http.StatusBadRequest && again.StatusCode != 422 {
		t.Errorf("the spent link request again = %d", again.StatusCode)
	}
	un := e.do(c, "POST", "/account/sign-in-links/orcid/unlink", url.Values{})
	if un.StatusCode != http.StatusSeeOther || un.Header.Get("Location") != "/account?done=unlinked" {
		t.Fatalf("unlink = %d: %s", un.StatusCode, un.body)
	}
	if r := e.do(c, "DELETE", "/api/v1/me/sign-in-links/orcid", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("unlink again = %d", r.StatusCode)
	}
}
