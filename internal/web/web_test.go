package web

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"steward/internal/identity"
	"steward/internal/mail"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{})
	for _, path := range []string{"/healthz", "/readyz"} {
		r := e.do(nil, "GET", path, nil)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s = %d %s", path, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	e.db.Close()
	assertProblem(t, e.do(nil, "GET", "/readyz", nil), 503, "unavailable")
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	}
	check := func(t *testing.T, r resp, hsts bool) {
		t.Helper()
		for k, v := range want {
			if got := r.Header.Get(k); got != v {
				t.Errorf("%s %s: %s = %q, want %q", r.Request.Method, r.Request.URL.Path, k, got, v)
			}
		}
		csp := r.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: CSP %q lacks %q", r.Request.URL.Path, csp, d)
			}
		}
		// Pages and API answers may carry tokens or personal data: nothing
		// may cache them (handlers rely on this and do not set it again).
		// The public notice and policy are revalidated instead (no-cache): they hold
		// nothing personal.
		public := strings.HasPrefix(r.Request.URL.Path, "/static/") || strings.HasPrefix(r.Request.URL.Path, "/privacy") || r.Request.URL.Path == "/api/v1/policy"
		if !public && r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control = %q, want no-store", r.Request.URL.Path, r.Header.Get("Cache-Control"))
		}
		if got := r.Header.Get("Strict-Transport-Security") != ""; got != hsts {
			t.Errorf("%s: HSTS present = %v, want %v", r.Request.URL.Path, got, hsts)
		}
	}
	t.Run("plain", func(t *testing.T) {
		e := sqliteEnv(t, envOptions{})
		for _, path := range []string{"/privacy", "/api/v1/policy", "/nope", "/static/style.css"} {
			check(t, e.do(nil, "GET", path, nil), false)
		}
		check(t, e.do(nil, "POST", "/api/v1/sessions", `{`), false)
		// The tracker's beacon gets no document: nosniff and no-store,
		// none of the headers that only govern one.
		r := e.do(nil, "POST", "/api/v1/collect", `{"site":"demo","type":"pageview","url":"http://127.0.0.1:8080/a"}`,
			"Content-Type", "text/plain;charset=UTF-8", "Origin", "http://127.0.0.1:8080")
		if r.StatusCode >= 300 || r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("collect: %d, nosniff %q, Cache-Control %q", r.StatusCode, r.Header.Get("X-Content-Type-Options"), r.Header.Get("Cache-Control"))
		}
		if r.Header.Get("Content-Security-Policy") != "" || r.Header.Get("X-Frame-Options") != "" {
			t.Errorf("collect carries document headers: %v", r.Header)
		}
		// GET on the same path is a page's 405, with them all.
		check(t, e.do(nil, "GET", "/api/v1/collect", nil), false)
	})
	t.Run("tls", func(t *testing.T) {
		e := sqliteEnv(t, envOptions{tls: true, config: Config{TLS: true}})
		check(t, e.do(nil, "GET", "/privacy", nil), true)
	})
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{})
	assertProblem(t, e.do(nil, "GET", "/api/v1/nothing-here", nil), 404, "not_found")
	r := e.do(nil, "DELETE", "/api/v1/policy", nil)
	assertProblem(t, r, 405, "unsupported")
	if !strings.Contains(r.Header.Get("Allow"), "GET") {
		t.Errorf("Allow = %q, want GET", r.Header.Get("Allow"))
	}
	page := e.do(nil, "GET", "/no/such/page", nil, "Accept", "text/html")
	if page.StatusCode != 404 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Errorf("page 404 = %d %s", page.StatusCode, page.Header.Get("Content-Type"))
	}
}

