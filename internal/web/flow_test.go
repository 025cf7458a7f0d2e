package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestAccountLifecycleOverSMTP is the foundation's end-to-end story, on
// both engines: sign up through the API, verify with the link from the
// mail received over SMTP, log in, edit the profile, list and revoke a
// session, log out, and the audit log verifies.
func TestAccountLifecycleOverSMTP(t *testing.T) {
	t.Parallel()
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, envOptions{smtp: true})
		r := e.do(nil, "POST", "/api/v1/accounts", map[string]any{
			"name": "Ann Example", "email": "Ann@Example.org", "password": testPassword, "age_confirmed": true,
		})
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("sign up = %d %s", r.StatusCode, r.body)
		}
		var first acceptedBody
		r.json(t, &first)
		// Same answer for an address that is already taken.
		again := e.do(nil, "POST", "/api/v1/accounts", map[string]any{
			"name": "Someone Else", "email": "ann@example.org", "password": testPassword + " again", "age_confirmed": true,
		})
		if again.StatusCode != http.StatusAccepted || string(again.body) != string(r.body) {
			t.Errorf("second sign-up = %d %s, want the same 202 body %s", again.StatusCode, again.body, r.body)
		}
		if _, err := e.runner.RunDue(ctx); err != nil {
			t.Fatalf("deliver: %v", err)
		}
		msg := e.smtp.WaitFor(t, func(m mailtest.Received) bool {
			return strings.Contains(m.Text, "/verify-email?token=")
		}, 5*time.Second)
		if len(msg.To) != 1 || msg.To[0] != "ann@example.org" {
			t.Errorf("verification mail to %v", msg.To)
		}
		link := regexp.MustCompile(`https?://\S+/verify-email\?token=\S+`).FindString(msg.Text)
		u, err := url.Parse(link)
		if err != nil || link == "" {
			t.Fatalf("no verification link in %q", msg.Text)
		}
		tok := u.Query().Get("token")

		// The page the link opens shows a button and does not verify.
		page := e.do(nil, "GET", u.RequestURI(), nil)
		if page.StatusCode != 200 || !strings.Contains(string(page.body), `action="/verify-email"`) {
			t.Fatalf("verify page = %d", page.StatusCode)
		}
		c, bearer := e.login("ann@example.org", testPassword)
		me := e.do(c, "GET", "/api/v1/me", nil)
		var prof profileOut
		me.json(t, &prof)
		if prof.EmailVerified {
			t.Fatalf("opening the link verified the address; only the POST may")
		}
		if r := e.do(nil, "POST", "/api/v1/email-verifications/confirm", map[string]string{"token": tok}); r.StatusCode != 200 {
			t.Fatalf("confirm = %d %s", r.StatusCode, r.body)
		}
		// A token works once.
		assertProblem(t, e.do(nil, "POST", "/api/v1/email-verifications/confirm", map[string]string{"token": tok}), 422, "invalid")

		// Bearer and cookie both authenticate.
		me = e.do(nil, "GET", "/api/v1/me", nil, "Authorization", "Bearer "+bearer)
		me.json(t, &prof)
		if me.StatusCode != 200 || !prof.EmailVerified || prof.Email != "ann@example.org" || prof.Fields["name"] != "Ann Example" {
			t.Fatalf("GET /api/v1/me = %d %+v", me.StatusCode, prof)
		}
		assertProblem(t, e.do(nil, "GET", "/api/v1/me", nil), 401, "unauthorized")
		assertProblem(t, e.do(nil, "GET", "/api/v1/me", nil, "Authorization", "Bearer nonsense"), 401, "unauthorized")

		// Self-service correction.
		r = e.do(c, "PATCH", "/api/v1/me", map[string]string{"name": "Ann B. Example"})
		r.json(t, &prof)
		if r.StatusCode != 200 || prof.Fields["name"] != "Ann B. Example" {
			t.Errorf("PATCH /api/v1/me = %d %s", r.StatusCode, r.body)
		}

		// A second session, listed and revoked from the first.
		other, otherToken := e.login("ann@example.org", testPassword)
		var list struct{ Sessions []sessionJSON }
		e.do(c, "GET", "/api/v1/me/sessions", nil).json(t, &list)
		if len(list.Sessions) != 2 {
			t.Fatalf("sessions = %d, want 2", len(list.Sessions))
		}
		var otherID string
		for _, s := range list.Sessions {
			if !s.Current {
				otherID = s.ID
			}
			if s.Network == "" || s.Network == "127.0.0.1" {
				t.Errorf("session network = %q, want a truncated network", s.Network)
			}
		}
		if r := e.do(c, "DELETE", "/api/v1/me/sessions/"+otherID, nil); r.StatusCode != 204 {
			t.Fatalf("revoke = %d %s", r.StatusCode, r.body)
		}
		assertProblem(t, e.do(other, "GET", "/api/v1/me", nil), 401, "unauthorized")
		assertProblem(t, e.do(nil, "GET", "/api/v1/me", nil, "Authorization", "Bearer "+otherToken), 401, "unauthorized")
		// Another member cannot revoke Ann's session.
		bob, _ := e.member("bob@example.org", "Bob Example")
		e.do(c, "GET", "/api/v1/me/sessions", nil).json(t, &list)
		assertProblem(t, e.do(bob, "DELETE", "/api/v1/me/sessions/"+list.Sessions[0].ID, nil), 404, "not_found")

		// Revoke others, then log out.
		third, _ := e.login("ann@example.org", testPassword)
		var revoked struct{ Revoked int }
		e.do(c, "POST", "/api/v1/me/sessions/revoke-others", nil).json(t, &revoked)
		if revoked.Revoked != 1 {
			t.Errorf("revoked = %d, want 1", revoked.Revoked)
		}
		assertProblem(t, e.do(third, "GET", "/api/v1/me", nil), 401, "unauthorized")
		out := e.do(c, "DELETE", "/api/v1/sessions/current", nil)
		if out.StatusCode != 204 {
			t.Fatalf("logout = %d", out.StatusCode)
		}
		assertProblem(t, e.do(nil, "GET", "/api/v1/me", nil, "Authorization", "Bearer "+bearer), 401, "unauthorized")

		// Password reset by mail ends every session.
		if r := e.do(nil, "POST", "/api/v1/password-resets", map[string]string{"email": "ann@example.org"}); r.StatusCode != 202 {
			t.Fatalf("reset request = %d", r.StatusCode)
		}
		unknown := e.do(nil, "POST", "/api/v1/password-resets", map[string]string{"email": "nobody@example.org"})
		if unknown.StatusCode != 202 {
			t.Errorf("reset for an unknown address = %d, want the same 202", unknown.StatusCode)
		}
		resetTok := e.mailedToken("ann@example.org", "/reset-password")
		newPassword := "a completely different passphrase"
		if r := e.do(nil, "POST", "/api/v1/password-resets/confirm", map[string]string{"token": resetTok, "password": newPassword}); r.StatusCode != 200 {
			t.Fatalf("reset = %d %s", r.StatusCode, r.body)
		}
		assertProblem(t, e.do(nil, "POST", "/api/v1/sessions", map[string]string{"email": "ann@example.org", "password": testPassword}), 401, "unauthorized")
		e.login("ann@example.org", newPassword)

		rep, err := e.audit.Verify(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("audit verify = %+v, %v", rep, err)
		}
		if rep.Entries < 5 {
			t.Errorf("audit entries = %d, want the sign-ups, logins and revocations", rep.Entries)
		}
	})
}

