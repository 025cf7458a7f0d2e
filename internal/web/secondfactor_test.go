package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"steward/internal/identity/identitytest"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestStaffWithoutSecondFactorReachNoPersonalData: a staff login without a
// second factor reaches no personal data — every API answers 403
// second_factor_required and every page leads to the enrolment page —
// until an authenticator is enrolled there; a later login owes the code,
// and a session owing it cannot add an authenticator of its own.
func TestStaffWithoutSecondFactorReachNoPersonalData(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOptions{policyFile: "jmir.yaml"})
		if err := e.identity.CreateStaff(context.Background(), "privacy@example.org", "privacy", testPassword); err != nil {
			t.Fatal(err)
		}
		e.member("ann@example.org", "Ann Example")
		c, _ := e.login("privacy@example.org", testPassword)
		for _, path := range []string{"/api/v1/admin/requests", "/api/v1/me", "/api/v1/me/sessions"} {
			r := e.do(c, "GET", path, nil)
			if r.StatusCode != http.StatusForbidden || !strings.Contains(string(r.body), "second_factor_required") {
				t.Errorf("GET %s without a second factor: %d %s", path, r.StatusCode, r.body)
			}
		}
		// Every GET route of the table, walked with the owing session,
		// shows nothing of the member; and every one that refuses a
		// visitor without a session refuses it too, with the second
		// factor it owes (or, for a route that takes no session at all,
		// as it refuses the visitor): the handler is never reached, so a
		// route guarded by mistake like the enrolment page is found
		// whatever data the test happens to hold.
		fill := regexp.MustCompile(`\{[^}]+\}`)
		for _, rt := range e.srv.routes() {
			if rt.method != "GET" || rt.path == "/account/second-factor" {
				continue
			}
			path := strings.TrimSuffix(fill.ReplaceAllString(rt.path, "x"), "{$}")
			r := e.do(c, "GET", path, nil)
			if strings.Contains(string(r.body), "ann@example.org") || strings.Contains(string(r.body), "Ann Example") {
				t.Errorf("GET %s showed the member's data to a session owing its second factor", rt.path)
			}
			anon := e.do(nil, "GET", path, nil)
			toLogin := anon.StatusCode == http.StatusSeeOther && strings.HasPrefix(anon.Header.Get("Location"), "/login")
			if anon.StatusCode != http.StatusUnauthorized && !toLogin {
				continue
			}
			owed := r.StatusCode == http.StatusForbidden && strings.Contains(string(r.body), "second_factor_required") ||
				r.StatusCode == http.StatusSeeOther && strings.HasPrefix(r.Header.Get("Location"), "/account/second-factor") ||
				r.StatusCode == anon.StatusCode && !toLogin
			if !owed {
				t.Errorf("GET %s (%s without a session) answered a session owing its second factor %d", rt.path, anon.Status, r.StatusCode)
			}
		}
		for _, path := range []string{"/admin", "/admin/requests", "/admin/audit", "/account"} {
			r := e.do(c, "GET", path, nil)
			if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/account/second-factor") {
				t.Errorf("GET %s without a second factor: %d to %q", path, r.StatusCode, r.Header.Get("Location"))
			}
		}
		// The page a GET draws makes no key; its button does.
		before := countRows(t, e.db, "second_factors")
		page := e.do(c, "GET", "/account/second-factor?next=/admin/requests", nil)
		if page.StatusCode != http.StatusOK || !strings.Contains(string(page.body), `action="/account/second-factor/begin"`) || countRows(t, e.db, "second_factors") != before {
			t.Fatalf("enrolment page: %d, %d factors before and %d after", page.StatusCode, before, countRows(t, e.db, "second_factors"))
		}
		page = e.do(c, "POST", "/account/second-factor/begin", url.Values{"next": {"/admin/requests"}})
		if page.StatusCode != http.StatusOK || !strings.Contains(string(page.body), "data:image/png;base64,") {
			t.Fatalf("enrolment: %d", page.StatusCode)
		}
		secret := regexp.MustCompile(`Key: <code>([A-Z2-7]+)</code>`).FindStringSubmatch(string(page.body))
		id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(string(page.body))
		if secret == nil || id == nil {
			t.Fatalf("no key on the enrolment page")
		}
		bad := e.do(c, "POST", "/account/second-factor/enrol", url.Values{"id": {id[1]}, "code": {"000000"}, "next": {"/admin/requests"}})
		if bad.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("a wrong code: %d", bad.StatusCode)
		}
		// The wrong code drew a new enrolment: read it again.
		secret = regexp.MustCompile(`Key: <code>([A-Z2-7]+)</code>`).FindStringSubmatch(string(bad.body))
		id = regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(string(bad.body))
		ok := e.do(c, "POST", "/account/second-factor/enrol", url.Values{"id": {id[1]}, "code": {identitytest.Code(t, secret[1], e.clock.Now())}, "next": {"/admin/requests"}})
		if ok.StatusCode != http.StatusOK || strings.Count(string(ok.body), "<li><code>") != 10 {
			t.Fatalf("enrolled: %d, want the ten recovery codes", ok.StatusCode)
		}
		if r := e.do(c, "GET", "/api/v1/admin/requests", nil); r.StatusCode != http.StatusOK {
			t.Errorf("after enrolling: %d %s", r.StatusCode, r.body)
		}
		// A new login owes the code; it cannot enrol an authenticator of
		// its own instead.
		c2, _ := e.login("privacy@example.org", testPassword)
		if r := e.do(c2, "POST", "/api/v1/me/second-factors/totp", nil); r.StatusCode != http.StatusForbidden {
			t.Errorf("a session owing its factor added one: %d %s", r.StatusCode, r.body)
		}
		if r := e.do(c2, "GET", "/api/v1/admin/requests", nil); r.StatusCode != http.StatusForbidden {
			t.Errorf("a new session without its code: %d", r.StatusCode)
		}
		e.clock.Advance(30 * time.Second)
		r := e.do(c2, "POST", "/account/second-factor/verify", url.Values{"code": {identitytest.Code(t, secret[1], e.clock.Now())}, "next": {"/admin/requests"}})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/admin/requests" {
			t.Fatalf("verify: %d to %q", r.StatusCode, r.Header.Get("Location"))
		}
		if r := e.do(c2, "GET", "/admin/requests", nil); r.StatusCode != http.StatusOK {
			t.Errorf("after the code: %d", r.StatusCode)
		}
		// Logging out works while the factor is owed.
		c3, _ := e.login("privacy@example.org", testPassword)
		if r := e.do(c3, "DELETE", "/api/v1/sessions/current", nil); r.StatusCode != http.StatusNoContent {
			t.Errorf("logout while owing: %d", r.StatusCode)
		}
	})
}
