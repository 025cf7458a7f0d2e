package rights_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"steward/internal/door"
	"steward/internal/mail/mailtest"
)

var codeRE = regexp.MustCompile(`enter this code: (\d{8})`)

// mailedCode returns the newest code mailed to addr.
func (w *web) mailedCode(addr string) string {
	w.t.Helper()
	w.run()
	var code string
	deadline := time.Now().Add(5 * time.Second)
	for code == "" && time.Now().Before(deadline) {
		for _, m := range w.smtp.Messages() {
			if mailtest.SentTo(addr)(m) {
				if match := codeRE.FindStringSubmatch(m.Text); match != nil {
					code = match[1]
				}
			}
		}
		if code == "" {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if code == "" {
		w.t.Fatalf("no code mailed to %s", addr)
	}
	return code
}

func (w *web) auditCount(action string) int {
	w.t.Helper()
	return w.env.count(`SELECT COUNT(*) FROM audit_log WHERE action = $1`, action)
}

// TestBadInputRefusedAndAudited: another member's request, a replayed or
// expired code, a code guessed past the limit, an erasure with a wrong
// password, a download from another session, hostile upload names — each
// refused with problem+json (or made safe) and audited.
func TestBadInputRefusedAndAudited(t *testing.T) {
	eachWeb(t, "mixi.yaml", func(t *testing.T, w *web) {
		w.a.Rights.AddFiles(files{`..\..\windows\win.ini`: "x", "/etc/shadow": "y", "CON.txt": "z", "a\x00b\nc.txt": "w"})
		ann, annID := w.member("ann@example.org", "Ann Example")
		bob, _ := w.member("bob@example.org", "Bob Other")

		// Another member's request: the same 404 as none, audited.
		mine := ann.file(map[string]any{"type": "restriction"})
		before := w.auditCount("rights.request_denied")
		wantProblem(t, bob.do("GET", "/api/v1/me/requests/"+mine.ID, nil), 404, "not_found", "Bob reads Ann's request")
		wantProblem(t, bob.do("GET", "/api/v1/me/requests/"+mine.ID+"/download", nil), 404, "not_found", "Bob downloads Ann's request")
		if w.auditCount("rights.request_denied") < before+2 {
			t.Errorf("reading another member's request was not audited")
		}

		// An erasure with a wrong password.
		before = w.auditCount("rights.request_denied")
		r := ann.do("POST", "/api/v1/me/requests", map[string]any{"type": "erasure", "password": "not the password at all"})
		wantProblem(t, r, 403, "reauthentication_required", "erasure with a wrong password")
		if w.auditCount("rights.request_denied") != before+1 || w.auditCount("session.reauth_failed") == 0 {
			t.Errorf("the wrong password was not audited")
		}
		if n := w.env.count(`SELECT COUNT(*) FROM rights_requests WHERE subject_id = $1 AND type = 'erasure'`, annID); n != 0 {
			t.Errorf("an erasure was filed with a wrong password")
		}

		// Without a password, only a session that logged in within the
		// privileged window may ask; a stale one is told to re-authenticate.
		w.clock.Advance(11 * time.Minute)
		wantProblem(t, ann.do("POST", "/api/v1/me/requests", map[string]any{"type": "access"}), 403, "reauthentication_required", "stale session")
		want(t, ann.do("POST", "/api/v1/me/requests", map[string]any{"type": "access", "password": testPassword}), 202, "stale session with password")

		// Unknown fields, wrong types, hostile text.
		wantProblem(t, ann.do("POST", "/api/v1/me/requests", map[string]any{"type": "access", "hack": 1}), 400, "invalid", "unknown field")
		wantProblem(t, ann.do("POST", "/api/v1/me/requests", map[string]any{"type": 7}), 400, "invalid", "wrong type")
		wantProblem(t, ann.do("POST", "/api/v1/me/requests", map[string]any{"type": "objection", "purposes": []string{"measure"},
			"reason": "bad\x00byte"}), 422, "invalid", "control character")
		wantProblem(t, ann.do("POST", "/api/v1/me/requests", map[string]any{"type": "erasure", "scope": "item",
			"items": []string{"comments/' OR 1=1 --"}, "password": testPassword}), 422, "invalid", "SQL in an item")

		// A download from another session: the filing session may, another
		// one only after re-authenticating.
		port := ann.file(map[string]any{"type": "portability", "password": testPassword})
		w.run()
		other, _ := w.login("ann@example.org")
		w.clock.Advance(11 * time.Minute) // the second session is no longer privileged
		before = w.auditCount("rights.download_refused")
		wantProblem(t, other.do("GET", "/api/v1/me/requests/"+port.ID+"/download", nil), 403, "reauthentication_required", "download from another session")
		if w.auditCount("rights.download_refused") != before+1 {
			t.Errorf("the refused download was not audited")
		}
		r = ann.do("GET", "/api/v1/me/requests/"+port.ID+"/download", nil)
		want(t, r, 200, "download from the filing session")
		if r.header.Get("Content-Type") != "application/zip" || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("download headers %v", r.header)
		}
		z := unzip(t, r.body)
		for name := range z {
			if strings.ContainsAny(name, "\\\x00\n:") || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
				t.Errorf("hostile name survived: %q", name)
			}
			if base := strings.TrimPrefix(name, "files/"); strings.EqualFold(base, "CON.txt") {
				t.Errorf("a Windows device name survived: %q", name)
			}
		}
		if w.auditCount("rights.export_names_sanitized") == 0 {
			t.Errorf("renamed uploads were not audited")
		}
		// The download expires.
		w.clock.Advance(8 * 24 * time.Hour)
		fresh, _ := w.login("ann@example.org")
		wantProblem(t, fresh.do("GET", "/api/v1/me/requests/"+port.ID+"/download", nil), 404, "not_found", "expired download")

		// Codes: wrong, replayed, expired, past the limit.
		anon := w.anon()
		r = anon.do("POST", "/api/v1/requests", map[string]any{"email": "sub@example.org", "type": "access"})
		want(t, r, 202, "file by email")
		var filed requestOut
		r.json(t, &filed)
		code := w.mailedCode("sub@example.org")
		before = w.auditCount("rights.code_failed")
		wantProblem(t, anon.do("POST", "/api/v1/requests/"+filed.ID+"/verify", map[string]string{"code": "00000000"}), 403, "forbidden", "wrong code")
		if w.auditCount("rights.code_failed") != before+1 {
			t.Errorf("a wrong code was not audited")
		}
		want(t, anon.do("POST", "/api/v1/requests/"+filed.ID+"/verify", map[string]string{"code": code}), 200, "right code")
		wantProblem(t, anon.do("POST", "/api/v1/requests/"+filed.ID+"/verify", map[string]string{"code": code}), 409, "conflict", "replayed code")
		if w.auditCount("rights.code_replayed") != 1 {
			t.Errorf("a replayed code was not audited")
		}

		r = anon.do("POST", "/api/v1/requests", map[string]any{"email": "sub@example.org", "type": "erasure"})
		r.json(t, &filed)
		code = w.mailedCode("sub@example.org")
		w.clock.Advance(31 * time.Minute)
		wantProblem(t, anon.do("POST", "/api/v1/requests/"+filed.ID+"/verify", map[string]string{"code": code}), 403, "forbidden", "expired code")
		if w.auditCount("rights.code_expired") != 1 {
			t.Errorf("an expired code was not audited")
		}

		r = anon.do("POST", "/api/v1/requests", map[string]any{"email": "sub@example.org", "type": "erasure"})
		r.json(t, &filed)
		code = w.mailedCode("sub@example.org")
		for i := range 4 {
			wantProblem(t, anon.do("POST", "/api/v1/requests/"+filed.ID+"/verify", map[string]string{"code": "1234567" + string(rune('0'+i))}), 403, "forbidden", "wrong code")
		}
		wantProblem(t, anon.do("POST", "/api/v1/requests/"+filed.ID+"/verify", map[string]string{"code": "99999999"}), 429, "rate_limited", "fifth wrong code")
		wantProblem(t, anon.do("POST", "/api/v1/requests/"+filed.ID+"/verify", map[string]string{"code": code}), 429, "rate_limited", "right code after the limit")
		if w.auditCount("rights.code_locked") < 2 {
			t.Errorf("codes past the limit were not audited")
		}
		// Unknown request ids and tokens.
		wantProblem(t, anon.do("POST", "/api/v1/requests/rq_nope/verify", map[string]string{"code": "12345678"}), 404, "not_found", "unknown request")
		anon.token = "forged"
		wantProblem(t, anon.do("GET", "/api/v1/requests/"+filed.ID, nil), 404, "not_found", "forged token")
		// No cookie but the session's is ever set on these routes.
		for _, c := range []*client{ann, anon} {
			res := c.do("GET", "/api/v1/me/requests", nil)
			if len(res.header.Values("Set-Cookie")) > 0 {
				t.Errorf("a rights route set a cookie: %v", res.header.Values("Set-Cookie"))
			}
		}
	})
}