// form extracts the value of a named hidden input from a page.
func hiddenValue(t *testing.T, page []byte, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no hidden %s in page", name)
	}
	return string(m[1])
}

// TestPagesWithoutJavaScript drives the HTML forms as a browser without
// JavaScript would: POST, redirect, GET.
func TestPagesWithoutJavaScript(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{})
	browser := e.client()
	html := []string{"Accept", "text/html"}

	signup := e.do(browser, "GET", "/signup", nil, html...)
	for _, want := range []string{`<html lang="en">`, `<label for="f-email">`, `<label for="f-password">`, `name="age_confirmed"`} {
		if !strings.Contains(string(signup.body), want) {
			t.Errorf("sign-up page lacks %s", want)
		}
	}
	if strings.Contains(string(signup.body), "<script") {
		t.Errorf("a page carries a script")
	}
	// An error is shown inline, next to its field, with the input kept.
	bad := e.do(browser, "POST", "/signup", url.Values{"name": {"Ann"}, "email": {"not-an-address"}, "password": {testPassword}, "age_confirmed": {"yes"}}, html...)
	if bad.StatusCode != 422 || !strings.Contains(string(bad.body), `id="e-email"`) || !strings.Contains(string(bad.body), `value="Ann"`) {
		t.Errorf("bad sign-up = %d, want 422 with the email error inline:\n%s", bad.StatusCode, bad.body)
	}
	ok := e.do(browser, "POST", "/signup", url.Values{"name": {"Ann"}, "email": {"ann@example.org"}, "password": {testPassword}, "age_confirmed": {"yes"}}, html...)
	if ok.StatusCode != http.StatusSeeOther || ok.Header.Get("Location") != "/signup?sent=1" {
		t.Fatalf("sign-up = %d %s", ok.StatusCode, ok.Header.Get("Location"))
	}
	tok := e.mailedToken("ann@example.org", "/verify-email")
	confirm := e.do(browser, "GET", "/verify-email?token="+url.QueryEscape(tok), nil, html...)
	if got := hiddenValue(t, confirm.body, "token"); got != tok {
		t.Fatalf("confirm page token = %q", got)
	}
	done := e.do(browser, "POST", "/verify-email", url.Values{"token": {tok}}, html...)
	if done.StatusCode != 200 || !strings.Contains(string(done.body), "verified") {
		t.Fatalf("verify = %d", done.StatusCode)
	}
	used := e.do(browser, "POST", "/verify-email", url.Values{"token": {tok}}, html...)
	if used.StatusCode != 422 || !strings.Contains(string(used.body), `role="alert"`) {
		t.Errorf("reused token = %d, want 422 with an alert", used.StatusCode)
	}

	// The account page sends anonymous visitors to log in and back.
	anon := e.do(browser, "GET", "/account", nil, html...)
	if anon.StatusCode != http.StatusSeeOther || anon.Header.Get("Location") != "/login?next=%2Faccount" {
		t.Fatalf("anonymous /account = %d %s", anon.StatusCode, anon.Header.Get("Location"))
	}
	wrong := e.do(browser, "POST", "/login", url.Values{"email": {"ann@example.org"}, "password": {"wrong wrong wrong wrong"}, "next": {"/account"}}, html...)
	if wrong.StatusCode != 401 || !strings.Contains(string(wrong.body), `role="alert"`) {
		t.Errorf("wrong password = %d", wrong.StatusCode)
	}
	in := e.do(browser, "POST", "/login", url.Values{"email": {"ann@example.org"}, "password": {testPassword}, "next": {"/account"}}, html...)
	if in.StatusCode != http.StatusSeeOther || in.Header.Get("Location") != "/account" {
		t.Fatalf("login = %d %s", in.StatusCode, in.Header.Get("Location"))
	}
	evil := e.do(e.client(), "POST", "/login", url.Values{"email": {"ann@example.org"}, "password": {testPassword}, "next": {"//evil.example/x"}}, html...)
	if evil.Header.Get("Location") != "/account" {
		t.Errorf("login redirected to %q: open redirect", evil.Header.Get("Location"))
	}
	acct := e.do(browser, "GET", "/account", nil, html...)
	if acct.StatusCode != 200 || !strings.Contains(string(acct.body), "Your details") || !strings.Contains(string(acct.body), "(this browser)") {
		t.Fatalf("account page = %d:\n%s", acct.StatusCode, acct.body)
	}
	saved := e.do(browser, "POST", "/account/profile", url.Values{"name": {"Ann Example"}}, html...)
	if saved.StatusCode != http.StatusSeeOther || saved.Header.Get("Location") != "/account?done=profile" {
		t.Fatalf("profile = %d %s %s", saved.StatusCode, saved.Header.Get("Location"), saved.body)
	}
	acct = e.do(browser, "GET", "/account?done=profile", nil, html...)
	if !strings.Contains(string(acct.body), `value="Ann Example"`) || !strings.Contains(string(acct.body), "Your details were saved.") {
		t.Errorf("profile change not shown")
	}
	// An email change waits for the new address to be confirmed (M8).
	moved := e.do(browser, "POST", "/account/profile", url.Values{"name": {"Ann Example"}, "email": {"ann.new@example.org"}}, html...)
	if moved.Header.Get("Location") != "/account?done=email" {
		t.Fatalf("email change = %d %s:\n%s", moved.StatusCode, moved.Header.Get("Location"), moved.body)
	}
	acct = e.do(browser, "GET", "/account?done=email", nil, html...)
	if !strings.Contains(string(acct.body), "to ann.new@example.org waits") {
		t.Errorf("pending email change not shown:\n%s", acct.body)
	}
	badPw := e.do(browser, "POST", "/account/password", url.Values{"password_current": {testPassword}, "password_new": {"short"}}, html...)
	if badPw.StatusCode != 422 || !strings.Contains(string(badPw.body), `id="e-password_new"`) {
		t.Errorf("short new password = %d, want 422 inline:\n%s", badPw.StatusCode, badPw.body)
	}
	// Revoke another session from the page.
	e.login("ann@example.org", testPassword)
	if r := e.do(browser, "POST", "/account/sessions/revoke-others", url.Values{}, html...); r.Header.Get("Location") != "/account?done=revoked-others" {
		t.Errorf("revoke others = %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	// Members are not staff.
	if r := e.do(browser, "GET", "/admin", nil, html...); r.StatusCode != 403 {
		t.Errorf("member /admin = %d, want 403", r.StatusCode)
	}
	out := e.do(browser, "POST", "/logout", url.Values{}, html...)
	if out.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout = %d", out.StatusCode)
	}
	if r := e.do(browser, "GET", "/account", nil, html...); r.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout /account = %d, want a redirect to login", r.StatusCode)
	}

	// Password reset through the pages.
	e.do(browser, "POST", "/reset-password", url.Values{"email": {"ann@example.org"}}, html...)
	rt := e.mailedToken("ann@example.org", "/reset-password")
	form := e.do(browser, "GET", "/reset-password?token="+url.QueryEscape(rt), nil, html...)
	if hiddenValue(t, form.body, "token") != rt {
		t.Fatalf("reset form lacks the token")
	}
	reset := e.do(browser, "POST", "/reset-password/confirm", url.Values{"token": {rt}, "password": {"yet another long passphrase"}}, html...)
	if reset.Header.Get("Location") != "/login?reset=1" {
		t.Fatalf("reset = %d %s", reset.StatusCode, reset.Header.Get("Location"))
	}
	e.login("ann@example.org", "yet another long passphrase")
}