// TestBadInput sends the bad-input corpus: every answer is a
// clear 4xx problem, never a 5xx, and nothing is half-written.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{})
	member, _ := e.member("ann@example.org", "Ann Example")
	signUp := func(extra string) string {
		return `{"name":"Bob","email":"bob@example.org","password":"` + testPassword + `","age_confirmed":true` + extra + `}`
	}
	tenMB := `{"email":"ann@example.org","password":"` + strings.Repeat("p", 10<<20) + `"}`
	tests := []struct {
		name         string
		client       bool // send as the signed-in member
		method, path string
		ctype        string
		body         string
		status       int
		field        string
	}{
		{"malformed JSON", false, "POST", "/api/v1/accounts", "application/json", `{"name":"Bob",`, 400, ""},
		{"not an object", false, "POST", "/api/v1/sessions", "application/json", `"ann@example.org"`, 400, ""},
		{"wrong type", false, "POST", "/api/v1/accounts", "application/json", `{"name":5,"email":"bob@example.org","password":"x"}`, 400, "name"},
		{"wrong type login", false, "POST", "/api/v1/sessions", "application/json", `{"email":["a"],"password":"x"}`, 400, "email"},
		{"wrong type flag", false, "POST", "/api/v1/accounts", "application/json", signUp(`,"age_confirmed":"yes"`), 400, "age_confirmed"},
		{"unknown field login", false, "POST", "/api/v1/sessions", "application/json", `{"email":"a@b.org","password":"x","remember":true}`, 400, "remember"},
		{"undeclared sign-up field", false, "POST", "/api/v1/accounts", "application/json", signUp(`,"is_admin":"yes"`), 422, "is_admin"},
		{"invalid UTF-8", false, "POST", "/api/v1/accounts", "application/json", "{\"name\":\"B\xffob\",\"email\":\"bob@example.org\"}", 400, ""},
		{"trailing data", false, "POST", "/api/v1/sessions", "application/json", `{"email":"a@b.org","password":"x"} {}`, 400, ""},
		{"wrong media type", false, "POST", "/api/v1/sessions", "text/plain", `{"email":"a@b.org","password":"x"}`, 415, ""},
		{"oversized body", false, "POST", "/api/v1/accounts", "application/json", `{"name":"` + strings.Repeat("a", 2<<20) + `"}`, 413, ""},
		{"10 MB password", false, "POST", "/api/v1/sessions", "application/json", tenMB, 413, ""},
		{"10 MB password sign-up form", false, "POST", "/signup", "application/x-www-form-urlencoded", "email=c%40example.org&password=" + strings.Repeat("p", 10<<20), 413, ""},
		{"long password", false, "POST", "/api/v1/accounts", "application/json", `{"name":"Bob","email":"bob@example.org","password":"` + strings.Repeat("p", 300) + `"}`, 413, "password"},
		{"CR/LF in name", false, "POST", "/api/v1/accounts", "application/json", `{"name":"Bob\r\nBcc: all@example.org","email":"bob@example.org","password":"` + testPassword + `","age_confirmed":true}`, 422, "name"},
		{"CR/LF in email", false, "POST", "/api/v1/accounts", "application/json", `{"name":"Bob","email":"bob@example.org\r\nBcc: all@example.org","password":"` + testPassword + `","age_confirmed":true}`, 422, "email"},
		{"CR/LF in email login", false, "POST", "/api/v1/sessions", "application/json", `{"email":"ann@example.org\r\n","password":"x"}`, 0, ""},
		{"NUL in name", false, "POST", "/api/v1/accounts", "application/json", `{"name":"Bob\u0000","email":"bob@example.org","password":"` + testPassword + `","age_confirmed":true}`, 422, "name"},
		{"CR/LF in profile", true, "PATCH", "/api/v1/me", "application/json", `{"name":"Ann\nBcc: x@example.org"}`, 422, "name"},
		{"wrong type profile", true, "PATCH", "/api/v1/me", "application/json", `{"name":{"first":"Ann"}}`, 400, "name"},
		{"role escalation", true, "PATCH", "/api/v1/me", "application/json", `{"role":"admin"}`, 422, "role"},
		{"unknown field password change", true, "POST", "/api/v1/me/password", "application/json", `{"current_password":"x","new_password":"y","force":true}`, 400, "force"},
		{"missing token", false, "POST", "/api/v1/email-verifications/confirm", "application/json", `{}`, 422, "token"},
		{"garbage token", false, "POST", "/api/v1/password-resets/confirm", "application/json", `{"token":"'; DROP TABLE accounts;--","password":"` + testPassword + `"}`, 0, ""},
		{"SQL in email", false, "POST", "/api/v1/accounts", "application/json", `{"name":"Bob","email":"x' OR '1'='1@example.org","password":"` + testPassword + `","age_confirmed":true}`, 422, "email"},
		{"SQL in name", false, "POST", "/api/v1/accounts", "application/json", `{"name":"Robert'); DROP TABLE accounts;--","email":"robert@example.org","password":"` + testPassword + `","age_confirmed":true}`, 202, ""},
		{"SQL in login", false, "POST", "/api/v1/sessions", "application/json", `{"email":"' OR 1=1 --","password":"' OR ''='"}`, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.client()
			if tt.client {
				c = member
			}
			r := e.do(c, tt.method, tt.path, []byte(tt.body), "Content-Type", tt.ctype)
			if r.StatusCode >= 500 {
				t.Fatalf("status %d: %s", r.StatusCode, r.body)
			}
			if tt.status == http.StatusAccepted {
				// A name may hold quotes and dashes: it is accepted,
				// and stored as text (checked below).
				if r.StatusCode != tt.status {
					t.Fatalf("status = %d, want %d: %s", r.StatusCode, tt.status, r.body)
				}
				return
			}
			if tt.status == 0 {
				// Input that may be legal (or fail as unauthorised): it
				// must not break anything and must answer cleanly.
				if r.StatusCode >= 400 {
					assertProblem(t, r, r.StatusCode, "")
				}
				return
			}
			p := assertProblem(t, r, tt.status, "")
			if p.Field != tt.field {
				t.Errorf("field = %q, want %q (%s)", p.Field, tt.field, p.Detail)
			}
		})
	}
	// Nothing half-written: Bob never got an account, Ann is intact and
	// can still log in, the tables are all there.
	names := map[string]int{}
	rows, err := e.db.QueryContext(context.Background(), `SELECT subject_id FROM accounts`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		pr, err := e.identity.Profile(context.Background(), identity.Principal{Account: identity.Account{SubjectID: id}})
		if err != nil {
			t.Fatalf("profile of %s: %v", id, err)
		}
		names[pr.Fields[identity.FieldName]]++
	}
	if n := names["Robert'); DROP TABLE accounts;--"]; n != 1 {
		t.Fatalf("the account named with SQL metacharacters: %d accounts (names %v)", n, names)
	}
	if n := names["Bob"]; n != 0 {
		t.Fatalf("refused sign-ups left %d accounts named Bob", n)
	}
	e.login("ann@example.org", testPassword)
	me := e.do(member, "GET", "/api/v1/me", nil)
	var prof profileOut
	me.json(t, &prof)
	if prof.Role != "" || prof.Fields["name"] != "Ann Example" {
		t.Errorf("profile after bad input = %+v", prof)
	}
	if strings.Contains(e.logs.String(), "handler panic") {
		t.Errorf("a handler panicked:\n%s", e.logs.String())
	}
}