// TestPromiseM1_EmailOnlyPeopleHaveTheSameRights: a newsletter-only
// subscriber, known by an address alone, gets access and erasure through
// an emailed code; the answer to filing is the same whether the address
// is known or not (J20: nothing proceeds unverified).
func TestPromiseM1_EmailOnlyPeopleHaveTheSameRights(t *testing.T) {
	eachWeb(t, "mixi.yaml", func(t *testing.T, w *web) {
		sub, _, err := w.a.Subjects.EnsureByEmail(w.ctx, w.a.DB, w.a.Door, door.Subject(), "reader@example.org", "newsletter", w.a.Policy.Number())
		if err != nil {
			t.Fatal(err)
		}
		vals := w.env.seed(sub.ID, "READER")
		anon := w.anon()

		// Known and unknown addresses get the same answer.
		known := anon.do("POST", "/api/v1/requests", map[string]any{"email": "reader@example.org", "type": "access"})
		unknown := anon.do("POST", "/api/v1/requests", map[string]any{"email": "nobody@example.org", "type": "access"})
		want(t, known, 202, "known address")
		want(t, unknown, 202, "unknown address")
		shape := func(b []byte) string {
			return regexp.MustCompile(`rq_[a-z0-9]+|\d{4}-\d\d-\d\dT[0-9:.]+Z`).ReplaceAllString(string(b), "X")
		}
		if shape(known.body) != shape(unknown.body) {
			t.Errorf("filing answers differ:\n%s\n%s", known.body, unknown.body)
		}
		var filed requestOut
		known.json(t, &filed)
		if filed.VerifyBy.IsZero() {
			t.Errorf("the answer does not state when the request expires")
		}
		// J20: nothing proceeds unverified.
		w.run()
		if got, _ := w.a.Rights.Get(w.ctx, filed.ID); got.Status != "received" {
			t.Fatalf("an unverified request moved to %s", got.Status)
		}
		r := anon.do("POST", "/api/v1/requests/"+filed.ID+"/verify", map[string]string{"code": w.mailedCode("reader@example.org")})
		want(t, r, 200, "verify")
		var verified requestOut
		r.json(t, &verified)
		if verified.Token == "" {
			t.Fatalf("no token for the download")
		}
		w.run()
		holder := w.anon()
		holder.token = verified.Token
		r = holder.do("GET", "/api/v1/requests/"+filed.ID, nil)
		want(t, r, 200, "status by token")
		r = holder.do("GET", "/api/v1/requests/"+filed.ID+"/download", nil)
		want(t, r, 200, "download by token")
		z := unzip(t, r.body)
		for _, v := range vals {
			if strings.Contains(string(z["access.json"]), v.Value) {
				goto found
			}
		}
		t.Errorf("the subscriber's data is not in their access ZIP")
	found:
		// Erasure by email.
		r = anon.do("POST", "/api/v1/requests", map[string]any{"email": "reader@example.org", "type": "erasure"})
		r.json(t, &filed)
		want(t, anon.do("POST", "/api/v1/requests/"+filed.ID+"/verify", map[string]string{"code": w.mailedCode("reader@example.org")}), 200, "verify erasure")
		w.run()
		if got, _ := w.a.Rights.Get(w.ctx, filed.ID); got.Status != "completed" {
			t.Fatalf("erasure by email: %s %s", got.Status, got.Result)
		}
		var email *string
		w.a.DB.QueryRow(`SELECT email FROM subjects WHERE id = $1`, sub.ID).Scan(&email)
		if email != nil {
			t.Errorf("the subscriber's address survived")
		}
		// An unverified request for a stranger's address expires, and the
		// address it brought in is erased with the mail sent to it.
		if got, _ := w.a.Rights.Get(w.ctx, idOf(t, unknown)); got.Status != "received" {
			t.Fatalf("unknown address request: %s", got.Status)
		}
		w.clock.Advance(8 * 24 * time.Hour)
		w.run()
		if got, _ := w.a.Rights.Get(w.ctx, idOf(t, unknown)); got.Status != "expired" {
			t.Errorf("unverified request: %s, want expired", got.Status)
		}
		if found := scan(t, w.a.DB, []string{"nobody@example.org"}); len(found) > 0 {
			t.Errorf("the unverified address is still in %v", found)
		}
	})
}

