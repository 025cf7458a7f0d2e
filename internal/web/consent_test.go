package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"steward/internal/consent"
	"steward/internal/door"
	"steward/internal/mail/mailtest"
	"steward/internal/newsletter"
	"steward/internal/notice"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

// consentEnv is the HTTP layer with mail going to an in-process SMTP
// server and public links under https://steward.test (so mail carries the
// RFC 8058 one-click header).
type consentEnv struct {
	*env
	subjects    *subject.Store
	ledger      *consent.Ledger
	newsletters *newsletter.Service
	notices     *notice.Service
}

func newConsentEnv(t testing.TB, db *store.DB, policyFile string) *consentEnv {
	t.Helper()
	e := newEnv(t, db, envOptions{policyFile: policyFile, smtp: true, config: Config{BaseURL: "https://steward.test"}})
	return &consentEnv{env: e, subjects: e.svc.Subjects, ledger: e.svc.Consent, newsletters: e.svc.Newsletters, notices: e.svc.Notices}
}

func (e *consentEnv) runJobs() {
	e.t.Helper()
	for range 100 {
		n, err := e.runner.RunDue(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	e.t.Fatal("jobs keep coming")
}

// local turns a mailed https://steward.test link into a path on the test
// server.
func local(t testing.TB, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Host != "steward.test" {
		t.Fatalf("link %q is not under https://steward.test", link)
	}
	return u.RequestURI()
}

func noCookies(t testing.TB, r resp) {
	t.Helper()
	if c := r.Header.Values("Set-Cookie"); len(c) > 0 {
		t.Errorf("%s %s set cookies %v", r.Request.Method, r.Request.URL.Path, c)
	}
}

// TestNewsletterEndToEnd is the test over HTTP and a real SMTP
// server: subscribe → the confirmation mail arrives → a GET of its link
// does not confirm, the POST does → a campaign arrives with both RFC 8058
// headers → the one-click POST unsubscribes (no login, no cookie, no CSRF
// token) → the next campaign does not reach them. Promise M7.
func TestNewsletterEndToEnd(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newConsentEnv(t, db, "mixi.yaml")
		addr := "reader@example.org"
		r := e.do(nil, "GET", "/api/v1/newsletters", nil)
		if r.StatusCode != 200 || !strings.Contains(string(r.body), `"id":"updates"`) {
			t.Fatalf("GET /api/v1/newsletters: %d %s", r.StatusCode, r.body)
		}
		r = e.do(nil, "POST", "/api/v1/newsletters/updates/subscriptions", map[string]any{"email": addr, "source_page": "/blog/1"})
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("subscribe: %d %s", r.StatusCode, r.body)
		}
		noCookies(t, r)
		// Same answer for an address already subscribed or unknown lists' shape.
		first := string(r.body)
		e.runJobs()
		conf := e.smtp.WaitFor(t, mailtest.SentTo(addr), 5*time.Second)
		confirmPath := local(t, conf.Link("https://steward.test/newsletters/confirm"))

		r = e.do(nil, "GET", confirmPath, nil, "Accept", "text/html")
		if r.StatusCode != 200 || !strings.Contains(string(r.body), "Yes, subscribe me") {
			t.Fatalf("GET confirm link: %d %s", r.StatusCode, r.body)
		}
		if st := e.status(t, addr); st != newsletter.Pending {
			t.Fatalf("after GET of the confirm link: %s, want pending", st)
		}
		tok, _ := url.ParseQuery(strings.SplitN(confirmPath, "?", 2)[1])
		r = e.do(nil, "POST", "/newsletters/confirm", url.Values{"token": {tok.Get("token")}}, "Accept", "text/html")
		if r.StatusCode != 200 {
			t.Fatalf("POST confirm: %d %s", r.StatusCode, r.body)
		}
		if st := e.status(t, addr); st != newsletter.Confirmed {
			t.Fatalf("after POST confirm: %s, want confirmed", st)
		}
		// Subscribing again answers exactly as before.
		r = e.do(nil, "POST", "/api/v1/newsletters/updates/subscriptions", map[string]any{"email": addr})
		if string(r.body) != first {
			t.Errorf("second subscribe answered %s, first %s", r.body, first)
		}

		admin, adminTok := e.staff("admin@example.org", "admin")
		e.smtp.Reset()
		r = e.do(admin, "POST", "/api/v1/admin/newsletters/updates/campaigns", map[string]any{"subject": "October news", "text": "Hello."})
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("campaign: %d %s", r.StatusCode, r.body)
		}
		e.runJobs()
		m := e.smtp.WaitFor(t, mailtest.SentTo(addr), 5*time.Second)
		lu := strings.Trim(m.Header.Get("List-Unsubscribe"), "<>")
		if !strings.HasPrefix(lu, "https://steward.test/newsletters/unsubscribe?token=") || m.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
			t.Fatalf("RFC 8058 headers: List-Unsubscribe %q, List-Unsubscribe-Post %q", m.Header.Get("List-Unsubscribe"), m.Header.Get("List-Unsubscribe-Post"))
		}
		// Opening the link in a browser shows one button and changes nothing.
		r = e.do(nil, "GET", local(t, lu), nil, "Accept", "text/html")
		if r.StatusCode != 200 || !strings.Contains(string(r.body), `<button type="submit">Unsubscribe</button>`) {
			t.Fatalf("GET unsubscribe link: %d %s", r.StatusCode, r.body)
		}
		if st := e.status(t, addr); st != newsletter.Confirmed {
			t.Fatalf("the GET of the unsubscribe link unsubscribed")
		}
		// The one-click POST, as a mail provider sends it: no cookie, no
		// login, form-encoded body, from another origin.
		r = e.do(&http.Client{}, "POST", local(t, lu), url.Values{"List-Unsubscribe": {"One-Click"}}, "Origin", "https://mail.example.net", "Sec-Fetch-Site", "cross-site")
		if r.StatusCode != 200 {
			t.Fatalf("one-click POST: %d %s", r.StatusCode, r.body)
		}
		noCookies(t, r)
		if st := e.status(t, addr); st != newsletter.Unsubscribed {
			t.Fatalf("after the one-click POST: %s", st)
		}
		// Again, as multipart/form-data (RFC 8058 prefers it): idempotent.
		var mp bytes.Buffer
		mw := multipart.NewWriter(&mp)
		mw.WriteField("List-Unsubscribe", "One-Click")
		mw.Close()
		r = e.do(&http.Client{}, "POST", local(t, lu), mp.Bytes(), "Content-Type", mw.FormDataContentType())
		if r.StatusCode != 200 {
			t.Fatalf("second one-click POST (multipart): %d %s", r.StatusCode, r.body)
		}
		e.smtp.Reset()
		r = e.do(nil, "POST", "/api/v1/admin/newsletters/updates/campaigns", map[string]any{"subject": "November news", "text": "Hello again."}, "Authorization", "Bearer "+adminTok)
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("second campaign: %d %s", r.StatusCode, r.body)
		}
		e.runJobs()
		if n := len(e.smtp.Messages()); n != 0 {
			t.Fatalf("the next campaign reached %d recipients after the one-click unsubscribe", n)
		}
	})
}