// TestNoHandlerFailsOnJunk walks every route with the bad-input corpus,
// anonymous and signed in: nothing answers 5xx (a panic would), and API
// errors are always problem+json.
func TestNoHandlerFailsOnJunk(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{})
	member, _ := e.member("ann@example.org", "Ann Example")
	bodies := []struct{ ctype, body string }{
		{"application/json", `{`},
		{"application/json", `{"email":5,"password":[],"token":{},"name":null}`},
		{"application/json", "{\"name\":\"\xff\"}"},
		{"application/json", `{"email":"a@b.org\r\nBcc: x@y.org","name":"x' OR 1=1 --","token":"../../etc/passwd","password":"` + strings.Repeat("é", 400) + `"}`},
		{"application/json", `{"unexpected":true}`},
		{"application/x-www-form-urlencoded", "email=%0d%0a&password=%ff%fe&token=%00&name=a%27--&next=//evil.example&age_confirmed=yes"},
		{"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--x--\r\n"},
		{"", ""},
	}
	params := strings.NewReplacer("{id}", url.PathEscape("x'; DROP TABLE sessions;--"), "{n}", "99999999999999999999")
	sent := 0
	for _, signedIn := range []bool{false, true} {
		for _, rt := range e.srv.routeTab {
			if signedIn && (rt.pattern() == "DELETE /api/v1/sessions/current" || rt.pattern() == "POST /logout") {
				continue // would end the session the rest of the walk uses
			}
			path := params.Replace(rt.path)
			if strings.HasSuffix(path, "/") {
				path += "x"
			}
			c := e.client()
			if signedIn {
				c = member
			}
			if rt.method == "GET" {
				for _, q := range []string{"", "?token=%ff%00&before=-1&verify=1&next=//evil.example&sent=1&done=%0a"} {
					sent++
					r := e.do(c, "GET", path+q, nil)
					if r.StatusCode >= 500 {
						t.Errorf("GET %s%s (signed in %v) = %d", path, q, signedIn, r.StatusCode)
					}
				}
				continue
			}
			for _, b := range bodies {
				sent++
				r := e.do(c, rt.method, path, []byte(b.body), "Content-Type", b.ctype)
				if r.StatusCode >= 500 {
					t.Errorf("%s %s %q (signed in %v) = %d: %s", rt.method, path, b.body, signedIn, r.StatusCode, r.body)
				}
				if strings.HasPrefix(path, "/api/") && r.StatusCode >= 400 && r.Header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("%s %s = %d with Content-Type %q", rt.method, path, r.StatusCode, r.Header.Get("Content-Type"))
				}
			}
		}
	}
	if want := 2 * len(e.srv.routeTab); sent < want {
		t.Errorf("sent %d requests, want at least %d", sent, want)
	}
	// The signed-in walk really was signed in to the end.
	if r := e.do(member, "GET", "/api/v1/me", nil); r.StatusCode != 200 {
		t.Errorf("member signed out during the walk: %d", r.StatusCode)
	}
	if strings.Contains(e.logs.String(), "handler panic") {
		t.Errorf("a handler panicked:\n%s", e.logs.String())
	}
}