// TestStaffConsole: the outbox is for admin, privacy and support staff,
// each message opened only for a role the policy gives its purpose; the
// audit view for privacy staff and admins; every view of personal data is
// audited.
func TestStaffConsole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := sqliteEnv(t, envOptions{})
	html := []string{"Accept", "text/html"}
	e.member("ann@example.org", "Ann Example")
	admin, _ := e.staff("admin@example.org", "admin")
	privacy, _ := e.staff("privacy@example.org", "privacy")
	analyst, _ := e.staff("analyst@example.org", "analyst")

	box := e.do(admin, "GET", "/admin/outbox", nil, html...)
	if box.StatusCode != 200 || !strings.Contains(string(box.body), "a***@example.org") {
		t.Fatalf("outbox = %d:\n%s", box.StatusCode, box.body)
	}
	if strings.Contains(string(box.body), "ann@example.org") {
		t.Errorf("the outbox list shows a full address")
	}
	msgs, err := e.outbox.List(ctx, mail.AsRecipient, 10)
	if err != nil {
		t.Fatal(err)
	}
	var annMsg string
	for _, m := range msgs {
		if m.To == "ann@example.org" {
			annMsg = m.ID
		}
	}
	one := e.do(admin, "GET", "/admin/outbox/"+annMsg, nil, html...)
	if one.StatusCode != 200 || !strings.Contains(string(one.body), "ann@example.org") || !strings.Contains(string(one.body), "/verify-email?token=") {
		t.Fatalf("message = %d:\n%s", one.StatusCode, one.body)
	}
	if r := e.do(admin, "GET", "/admin/outbox/nope", nil, html...); r.StatusCode != 404 {
		t.Errorf("unknown message = %d, want 404", r.StatusCode)
	}
	// An answer to Ann's privacy request serves subject-request, which the
	// policy does not give the admin role: the admin sees it withheld, and
	// the refusal is audited.
	var annSubject string
	for _, m := range msgs {
		if m.ID == annMsg {
			annSubject = m.SubjectID
		}
	}
	answer, err := e.outbox.Enqueue(ctx, e.db, mail.Message{SubjectID: annSubject, To: "ann@example.org", Subject: "Your privacy request",
		Text: "We received it.", Kind: "rights-request", Purpose: "subject-request"})
	if err != nil {
		t.Fatal(err)
	}
	box = e.do(admin, "GET", "/admin/outbox", nil, html...)
	if box.StatusCode != 200 || !strings.Contains(string(box.body), "withheld</a> (the staff role may not use this purpose)") || strings.Contains(string(box.body), "Your privacy request") {
		t.Errorf("the outbox list with a withheld message = %d:\n%s", box.StatusCode, box.body)
	}
	one = e.do(admin, "GET", "/admin/outbox/"+answer, nil, html...)
	if one.StatusCode != 200 || !strings.Contains(string(one.body), "Message withheld") || strings.Contains(string(one.body), "We received it.") ||
		strings.Contains(string(one.body), "ann@example.org") {
		t.Errorf("a withheld message = %d:\n%s", one.StatusCode, one.body)
	}
	// Privacy staff read the answer (their role serves subject-request)
	// and not the verification mail (security).
	one = e.do(privacy, "GET", "/admin/outbox/"+answer, nil, html...)
	if one.StatusCode != 200 || !strings.Contains(string(one.body), "We received it.") {
		t.Errorf("privacy staff reading a privacy answer = %d:\n%s", one.StatusCode, one.body)
	}
	one = e.do(privacy, "GET", "/admin/outbox/"+annMsg, nil, html...)
	if one.StatusCode != 200 || !strings.Contains(string(one.body), "Message withheld") || strings.Contains(string(one.body), "/verify-email?token=") {
		t.Errorf("privacy staff reading account mail = %d:\n%s", one.StatusCode, one.body)
	}
	if r := e.do(analyst, "GET", "/admin/outbox", nil, html...); r.StatusCode != 403 {
		t.Errorf("analyst outbox = %d, want 403", r.StatusCode)
	}
	if r := e.do(analyst, "GET", "/admin/audit", nil, html...); r.StatusCode != 403 {
		t.Errorf("analyst audit = %d, want 403", r.StatusCode)
	}
	if r := e.do(analyst, "GET", "/admin", nil, html...); r.StatusCode != 200 {
		t.Errorf("analyst console = %d, want 200", r.StatusCode)
	}
	aud := e.do(privacy, "GET", "/admin/audit?verify=1", nil, html...)
	if aud.StatusCode != 200 || !strings.Contains(string(aud.body), "is intact") || !strings.Contains(string(aud.body), "staff.read") {
		t.Fatalf("audit page = %d:\n%s", aud.StatusCode, aud.body)
	}
	entries, err := e.audit.List(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var reads []string
	for _, en := range entries {
		if en.Action == "staff.read" {
			reads = append(reads, en.Detail["view"]+" by "+en.Actor+" about "+en.Subject)
		}
	}
	want := 7 // outbox list twice, two messages by the admin and two by privacy staff, the audit view
	if len(reads) != want {
		t.Errorf("staff.read entries = %d, want %d: %v", len(reads), want, reads)
	}
	refused := false
	for _, en := range entries {
		if en.Action == "guard.denied" && en.Subject == annSubject && en.Detail["purpose"] == "subject-request" &&
			en.Detail["reason"] == "the staff role may not use this purpose" && strings.HasPrefix(en.Actor, "staff:") {
			refused = true
		}
	}
	if !refused {
		t.Errorf("the admin's refused reading of the withheld message was not audited")
	}
	found := false
	for _, rd := range reads {
		if strings.HasPrefix(rd, "outbox.message by staff:") && !strings.HasSuffix(rd, "about ") {
			found = true
		}
	}
	if !found {
		t.Errorf("opening a message was not audited with its subject: %v", reads)
	}
}

// TestReauthenticationRequired: outside the ten minutes after a login, an
// email change needs the password, and says so with its own problem type.
func TestReauthenticationRequired(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{})
	c, _ := e.member("ann@example.org", "Ann Example")
	e.clock.Advance(11 * time.Minute)
	assertProblem(t, e.do(c, "PATCH", "/api/v1/me", map[string]string{"email": "ann.new@example.org"}), 403, "reauthentication_required")
	assertProblem(t, e.do(c, "PATCH", "/api/v1/me", map[string]string{"email": "ann.new@example.org", "current_password": "not the password at all"}),
		403, "reauthentication_required")
	r := e.do(c, "PATCH", "/api/v1/me", map[string]string{"email": "ann.new@example.org", "current_password": testPassword})
	var prof profileOut
	r.json(t, &prof)
	if r.StatusCode != 200 || prof.PendingEmail != "ann.new@example.org" || prof.Email != "ann@example.org" {
		t.Errorf("PATCH with password = %d %+v", r.StatusCode, prof)
	}
}