func (e *consentEnv) status(t testing.TB, addr string) newsletter.Status {
	t.Helper()
	sub, err := e.subjects.FindByEmail(context.Background(), e.db, e.svc.Door, addr)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := e.newsletters.Subscriptions(context.Background(), sub.ID)
	if err != nil || len(subs) == 0 {
		t.Fatalf("subscriptions: %v %v", subs, err)
	}
	return subs[0].Status
}

// TestUnsubscribeTokensRefused: forged, altered and cross-list tokens are
// refused with a problem; a valid token of someone never subscribed gets
// the same answer as a real unsubscription.
func TestUnsubscribeTokensRefused(t *testing.T) {
	e := newConsentEnv(t, storetest.SQLite(t, modules()), "mixi.yaml")
	ctx := context.Background()
	id, _, _ := e.subjects.EnsureByEmail(ctx, e.db, e.svc.Door, door.Subject(), "x@example.org", "newsletter", 1)
	link, _ := e.newsletters.UnsubscribeLink(id.ID, "updates")
	p := local(t, link)
	other, _ := consent.DeriveLinks(make([]byte, 32), e.clock)
	forged, _ := other.Sign(consent.Claims{Scope: consent.ScopeUnsubscribe, List: "updates", Subject: id.ID})
	links, _ := consent.DeriveLinks(bytes.Repeat([]byte{7}, 32), e.clock)
	confirmTok, _ := links.Sign(consent.Claims{Scope: consent.ScopeConfirm, List: "updates", Subject: id.ID, Ref: "r", Expires: e.clock.Now().Add(time.Hour)})
	for name, path := range map[string]string{
		"forged":        "/newsletters/unsubscribe?token=" + url.QueryEscape(forged),
		"altered":       p[:len(p)-4] + "AAAA",
		"confirm token": "/newsletters/unsubscribe?token=" + url.QueryEscape(confirmTok),
		"no token":      "/newsletters/unsubscribe",
		"CR/LF":         "/newsletters/unsubscribe?token=a%0d%0ab",
	} {
		// The route also takes the unsubscribe page's form, so a refusal is
		// a page (a mail client reads only the status).
		r := e.do(&http.Client{}, "POST", path, url.Values{"List-Unsubscribe": {"One-Click"}})
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s, want a 422 page", name, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	r := e.do(&http.Client{}, "POST", p, url.Values{"List-Unsubscribe": {"One-Click"}})
	if r.StatusCode != 200 || string(r.body) != "{\"status\":\"unsubscribed\"}\n" {
		t.Errorf("never-subscribed person: %d %s, want the usual 200", r.StatusCode, r.body)
	}
	// Confirmation and preferences pages refuse bad tokens too.
	for _, path := range []string{"/newsletters/confirm?token=nope", "/newsletters/preferences?token=" + url.QueryEscape(forged)} {
		if r := e.do(nil, "GET", path, nil); r.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("GET %s: %d", path, r.StatusCode)
		}
	}
}