// TestPromiseM3_NoCookieButFunctional walks every registered route,
// anonymous and signed in (as a member and as an admin), with GET and with
// a POST where the route takes one, and checks that every cookie set is
// one the policy declares as functional (Mixi: no tracking cookies).
//
// Every capability is on (the env builds every service; the demo site is
// served), and the walk checks that the routes which could most easily set
// a tracking cookie really did their work: the tracker is served, the
// collect endpoint records a well-formed event and answers its preflight,
// the trends and the analytics console answer. A cookie they set only on
// success, or a route gone to 404, fails the test.
func TestPromiseM3_NoCookieButFunctional(t *testing.T) {
	t.Parallel()
	const siteOrigin = "http://127.0.0.1:8080" // the Mixi demo site's
	e := sqliteEnv(t, envOptions{policyFile: "mixi.yaml", config: Config{DemoDir: fstest.MapFS{"style.css": {Data: []byte("body{}")}}}})
	allowed := functionalCookies(e.policy)
	seen := map[string]bool{}
	record := func(r resp) {
		for _, c := range r.Cookies() {
			seen[c.Name] = true
			if !allowed[c.Name] {
				t.Errorf("%s %s set cookie %q, which the policy does not declare as functional", r.Request.Method, r.Request.URL.Path, c.Name)
			}
		}
	}
	member, _ := e.member("ann@example.org", "Ann Example")
	admin, _ := e.staff("admin@example.org", "admin")
	sessions := e.do(member, "GET", "/api/v1/me/sessions", nil)
	var list struct{ Sessions []sessionJSON }
	sessions.json(t, &list)
	msgs, err := e.outbox.List(context.Background(), mail.AsRecipient, 1)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("outbox: %v %d", err, len(msgs))
	}
	ids := strings.NewReplacer("{n}", "1", "{id}", list.Sessions[0].ID, "{report}", "pages")
	adminIDs := strings.NewReplacer("{n}", "1", "{id}", msgs[0].ID, "{report}", "pages")

	// Flows that set cookies on purpose.
	record(e.do(nil, "POST", "/login", url.Values{"email": {"ann@example.org"}, "password": {testPassword}}))
	record(e.do(nil, "POST", "/api/v1/sessions", map[string]string{"email": "ann@example.org", "password": testPassword}))

	clients := []struct {
		name string
		c    func() *http.Client
		ids  *strings.Replacer
	}{
		{"anonymous", func() *http.Client { return e.client() }, ids},
		{"member", func() *http.Client { c, _ := e.login("ann@example.org", testPassword); return c }, ids},
		{"admin", func() *http.Client { c, _ := e.staffLogin("admin@example.org"); return c }, adminIDs},
	}
	_ = admin
	// statuses holds what each route answered each client, by client name
	// and route pattern.
	statuses := map[string][]int{}
	for _, cl := range clients {
		c := cl.c()
		for _, rt := range e.srv.routeTab {
			path := cl.ids.Replace(rt.path)
			if strings.HasSuffix(path, "/") {
				path += "style.css"
			}
			send := func(method string, body any, hdr ...string) {
				r := e.do(c, method, path, body, hdr...)
				record(r)
				statuses[cl.name+" "+rt.pattern()] = append(statuses[cl.name+" "+rt.pattern()], r.StatusCode)
			}
			switch rt.method {
			case "GET":
				send("GET", nil)
			case "POST", "PATCH", "PUT":
				send(rt.method, url.Values{})
				send(rt.method, []byte(`{}`))
			case "DELETE":
				send(rt.method, nil)
			case "OPTIONS":
				send(rt.method, nil, "Origin", siteOrigin, "Access-Control-Request-Method", "POST")
			default:
				t.Errorf("the walk does not send %s", rt.pattern())
			}
			if rt.pattern() == "POST /api/v1/collect" {
				// A page view as the tracker sends it.
				send("POST", `{"site":"demo","type":"pageview","url":"`+siteOrigin+`/walk"}`,
					"Content-Type", "text/plain;charset=UTF-8", "Origin", siteOrigin, "User-Agent", walkBrowser)
			}
			if rt.method != "GET" {
				c = cl.c() // the route may have ended the session
			}
		}
	}
	if !seen[SessionCookie] {
		t.Errorf("the walk never saw the session cookie; it did not exercise login")
	}
	for _, cl := range clients {
		for _, rt := range e.srv.routeTab {
			if len(statuses[cl.name+" "+rt.pattern()]) == 0 {
				t.Errorf("the %s walk never reached %s", cl.name, rt.pattern())
			}
		}
		// The last answer of each: for collect, the well-formed page view.
		for _, w := range []struct {
			pattern string
			want    []int
			who     string // "" for every client
		}{
			{"GET /tracker.js", []int{200}, ""},
			{"POST /api/v1/collect", []int{202, 204}, ""},
			{"OPTIONS /api/v1/collect", []int{204}, ""},
			{"GET /api/v1/trends", []int{200}, ""},
			{"GET /demo/", []int{200}, ""},
			{"GET /admin/analytics", []int{200}, "admin"},
			{"GET /api/v1/admin/analytics/{report}", []int{200}, "admin"},
		} {
			if w.who != "" && w.who != cl.name {
				continue
			}
			got := statuses[cl.name+" "+w.pattern]
			if len(got) == 0 || !slices.Contains(w.want, got[len(got)-1]) {
				t.Errorf("%s (%s) answered %v, want the last answer in %v: the walk did not exercise it", w.pattern, cl.name, got, w.want)
			}
		}
	}
	if err := e.svc.Activity.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var events int
	if err := e.db.QueryRowContext(context.Background(), `SELECT (SELECT COUNT(*) FROM activity_events) + (SELECT COUNT(*) FROM activity_member_events)`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events == 0 {
		t.Error("the walk recorded no page view: collect did not do its work")
	}
}