func idOf(t testing.TB, r resp) string {
	var out requestOut
	r.json(t, &out)
	return out.ID
}

// TestPromiseJ20_RefusalCarriesReason: staff refuse a request with a
// reason the subject sees in the API and is mailed.
func TestPromiseJ20_RefusalCarriesReason(t *testing.T) {
	eachWeb(t, "jmir.yaml", func(t *testing.T, w *web) {
		ann, _ := w.member("ann@example.org", "Ann Example")
		if err := w.a.Identity.CreateStaff(w.ctx, "officer@example.org", "privacy", testPassword); err != nil {
			t.Fatal(err)
		}
		staff, _ := w.login("officer@example.org")
		obj := ann.file(map[string]any{"type": "objection", "purposes": []string{"analytics"}, "reason": "I do not want to be measured."})
		wantProblem(t, staff.do("POST", "/api/v1/admin/requests/"+obj.ID+"/refuse", map[string]string{}), 422, "invalid", "refusal without reason")
		want(t, staff.do("POST", "/api/v1/admin/requests/"+obj.ID+"/refuse", map[string]string{"reason": "Fraud prevention needs it: compelling grounds."}), 200, "refuse")
		got := ann.request(obj.ID)
		if got.Status != "refused" || !strings.Contains(got.RefusalReason, "compelling grounds") {
			t.Errorf("refused request: %+v", got)
		}
		w.run()
		m := w.smtp.WaitFor(t, func(m mailtest.Received) bool {
			return mailtest.SentTo("ann@example.org")(m) && strings.Contains(m.Text, "compelling grounds")
		}, 5*time.Second)
		if !strings.Contains(m.Text, "complain") {
			t.Errorf("the refusal mail does not say how to complain")
		}
		// A member cannot use the staff queue.
		wantProblem(t, ann.do("GET", "/api/v1/admin/requests", nil), 403, "forbidden", "member reads the queue")
	})
}