// TestGPCSignalRecorded: a member's request with Sec-GPC: 1 shows in the
// ledger and blocks third-party marketing (JMIR); repeating it adds
// nothing; the support statement is served; an explicit opt-in made later
// stands.
func TestGPCSignalRecorded(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newConsentEnv(t, db, "jmir.yaml")
		r := e.do(nil, "GET", "/.well-known/gpc.json", nil)
		var stmt map[string]any
		r.json(t, &stmt)
		if r.StatusCode != 200 || stmt["gpc"] != true || stmt["lastUpdate"] == "" {
			t.Fatalf("gpc.json: %d %s", r.StatusCode, r.body)
		}
		c, _ := e.member("gpc@example.org", "Grace")
		// Consent first, then the signal: GPC wins.
		r = e.do(c, "PUT", "/api/v1/me/consents/third-party-marketing", map[string]string{"state": "given"})
		if r.StatusCode != 200 {
			t.Fatalf("PUT consent: %d %s", r.StatusCode, r.body)
		}
		for range 3 {
			r = e.do(c, "GET", "/api/v1/me/consents", nil, "Sec-GPC", "1")
			if r.StatusCode != 200 {
				t.Fatalf("GET consents: %d %s", r.StatusCode, r.body)
			}
		}
		var body consentsBody
		r.json(t, &body)
		gpcRecords := 0
		for _, rec := range body.Records {
			if rec.Method == consent.MethodGPC {
				gpcRecords++
				if rec.Purpose != "third-party-marketing" || rec.State != consent.Withdrawn {
					t.Errorf("GPC record: %+v", rec)
				}
			}
		}
		if gpcRecords != 1 || !body.GPC.Signal {
			t.Fatalf("three requests with the signal left %d GPC records, want 1 (signal %v)", gpcRecords, body.GPC.Signal)
		}
		sub, _ := e.subjects.FindByEmail(context.Background(), db, e.svc.Door, "gpc@example.org")
		st, _ := e.subjects.State(context.Background(), db, sub.ID)
		g := policy.NewGuard(e.policy, nil)
		if d := g.Decide("third-party-marketing", e.policy.CategoryOfField("email"), st); d.Allowed {
			t.Fatal("after the GPC signal, third-party marketing is still allowed")
		}
		// An explicit opt-in made afterwards, with the signal still on, stands.
		r = e.do(c, "PUT", "/api/v1/me/consents/third-party-marketing", map[string]string{"state": "given"}, "Sec-GPC", "1")
		if r.StatusCode != 200 {
			t.Fatalf("PUT consent with GPC: %d %s", r.StatusCode, r.body)
		}
		e.do(c, "GET", "/account/consents", nil, "Sec-GPC", "1")
		st, _ = e.subjects.State(context.Background(), db, sub.ID)
		if d := g.Decide("third-party-marketing", e.policy.CategoryOfField("email"), st); !d.Allowed {
			t.Errorf("explicit opt-in after GPC: denied (%s)", d.Reason)
		}
		// An anonymous request with the signal stores nothing.
		before := countRows(t, db, "consent_records")
		e.do(nil, "GET", "/api/v1/newsletters", nil, "Sec-GPC", "1")
		if after := countRows(t, db, "consent_records"); after != before {
			t.Errorf("an anonymous GPC request added %d ledger rows", after-before)
		}
	})
}