// walkBrowser is a browser's User-Agent (a bot's events are not recorded).
const walkBrowser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

func TestCrossOriginProtection(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{config: Config{BaseURL: "https://accounts.example.org"}})
	e.member("ann@example.org", "Ann Example")
	second, _ := e.login("ann@example.org", testPassword)
	countSessions := func() int {
		var n int
		if err := e.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM sessions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := countSessions()
	// A page on another site posting a form with Ann's cookie.
	r := e.do(second, "POST", "/account/sessions/revoke-others", url.Values{},
		"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	p := assertProblem(t, r, 403, "forbidden")
	if !strings.Contains(p.Detail, "cross-origin") {
		t.Errorf("detail = %q", p.Detail)
	}
	if got := countSessions(); got != before {
		t.Errorf("sessions after refused cross-origin post = %d, want %d", got, before)
	}
	// Without Sec-Fetch-Site, the Origin header alone decides.
	assertProblem(t, e.do(second, "POST", "/api/v1/me/sessions/revoke-others", nil, "Origin", "https://evil.example"), 403, "forbidden")
	// A browser that sends only a Referer still says where it came from.
	assertProblem(t, e.do(second, "POST", "/account/sessions/revoke-others", url.Values{}, "Referer", "https://evil.example/page"), 403, "forbidden")
	if got := countSessions(); got != before {
		t.Errorf("sessions after a refused Referer-only post = %d, want %d", got, before)
	}
	if r := e.do(second, "POST", "/api/v1/me/sessions/revoke-others", nil, "Referer", "https://accounts.example.org/account"); r.StatusCode != 200 {
		t.Errorf("post with our own Referer = %d, want 200", r.StatusCode)
	}
	// Login CSRF is refused too.
	assertProblem(t, e.do(nil, "POST", "/login", url.Values{"email": {"ann@example.org"}, "password": {testPassword}},
		"Sec-Fetch-Site", "cross-site"), 403, "forbidden")
	// The same form from the site itself works, and so does the public
	// origin named by the base URL (a proxy may rewrite Host).
	if r := e.do(second, "POST", "/account/sessions/revoke-others", url.Values{}, "Sec-Fetch-Site", "same-origin"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin post = %d, want 303", r.StatusCode)
	}
	if r := e.do(second, "GET", "/api/v1/me", nil, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); r.StatusCode != 200 {
		t.Errorf("cross-origin GET = %d, want 200 (safe methods pass)", r.StatusCode)
	}
	if r := e.do(second, "POST", "/api/v1/me/sessions/revoke-others", nil, "Origin", "https://accounts.example.org", "Sec-Fetch-Site", "cross-site"); r.StatusCode != 200 {
		t.Errorf("post from the base URL's origin = %d, want 200", r.StatusCode)
	}
	// The endpoints other origins must reach are exempt.
	for _, path := range []string{"/api/v1/collect", "/newsletters/unsubscribe"} {
		r := e.do(nil, "POST", path, []byte(`{}`), "Origin", "https://blog.example", "Sec-Fetch-Site", "cross-site")
		if strings.Contains(string(r.body), "cross-origin request refused") {
			t.Errorf("POST %s from another origin was refused by cross-origin protection", path)
		}
	}
}

func TestTrustedProxy(t *testing.T) {
	t.Parallel()
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		secure  bool
		network string
	}{
		{"untrusted peer: headers ignored", nil, false, "127.0.0.0/24"},
		{"trusted peer: client and scheme believed", loopback, true, "198.51.100.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sqliteEnv(t, envOptions{config: Config{TrustedProxies: tt.trusted}})
			e.member("ann@example.org", "Ann Example")
			r := e.do(nil, "POST", "/api/v1/sessions", map[string]string{"email": "ann@example.org", "password": testPassword},
				"X-Forwarded-For", "198.51.100.23", "X-Forwarded-Proto", "https")
			if r.StatusCode != 201 {
				t.Fatalf("login = %d %s", r.StatusCode, r.body)
			}
			var cookie *http.Cookie
			for _, c := range r.Cookies() {
				if c.Name == SessionCookie {
					cookie = c
				}
			}
			if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" {
				t.Fatalf("session cookie = %+v", cookie)
			}
			if cookie.Secure != tt.secure {
				t.Errorf("cookie Secure = %v, want %v", cookie.Secure, tt.secure)
			}
			if got := r.Header.Get("Strict-Transport-Security") != ""; got != tt.secure {
				t.Errorf("HSTS = %v, want %v", got, tt.secure)
			}
			logs := e.logs.String()
			if !strings.Contains(logs, "network="+tt.network) {
				t.Errorf("access log lacks network=%s:\n%s", tt.network, logs)
			}
			if strings.Contains(logs, "198.51.100.23") || strings.Contains(logs, "127.0.0.1") {
				t.Errorf("a full client address reached the log:\n%s", logs)
			}
		})
	}
}