// TestPromiseJ20_SignedInMemberReauthenticates: a signed-in member whose
// login is older than the privileged window (10 minutes) gets nothing that
// hands over or destroys everything (access, portability, erasure, the
// access report online) on the session alone: without their password they
// are told to re-authenticate (403 reauthentication_required), a wrong
// password is refused the same way, each refusal is audited as
// rights.request_denied and nothing is filed. The right password works.
func TestPromiseJ20_SignedInMemberReauthenticates(t *testing.T) {
	eachWeb(t, "jmir.yaml", func(t *testing.T, w *web) {
		ann, annID := w.member("ann@example.org", "Ann Example")
		filed := func(typ string) int {
			return w.env.count(`SELECT COUNT(*) FROM rights_requests WHERE subject_id = $1 AND type = $2`, annID, typ)
		}
		want(t, ann.do("GET", "/api/v1/me/data", nil), 200, "access report just after login")

		w.clock.Advance(11 * time.Minute) // past the privileged window
		for _, typ := range []string{"access", "portability", "erasure"} {
			denied, failed := w.auditCount("rights.request_denied"), w.auditCount("session.reauth_failed")
			wantProblem(t, ann.do("POST", "/api/v1/me/requests", map[string]any{"type": typ}), 403, "reauthentication_required", typ+" without a password")
			if got := w.auditCount("rights.request_denied"); got != denied+1 {
				t.Errorf("%s without a password: %d rights.request_denied audited, want 1", typ, got-denied)
			}
			wantProblem(t, ann.do("POST", "/api/v1/me/requests", map[string]any{"type": typ, "password": "not the password at all"}),
				403, "reauthentication_required", typ+" with a wrong password")
			if got := w.auditCount("rights.request_denied"); got != denied+2 {
				t.Errorf("%s without and with a wrong password: %d rights.request_denied audited, want 2", typ, got-denied)
			}
			if got := w.auditCount("session.reauth_failed"); got != failed+1 {
				t.Errorf("%s with a wrong password: %d session.reauth_failed audited, want 1", typ, got-failed)
			}
			if n := filed(typ); n != 0 {
				t.Errorf("%d %s requests filed without the right password", n, typ)
			}
		}
		denied := w.auditCount("rights.request_denied")
		wantProblem(t, ann.do("GET", "/api/v1/me/data", nil), 403, "reauthentication_required", "access report outside the window")
		if got := w.auditCount("rights.request_denied"); got != denied+1 {
			t.Errorf("the refused access report: %d rights.request_denied audited, want 1", got-denied)
		}
		// Erasure last: it closes the account.
		for _, typ := range []string{"access", "portability", "erasure"} {
			want(t, ann.do("POST", "/api/v1/me/requests", map[string]any{"type": typ, "password": testPassword}), 202, typ+" with the password")
			if n := filed(typ); n != 1 {
				t.Errorf("%d %s requests filed with the password, want 1", n, typ)
			}
		}
	})
}