func countRows(t testing.TB, db *store.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConsentReceiptOverHTTP: the PUT returns the record with its signed
// receipt; the receipt verifies offline with the key served at the
// well-known URL, and a tampered one does not.
func TestConsentReceiptOverHTTP(t *testing.T) {
	e := newConsentEnv(t, storetest.SQLite(t, modules()), "jmir.yaml")
	c, _ := e.member("rc@example.org", "Rita")
	r := e.do(c, "PUT", "/api/v1/me/consents/marketing", map[string]string{"state": "given"})
	if r.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", r.StatusCode, r.body)
	}
	var rec consent.Record
	r.json(t, &rec)
	kr := e.do(nil, "GET", "/.well-known/steward/receipt-key", nil)
	if kr.Header.Get("Content-Type") != "application/jwk+json" {
		t.Errorf("receipt key Content-Type %q", kr.Header.Get("Content-Type"))
	}
	pub, err := consent.ParsePublicKey(kr.body)
	if err != nil {
		t.Fatal(err)
	}
	if err := consent.VerifyReceipt(pub, rec.Receipt); err != nil {
		t.Fatalf("receipt from the API: %v", err)
	}
	var generic map[string]any
	json.Unmarshal(rec.Receipt, &generic)
	generic["state"] = "withdrawn"
	tampered, _ := json.Marshal(generic)
	if err := consent.VerifyReceipt(pub, tampered); !errors.Is(err, consent.ErrBadReceipt) {
		t.Errorf("tampered receipt: %v", err)
	}
	// The download from the consent page is the same receipt.
	dl := e.do(c, "GET", "/account/consents/receipts/"+rec.ID, nil)
	if dl.StatusCode != 200 || consent.VerifyReceipt(pub, dl.body) != nil {
		t.Errorf("receipt download: %d", dl.StatusCode)
	}
	other, _ := e.member("other@example.org", "Otto")
	if r := e.do(other, "GET", "/account/consents/receipts/"+rec.ID, nil, "Accept", "text/html"); r.StatusCode != 404 {
		t.Errorf("another member's receipt: %d, want 404", r.StatusCode)
	}
	// Bad input.
	assertProblem(t, e.do(c, "PUT", "/api/v1/me/consents/nope", map[string]string{"state": "given"}), 404, "not_found")
	assertProblem(t, e.do(c, "PUT", "/api/v1/me/consents/marketing", map[string]string{"state": "maybe"}), 422, "invalid")
	assertProblem(t, e.do(c, "PUT", "/api/v1/me/consents/marketing", `{"state":"given","extra":1}`), 400, "invalid")
	assertProblem(t, e.do(c, "PUT", "/api/v1/me/consents/provide-service", map[string]string{"state": "withdrawn"}), 422, "invalid")
	assertProblem(t, e.do(nil, "PUT", "/api/v1/me/consents/marketing", map[string]string{"state": "given"}), 401, "unauthorized")
}