// TestPromiseJ17_PaymentsRefusePlainHTTP: payment endpoints refuse plain
// HTTP unless in development mode, over TLS, or behind a trusted proxy that
// says the client used HTTPS.
func TestPromiseJ17_PaymentsRefusePlainHTTP(t *testing.T) {
	t.Parallel()
	paid := route{"POST", "/api/v1/payments/charges", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})}
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name   string
		o      envOptions
		hdr    []string
		status int
	}{
		{"plain HTTP refused", envOptions{policyFile: "jmir.yaml"}, nil, 403},
		{"client claims HTTPS, untrusted", envOptions{policyFile: "jmir.yaml"}, []string{"X-Forwarded-Proto", "https"}, 403},
		{"trusted proxy says http", envOptions{policyFile: "jmir.yaml", config: Config{TrustedProxies: loopback}},
			[]string{"X-Forwarded-Proto", "http"}, 403},
		{"development mode", envOptions{policyFile: "jmir.yaml", config: Config{Dev: true}}, nil, 201},
		{"TLS", envOptions{policyFile: "jmir.yaml", tls: true, config: Config{TLS: true}}, nil, 201},
		{"trusted proxy says https", envOptions{policyFile: "jmir.yaml", config: Config{TrustedProxies: loopback}},
			[]string{"X-Forwarded-Proto", "https"}, 201},
		{"trusted proxy Forwarded https", envOptions{policyFile: "jmir.yaml", config: Config{TrustedProxies: loopback}},
			[]string{"Forwarded", "for=198.51.100.1;proto=https"}, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.extra = []route{paid}
			e := sqliteEnv(t, tt.o)
			r := e.do(nil, "POST", "/api/v1/payments/charges", `{"card_token":"tok_1"}`, tt.hdr...)
			if tt.status == 403 {
				assertProblem(t, r, 403, "insecure_transport")
				// Unrouted payment paths are refused the same way: the
				// rule covers the prefix, not a list of routes.
				assertProblem(t, e.do(nil, "GET", "/api/v1/payments/anything", nil, tt.hdr...), 403, "insecure_transport")
				return
			}
			if r.StatusCode != tt.status {
				t.Errorf("status = %d, want %d: %s", r.StatusCode, tt.status, r.body)
			}
		})
	}
}