// TestUnverifiedAccountFilesNothing: a member who signed up but never
// confirmed the address can sign in, but files no request: its answer
// would go to an address nobody proved is theirs. The refusal is 403
// email_unverified, audited, and nothing is filed; once the address is
// confirmed the same request is taken.
func TestUnverifiedAccountFilesNothing(t *testing.T) {
	eachWeb(t, "mixi.yaml", func(t *testing.T, w *web) {
		c := w.anon()
		want(t, c.do("POST", "/api/v1/accounts", map[string]any{"name": "Una", "email": "una@example.org", "password": testPassword, "age_confirmed": true}), 202, "sign up")
		w.run()
		una, unaID := w.login("una@example.org")
		filed := func() int {
			return w.env.count(`SELECT COUNT(*) FROM rights_requests WHERE subject_id = $1`, unaID)
		}
		for _, body := range []map[string]any{
			{"type": "access", "password": testPassword},
			{"type": "erasure", "password": testPassword},
			{"type": "restriction"},
		} {
			denied := w.auditCount("rights.request_denied")
			wantProblem(t, una.do("POST", "/api/v1/me/requests", body), 403, "email_unverified", body["type"].(string)+" from an unverified account")
			if got := w.auditCount("rights.request_denied"); got != denied+1 {
				t.Errorf("%s: %d refusals audited, want 1", body["type"], got-denied)
			}
		}
		if n := filed(); n != 0 {
			t.Fatalf("%d requests filed by an unverified account", n)
		}
		m := w.smtp.WaitFor(t, mailtest.SentTo("una@example.org"), 5*time.Second)
		match := verifyTokenRE.FindStringSubmatch(m.Text)
		if match == nil {
			t.Fatalf("no verification link in %q", m.Text)
		}
		want(t, c.do("POST", "/api/v1/email-verifications/confirm", map[string]string{"token": strings.ReplaceAll(match[1], "%3D", "=")}), 200, "verify")
		want(t, una.do("POST", "/api/v1/me/requests", map[string]any{"type": "access", "password": testPassword}), 202, "access once confirmed")
		if n := filed(); n != 1 {
			t.Errorf("%d requests filed once confirmed, want 1", n)
		}
	})
}