// TestPromiseM7_StaffUnsubscribeOverHTTP: support staff unsubscribe
// someone who asked; the answer is the same for an unknown address; a
// member without a staff role is refused.
func TestPromiseM7_StaffUnsubscribeOverHTTP(t *testing.T) {
	e := newConsentEnv(t, storetest.SQLite(t, modules()), "mixi.yaml")
	ctx := context.Background()
	m, _ := e.member("asker@example.org", "Asker")
	if r := e.do(m, "PUT", "/api/v1/me/newsletters/updates", map[string]any{}); r.StatusCode != 200 || !strings.Contains(string(r.body), "confirmed") {
		t.Fatalf("member subscribe: %d %s", r.StatusCode, r.body)
	}
	support, _ := e.staff("support@example.org", "support")
	r1 := e.do(support, "POST", "/api/v1/admin/newsletters/unsubscriptions", map[string]string{"email": "asker@example.org"})
	r2 := e.do(support, "POST", "/api/v1/admin/newsletters/unsubscriptions", map[string]string{"email": "nobody@example.org"})
	if r1.StatusCode != 202 || string(r1.body) != string(r2.body) {
		t.Fatalf("staff unsubscribe: %d %s / %s", r1.StatusCode, r1.body, r2.body)
	}
	if st := e.status(t, "asker@example.org"); st != newsletter.Unsubscribed {
		t.Fatalf("after staff unsubscribe: %s", st)
	}
	if _, err := e.subjects.FindByEmail(ctx, e.db, e.svc.Door, "nobody@example.org"); err == nil {
		t.Error("staff unsubscribe of an unknown address created a subject")
	}
	assertProblem(t, e.do(m, "POST", "/api/v1/admin/newsletters/unsubscriptions", map[string]string{"email": "asker@example.org"}), 403, "forbidden")
	assertProblem(t, e.do(support, "POST", "/api/v1/admin/newsletters/updates/campaigns", map[string]string{"subject": "x", "text": "y"}), 403, "forbidden")
}