// TestPromiseM16_VersionsServed: every published version of the notice is
// served at /privacy/versions/N with its date, the current one at
// /privacy, on both engines.
func TestPromiseM16_VersionsServed(t *testing.T) {
	t.Parallel()
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		v1 := loadExample(t, "mixi.yaml")
		v2 := regexp.MustCompile(`(?m)^version:.*$`).ReplaceAll(v1, []byte(`version: "2027-03-01"`))
		if string(v1) == string(v2) {
			t.Fatal("could not derive a second version of mixi.yaml")
		}
		e := newEnv(t, db, envOptions{policyData: v2, publish: [][]byte{v1}})
		if e.version.Number != 2 {
			t.Fatalf("current version = %d, want 2", e.version.Number)
		}
		cur := e.do(nil, "GET", "/privacy", nil)
		if cur.StatusCode != 200 || !strings.Contains(string(cur.body), "Version 2, effective 1 March 2027") {
			t.Errorf("GET /privacy = %d, want version 2 effective 1 March 2027:\n%s", cur.StatusCode, cur.body)
		}
		old := e.do(nil, "GET", "/privacy/versions/1", nil)
		if old.StatusCode != 200 || !strings.Contains(string(old.body), "Version 1, effective") || !strings.Contains(string(old.body), "an earlier version") {
			t.Errorf("GET /privacy/versions/1 = %d:\n%s", old.StatusCode, old.body)
		}
		if !strings.Contains(string(old.body), "<article") {
			t.Errorf("version 1 page has no rendered notice")
		}
		same := e.do(nil, "GET", "/privacy/versions/2", nil)
		if same.StatusCode != 200 || strings.Contains(string(same.body), "an earlier version") {
			t.Errorf("GET /privacy/versions/2 = %d", same.StatusCode)
		}
		list := e.do(nil, "GET", "/privacy/versions", nil)
		for _, want := range []string{`href="/privacy/versions/1"`, `href="/privacy/versions/2"`} {
			if !strings.Contains(string(list.body), want) {
				t.Errorf("version list lacks %s", want)
			}
		}
		for _, missing := range []string{"3", "0", "-1", "abc", "99999999999999999999"} {
			r := e.do(nil, "GET", "/privacy/versions/"+missing, nil, "Accept", "text/html")
			if r.StatusCode != 404 {
				t.Errorf("GET /privacy/versions/%s = %d, want 404", missing, r.StatusCode)
			}
		}
		var doc policyDocument
		pr := e.do(nil, "GET", "/api/v1/policy", nil)
		pr.json(t, &struct {
			Version *int    `json:"version"`
			Hash    *string `json:"hash"`
		}{&doc.Version, &doc.Hash})
		if doc.Version != 2 || doc.Hash != e.policy.Hash() {
			t.Errorf("GET /api/v1/policy = version %d hash %s, want 2 %s", doc.Version, doc.Hash, e.policy.Hash())
		}
	})
}