// TestPrivacyCentreAndConsolePages: the server-rendered pages work without
// JavaScript: the privacy centre shows the cover sheet, what erasure
// keeps and the requests; forms file requests; the console lists the
// queue and decides.
func TestPrivacyCentreAndConsolePages(t *testing.T) {
	eachWeb(t, "jmir.yaml", func(t *testing.T, w *web) {
		ann, _ := w.member("ann@example.org", "Ann Example")
		page := func(c *client, path string) string {
			t.Helper()
			req, _ := http.NewRequest("GET", w.ts.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+c.token)
			req.Header.Set("Accept", "text/html")
			res, err := c.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var b strings.Builder
			buf := make([]byte, 32<<10)
			for {
				n, err := res.Body.Read(buf)
				b.Write(buf[:n])
				if err != nil {
					break
				}
			}
			if res.StatusCode != 200 {
				t.Fatalf("GET %s: %d\n%s", path, res.StatusCode, truncate(b.String(), 800))
			}
			return b.String()
		}
		post := func(c *client, path string, form url.Values) *http.Response {
			t.Helper()
			req, _ := http.NewRequest("POST", w.ts.URL+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+c.token)
			req.Header.Set("Accept", "text/html")
			res, err := c.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res
		}
		html := page(ann, "/account/privacy")
		for _, want := range []string{"What we hold about you", "Who received it", "Delete your account", "Download your data", "Canada"} {
			if !strings.Contains(html, want) {
				t.Errorf("privacy centre lacks %q", want)
			}
		}
		res := post(ann, "/account/privacy/requests", url.Values{"type": {"restriction"}})
		if res.StatusCode != 303 {
			t.Fatalf("restriction form: %d", res.StatusCode)
		}
		if !strings.Contains(page(ann, "/account/privacy"), "Lift my restriction") {
			t.Errorf("the centre does not offer to lift the restriction")
		}
		res = post(ann, "/account/privacy/requests", url.Values{"type": {"erasure"}, "password": {testPassword}})
		if res.StatusCode != 422 {
			t.Errorf("erasure without confirmation: %d", res.StatusCode)
		}
		res = post(ann, "/account/privacy/requests", url.Values{"type": {"objection"}, "purposes": {"personalisation"}, "reason": {"My reasons."}})
		if res.StatusCode != 303 {
			t.Fatalf("objection form: %d", res.StatusCode)
		}
		if err := w.a.Identity.CreateStaff(w.ctx, "officer@example.org", "privacy", testPassword); err != nil {
			t.Fatal(err)
		}
		staff, _ := w.login("officer@example.org")
		queue := page(staff, "/admin/requests")
		id := regexp.MustCompile(`/admin/requests/(rq_[a-z0-9]+)`).FindStringSubmatch(queue)
		if id == nil {
			t.Fatalf("no request in the queue page")
		}
		detail := page(staff, "/admin/requests/"+id[1])
		if !strings.Contains(detail, "My reasons.") || !strings.Contains(detail, "Extend the deadline") {
			t.Errorf("the request page lacks the person's words or the extension form")
		}
		if res := post(staff, "/admin/requests/"+id[1]+"/extend", url.Values{"months": {"1"}, "reason": {"Many records to check."}}); res.StatusCode != 303 {
			t.Errorf("extend form: %d", res.StatusCode)
		}
		if res := post(staff, "/admin/requests/"+id[1]+"/approve", url.Values{"note": {"upheld"}}); res.StatusCode != 303 {
			t.Errorf("approve form: %d", res.StatusCode)
		}
		if !strings.Contains(page(ann, "/account/privacy"), "extended: Many records to check.") {
			t.Errorf("the member does not see the extension's reason")
		}
		// Public pages for people without an account.
		anon := w.anon()
		req, _ := http.NewRequest("GET", w.ts.URL+"/privacy/request", nil)
		if res, err := anon.http.Do(req); err != nil || res.StatusCode != 200 {
			t.Errorf("public request page: %v %v", err, res)
		}
		res = post(anon, "/privacy/request", url.Values{"email": {"reader@example.org"}, "type": {"access"}})
		if res.StatusCode != 200 {
			t.Errorf("public request form: %d", res.StatusCode)
		}
	})
}