// TestConsentPages walks the member's consent page and the staff page:
// they render, forms work without JavaScript, and nothing sets a cookie
// beyond the session.
func TestConsentPages(t *testing.T) {
	e := newConsentEnv(t, storetest.SQLite(t, modules()), "jmir.yaml")
	c, _ := e.member("page@example.org", "Paula")
	r := e.do(c, "GET", "/account/consents", nil, "Accept", "text/html")
	if r.StatusCode != 200 || !strings.Contains(string(r.body), "Withdraw my consent") && !strings.Contains(string(r.body), "I agree") {
		t.Fatalf("consent page: %d %s", r.StatusCode, r.body)
	}
	r = e.do(c, "POST", "/account/consents/marketing", url.Values{"state": {"given"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("consent form: %d %s", r.StatusCode, r.body)
	}
	list := e.policy.Newsletters[0].ID
	if r = e.do(c, "POST", "/account/newsletters/"+list, url.Values{"action": {"subscribe"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("newsletter form: %d %s", r.StatusCode, r.body)
	}
	r = e.do(c, "GET", "/account/consents?done=consent", nil, "Accept", "text/html")
	if !strings.Contains(string(r.body), "You are subscribed.") || !strings.Contains(string(r.body), "Download") {
		t.Errorf("consent page after choices lacks the subscription or receipts:\n%s", r.body)
	}
	if r = e.do(c, "POST", "/account/newsletters/"+list, url.Values{"action": {"unsubscribe"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("newsletter unsubscribe form: %d", r.StatusCode)
	}
	admin, _ := e.staff("boss@example.org", "admin")
	r = e.do(admin, "GET", "/admin/newsletters", nil, "Accept", "text/html")
	if r.StatusCode != 200 || !strings.Contains(string(r.body), "Send a campaign") || !strings.Contains(string(r.body), "Send a notice to everyone") {
		t.Fatalf("admin page: %d %s", r.StatusCode, r.body)
	}
	if r = e.do(admin, "POST", "/admin/notices", url.Values{"kind": {"ownership"}, "subject": {"New owner"}, "text": {"We were acquired."}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("broadcast form: %d %s", r.StatusCode, r.body)
	}
	if r = e.do(admin, "POST", "/admin/newsletters/"+list+"/campaigns", url.Values{"subject": {"Bad\r\nBcc: x"}, "text": {"x"}}, "Accept", "text/html"); r.StatusCode != 422 && r.StatusCode != 400 {
		t.Errorf("campaign with CR/LF subject: %d", r.StatusCode)
	}
	if r = e.do(c, "GET", "/admin/newsletters", nil, "Accept", "text/html"); r.StatusCode != 403 {
		t.Errorf("member on the staff page: %d", r.StatusCode)
	}
	e.runJobs()
	e.smtp.WaitFor(t, mailtest.SentTo("page@example.org"), 5*time.Second)
}

// consentRoute reports whether a route pattern is one of issue 5's.
func consentRoute(pattern string) bool {
	_, path, _ := strings.Cut(pattern, " ")
	for _, p := range []string{"/.well-known/gpc.json", "/.well-known/steward/", "/api/v1/me/consents", "/api/v1/me/policy-changes",
		"/api/v1/me/newsletters", "/api/v1/newsletters", "/api/v1/admin/newsletters", "/api/v1/admin/notices", "/newsletters/",
		"/account/consents", "/account/newsletters", "/account/policy-acceptance", "/admin/newsletters", "/admin/notices"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// TestConsentRoutesBadInput sends hostile input to every issue-5 route,
// anonymous, as a member and as an admin: nothing answers 5xx and nothing
// sets a cookie (promise M3).
func TestConsentRoutesBadInput(t *testing.T) {
	e := newConsentEnv(t, storetest.SQLite(t, modules()), "mixi.yaml")
	member, _ := e.member("walker@example.org", "Walker")
	admin, _ := e.staff("walkadmin@example.org", "admin")
	bodies := []any{nil, "{", `{"email":"a@example.org\r\nBcc: x@example.org","subject":"x\r\ny","text":"t","state":"given"}`,
		url.Values{"token": {"forged.token"}, "state": {"given"}, "email": {strings.Repeat("a", 300)}, "List-Unsubscribe": {"One-Click"}},
		`{"email":"` + strings.Repeat("x", 5000) + `@example.org","list":"../../etc"}`}
	n := 0
	for _, rt := range e.srv.routeTab {
		if !consentRoute(rt.pattern()) {
			continue
		}
		n++
		path := strings.NewReplacer("{purpose}", "marketing", "{list}", "updates", "{version}", "1", "{id}", "cr_nope").Replace(rt.path)
		for _, c := range []*http.Client{&http.Client{}, member, admin} {
			for _, b := range bodies {
				if rt.method == "GET" && b != nil {
					continue
				}
				for _, q := range []string{"", "?token=%ff%00", "?token=" + strings.Repeat("A", 2000) + "&url=javascript:alert(1)"} {
					r := e.do(c, rt.method, path+q, b, "Accept", "text/html", "Sec-GPC", "1")
					if r.StatusCode >= 500 {
						t.Errorf("%s %s%s: %d %s", rt.method, path, q, r.StatusCode, r.body)
					}
					for _, ck := range r.Cookies() {
						if ck.Name != SessionCookie {
							t.Errorf("%s %s set cookie %s", rt.method, path, ck.Name)
						}
					}
				}
			}
		}
	}
	if n < 30 {
		t.Fatalf("walked %d issue-5 routes; the filter misses some", n)
	}
}