func TestMetricsByRoutePattern(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{})
	e.do(nil, "GET", "/privacy/versions/1", nil)
	e.do(nil, "GET", "/no-such-page-abc123", nil)
	m := e.do(nil, "GET", "/metrics", nil)
	body := string(m.body)
	for _, want := range []string{
		`steward_http_requests_total{code="200",method="GET",route="GET /privacy/versions/{n}"} 1`,
		`route="unmatched"`,
		`steward_http_request_duration_seconds_bucket{method="GET",route="GET /privacy/versions/{n}"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "no-such-page-abc123") || strings.Contains(body, "/privacy/versions/1\"") {
		t.Errorf("a raw path became a metric label")
	}
}

func TestAccessLogKeepsSecretsOut(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{})
	e.do(nil, "GET", "/verify-email?token=SECRET-TOKEN-VALUE", nil)
	e.do(nil, "POST", "/api/v1/sessions", map[string]string{"email": "someone@example.org", "password": "hunter2-hunter2-hunter2"})
	logs := e.logs.String()
	for _, secret := range []string{"SECRET-TOKEN-VALUE", "someone@example.org", "hunter2", "127.0.0.1"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, `route="GET /verify-email"`) || !strings.Contains(logs, "request_id=") {
		t.Errorf("access log lacks route or request id:\n%s", logs)
	}
}

func TestPanicBecomesProblem(t *testing.T) {
	t.Parallel()
	boom := route{"GET", "/api/v1/boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(fmt.Sprintf("secret detail %d", 42))
	})}
	e := sqliteEnv(t, envOptions{extra: []route{boom}})
	r := e.do(nil, "GET", "/api/v1/boom", nil)
	p := assertProblem(t, r, 500, "internal")
	if strings.Contains(p.Detail, "secret detail") {
		t.Errorf("panic value leaked to the client: %q", p.Detail)
	}
	if !strings.Contains(e.logs.String(), "secret detail 42") || !strings.Contains(e.logs.String(), p.Instance) {
		t.Errorf("panic not logged with its request id")
	}
}

// TestPagesHaveDescriptionAndIcon keeps what a page audit (Lighthouse)
// found missing fixed: every page carries a meta description, and its
// icon is served, so no browser logs a 404 for a favicon.
func TestPagesHaveDescriptionAndIcon(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{})
	member, _ := e.member("ann@example.org", "Ann Example")
	descRE := regexp.MustCompile(`<meta name="description" content="([^"]+)">`)
	iconRE := regexp.MustCompile(`<link rel="icon" href="([^"]+)"`)
	pages := []struct {
		path   string
		client *http.Client
	}{
		{"/", nil}, {"/privacy", nil}, {"/privacy/versions", nil}, {"/signup", nil}, {"/login", nil},
		{"/reset-password", nil}, {"/privacy/request", nil}, {"/no/such/page", nil},
		{"/account", member}, {"/account/privacy", member}, {"/account/consents", member},
	}
	for _, p := range pages {
		r := e.do(p.client, "GET", p.path, nil, "Accept", "text/html")
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: Content-Type %q, want a page", p.path, r.Header.Get("Content-Type"))
			continue
		}
		if m := descRE.FindSubmatch(r.body); m == nil || strings.TrimSpace(string(m[1])) == "" {
			t.Errorf("GET %s: no meta description", p.path)
		}
		m := iconRE.FindSubmatch(r.body)
		if m == nil {
			t.Errorf("GET %s: no icon link", p.path)
			continue
		}
		if icon := e.do(nil, "GET", string(m[1]), nil); icon.StatusCode != 200 {
			t.Errorf("GET %s: its icon %s answers %d", p.path, m[1], icon.StatusCode)
		}
	}
}

// TestMetricsOnlyForTheOperator: /metrics answers loopback and trusted
// proxies, and anyone else only with the metrics token.
func TestMetricsOnlyForTheOperator(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{config: Config{MetricsToken: "scrape-me", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	if r := e.do(nil, "GET", "/metrics", nil); r.StatusCode != 200 {
		t.Errorf("GET /metrics from loopback = %d, want 200", r.StatusCode)
	}
	// Through the trusted proxy, for a client on the internet.
	outside := "X-Forwarded-For"
	assertProblem(t, e.do(nil, "GET", "/metrics", nil, outside, "203.0.113.9"), 403, "forbidden")
	assertProblem(t, e.do(nil, "GET", "/metrics", nil, outside, "203.0.113.9", "Authorization", "Bearer wrong"), 403, "forbidden")
	if r := e.do(nil, "GET", "/metrics", nil, outside, "203.0.113.9", "Authorization", "Bearer scrape-me"); r.StatusCode != 200 {
		t.Errorf("GET /metrics with the token = %d, want 200", r.StatusCode)
	}
	// A scraper inside the trusted network needs no token.
	if r := e.do(nil, "GET", "/metrics", nil, outside, "127.0.0.5"); r.StatusCode != 200 {
		t.Errorf("GET /metrics from the trusted network = %d, want 200", r.StatusCode)
	}
}
