package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"steward/internal/app"
	"steward/internal/clock"
	"steward/internal/identity/identitytest"
)

const siteOrigin = "https://www.example.org"

// invalid stands for the statuses of refused input: 400 for a body that
// cannot be read as an event, 422 for one that breaks a rule (the web
// layer's mapping of fault.Invalid).
const invalid = -1

func statusIs(got, want int) bool {
	if want == invalid {
		return got == http.StatusBadRequest || got == http.StatusUnprocessableEntity
	}
	return got == want
}

// analyticsServer runs Steward with an example policy whose demo site is
// served from siteOrigin, and staff accounts for the report API.
func analyticsServer(t *testing.T, policyFile string) *steward {
	t.Helper()
	return analyticsServerWith(t, policyFile, app.Options{})
}

// analyticsServerWith is analyticsServer with options, such as a fake
// clock.
func analyticsServerWith(t *testing.T, policyFile string, opt app.Options) *steward {
	t.Helper()
	s := startStewardWith(t, app.Config{PolicyPath: policyWithOrigins(t, policyFile, siteOrigin), Dev: true}, nil, opt)
	for _, role := range []string{"analyst", "support"} {
		if err := s.app.Identity.CreateStaff(context.Background(), role+"@example.org", role, "correct horse battery staple 2026"); err != nil {
			t.Fatalf("create %s: %v", role, err)
		}
	}
	return s
}

func (s *steward) login(t *testing.T, email string) string {
	t.Helper()
	resp := s.do(t, "POST", "/api/v1/sessions", map[string]string{"Content-Type": "application/json"},
		`{"email":"`+email+`","password":"correct horse battery staple 2026"}`)
	if resp.status != http.StatusCreated {
		t.Fatalf("login %s: %d %s", email, resp.status, resp.body)
	}
	var body struct{ Token string }
	json.Unmarshal([]byte(resp.body), &body)
	identitytest.PassSecondFactor(t, s.app.Identity, body.Token, s.app.Clock.Now())
	return body.Token
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (s *steward) do(t *testing.T, method, path string, headers map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func collectHeaders(ua string) map[string]string {
	return map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": siteOrigin, "User-Agent": ua}
}

func TestCollectEndpoint(t *testing.T) {
	s := analyticsServer(t, "jmir.yaml")
	good := `{"site":"demo","type":"pageview","url":"` + siteOrigin + `/a"}`
	cases := []struct {
		name    string
		headers map[string]string
		body    string
		status  int
		cors    bool
	}{
		{"accepted", collectHeaders(browserUA), good, http.StatusAccepted, true},
		{"accepted as JSON", map[string]string{"Content-Type": "application/json", "Origin": siteOrigin, "User-Agent": browserUA}, good, http.StatusAccepted, true},
		{"bot", collectHeaders("Googlebot/2.1 (+http://www.google.com/bot.html)"), good, http.StatusNoContent, true},
		{"foreign origin", map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example", "User-Agent": browserUA}, good, http.StatusForbidden, false},
		{"forged site", collectHeaders(browserUA), `{"site":"forged","type":"pageview","url":"` + siteOrigin + `/a"}`, invalid, false},
		{"oversized", collectHeaders(browserUA), `{"site":"demo","type":"pageview","url":"` + siteOrigin + "/" + strings.Repeat("a", 9000) + `"}`, http.StatusRequestEntityTooLarge, true},
		{"10,000 props", collectHeaders(browserUA), manyProps(10000), http.StatusRequestEntityTooLarge, true},
		{"deeply nested", collectHeaders(browserUA), `{"site":"demo","type":"event","url":"` + siteOrigin + `/","name":"x","props":{"a":` + strings.Repeat("[", 3000) + strings.Repeat("]", 3000) + `}}`, invalid, true},
		{"invalid UTF-8", collectHeaders(browserUA), "{\"site\":\"demo\",\"type\":\"pageview\",\"url\":\"" + siteOrigin + "/\xff\"}", invalid, true},
		{"not a URL", collectHeaders(browserUA), `{"site":"demo","type":"pageview","url":"::not a url::"}`, invalid, true},
		{"future timestamp", collectHeaders(browserUA), fmt.Sprintf(`{"site":"demo","type":"pageview","url":"%s/","ts":%d}`, siteOrigin, time.Now().Add(time.Hour).UnixMilli()), invalid, true},
		{"wrong media type", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": siteOrigin, "User-Agent": browserUA}, good, http.StatusUnsupportedMediaType, true},
		{"empty", collectHeaders(browserUA), ``, invalid, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := s.do(t, "POST", "/api/v1/collect", c.headers, c.body)
			if !statusIs(got.status, c.status) {
				t.Errorf("status = %d, want %d (%s)", got.status, c.status, got.body)
			}
			if got.status >= 400 {
				if ct := got.header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("error Content-Type = %q, want application/problem+json", ct)
				}
			}
			if has := got.header.Get("Access-Control-Allow-Origin") == siteOrigin; has != c.cors {
				t.Errorf("CORS allowed = %v, want %v", has, c.cors)
			}
			if sc := got.header.Values("Set-Cookie"); len(sc) > 0 {
				t.Errorf("collect set a cookie: %v", sc)
			}
		})
	}
	var n int64
	s.app.DB.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM activity_events`).Scan(&n)
	if n != 2 {
		t.Errorf("events stored = %d, want the 2 accepted", n)
	}

	// Preflight: only for the site's origins.
	pre := s.do(t, "OPTIONS", "/api/v1/collect", map[string]string{"Origin": siteOrigin, "Access-Control-Request-Method": "POST"}, "")
	if pre.status != http.StatusNoContent || pre.header.Get("Access-Control-Allow-Origin") != siteOrigin || !strings.Contains(pre.header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight = %d %v", pre.status, pre.header)
	}
	if bad := s.do(t, "OPTIONS", "/api/v1/collect", map[string]string{"Origin": "https://evil.example"}, ""); bad.status != http.StatusForbidden || bad.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin = %d %v", bad.status, bad.header)
	}
}

func manyProps(n int) string {
	var b bytes.Buffer
	b.WriteString(`{"site":"demo","type":"event","url":"` + siteOrigin + `/","name":"x","props":{`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"p%d":%d`, i, i)
	}
	b.WriteString(`}}`)
	return b.String()
}

// M3 for issue 4's routes: the tracker, collection, reports and trends set
// no cookie; the tracker is small and cacheable.
func TestPromiseM3_AnalyticsSetsNoCookie(t *testing.T) {
	s := analyticsServer(t, "mixi.yaml")
	token := s.login(t, "analyst@example.org")
	for _, r := range []struct {
		method, path string
		headers      map[string]string
		body         string
		status       int
	}{
		{"GET", "/tracker.js", nil, "", 200},
		{"POST", "/api/v1/collect", collectHeaders(browserUA), `{"site":"demo","type":"pageview","url":"` + siteOrigin + `/x?q=cats"}`, 202},
		{"OPTIONS", "/api/v1/collect", map[string]string{"Origin": siteOrigin}, "", 204},
		{"GET", "/api/v1/trends", nil, "", 200},
		{"GET", "/api/v1/admin/analytics/pages", map[string]string{"Authorization": "Bearer " + token}, "", 200},
		{"GET", "/admin/analytics", map[string]string{"Authorization": "Bearer " + token}, "", 200},
	} {
		got := s.do(t, r.method, r.path, r.headers, r.body)
		if got.status != r.status {
			t.Errorf("%s %s = %d, want %d: %.200s", r.method, r.path, got.status, r.status, got.body)
		}
		if sc := got.header.Values("Set-Cookie"); len(sc) > 0 {
			t.Errorf("%s %s set cookies %v (promise M3)", r.method, r.path, sc)
		}
	}
	js := s.do(t, "GET", "/tracker.js", nil, "")
	if len(js.body) >= 2048 || !strings.Contains(js.header.Get("Content-Type"), "javascript") || js.header.Get("ETag") == "" ||
		!strings.Contains(js.header.Get("Cache-Control"), "public") {
		t.Errorf("tracker.js: %d bytes, headers %v", len(js.body), js.header)
	}
	if again := s.do(t, "GET", "/tracker.js", map[string]string{"If-None-Match": js.header.Get("ETag")}, ""); again.status != http.StatusNotModified {
		t.Errorf("conditional GET = %d, want 304", again.status)
	}
}

func TestReportAPIAndConsole(t *testing.T) {
	s := analyticsServer(t, "jmir.yaml")
	for i := 0; i < 3; i++ {
		h := collectHeaders(browserUA)
		h["X-Forwarded-For"] = "ignored" // no trusted proxy: the peer address counts
		if got := s.do(t, "POST", "/api/v1/collect", h, `{"site":"demo","type":"pageview","url":"`+siteOrigin+`/articles/1?q=Open+Access","referrer":"https://news.example/x"}`); got.status != 202 {
			t.Fatalf("collect = %d %s", got.status, got.body)
		}
	}
	if err := s.app.Activity.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	analyst := "Bearer " + s.login(t, "analyst@example.org")
	support := "Bearer " + s.login(t, "support@example.org")

	for _, c := range []struct {
		path, auth string
		status     int
	}{
		{"/api/v1/admin/analytics/pages", "", 401},
		{"/api/v1/admin/analytics/pages", support, 403},
		{"/api/v1/admin/analytics/nonsense", analyst, 404},
		{"/api/v1/admin/analytics/pages?site=other", analyst, 404},
		{"/api/v1/admin/analytics/pages?from=yesterday", analyst, invalid},
		{"/api/v1/admin/analytics/pages?limit=x", analyst, invalid},
		{"/api/v1/admin/analytics/timeseries?interval=hour", analyst, 200},
	} {
		h := map[string]string{}
		if c.auth != "" {
			h["Authorization"] = c.auth
		}
		if got := s.do(t, "GET", c.path, h, ""); !statusIs(got.status, c.status) {
			t.Errorf("GET %s = %d, want %d: %.200s", c.path, got.status, c.status, got.body)
		}
	}
	got := s.do(t, "GET", "/api/v1/admin/analytics/pages", map[string]string{"Authorization": analyst}, "")
	var rep struct {
		Site     string
		TimeZone string `json:"time_zone"`
		Rows     []struct {
			Value           string
			Views, Visitors int64
		}
	}
	if err := json.Unmarshal([]byte(got.body), &rep); err != nil || len(rep.Rows) != 1 || rep.Rows[0].Value != "/articles/1" || rep.Rows[0].Views != 3 || rep.Rows[0].Visitors != 1 {
		t.Errorf("pages report = %s", got.body)
	}
	if rep.TimeZone != "America/Toronto" {
		t.Errorf("time zone = %q, want the site's", rep.TimeZone)
	}
	page := s.do(t, "GET", "/admin/analytics", map[string]string{"Authorization": analyst}, "")
	for _, want := range []string{"<svg", "/articles/1", "open access", "news.example", "Search terms", "<table"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("console page lacks %q", want)
		}
	}
	if strings.Contains(page.body, "<script") {
		t.Error("the console page needs JavaScript")
	}
	if p := s.do(t, "GET", "/admin/analytics", map[string]string{"Authorization": support, "Accept": "text/html"}, ""); p.status != 403 {
		t.Errorf("console for support staff = %d, want 403", p.status)
	}
}

// J8 and M14: what is shared outside is anonymised, on both policies —
// groups under k visitor-days are left out, figures carry the stated
// noise, and only complete days are published.
//
// The visits happen on one day and the trends are read the next, on a
// fake clock, so the day of the visits is inside the range the trends
// cover and the k rule is really applied to them: a page with k-1
// visitor-days is left out while a page well above k is published. (Well
// above: with ε = 1 a page at exactly k would be left out whenever its
// noise is negative.)
func TestPromiseJ8_M14_TrendsAreAnonymised(t *testing.T) {
	const k = 10 // both policies' k_anonymity, checked below
	// Pages one short of k. Were the k rule applied to the noisy figure
	// only, each would show with probability about 0.27 (ε = 1); all 20
	// would stay hidden with probability 0.002.
	const rarePages = 20
	for _, policyFile := range []string{"jmir.yaml", "mixi.yaml"} {
		t.Run(policyFile, func(t *testing.T) {
			clk := clock.NewFake(time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC))
			s := analyticsServerWith(t, policyFile, app.Options{Clock: clk})
			visit := func(ua, page string) {
				t.Helper()
				if got := s.do(t, "POST", "/api/v1/collect", collectHeaders(ua), `{"site":"demo","type":"pageview","url":"`+siteOrigin+page+`"}`); got.status != 202 {
					t.Fatalf("collect %s = %d %s", page, got.status, got.body)
				}
			}
			// visitor is the user agent of the i-th visitor: they share
			// one address, so the browser string tells them apart.
			visitor := func(i int) string {
				return strings.Replace(browserUA, "Chrome/131.0.0.0", fmt.Sprintf("Chrome/131.0.%d.0", i), 1)
			}
			// One visitor (one address and browser) reads a rare page many
			// times: fewer than k visitor-days, so it must never appear.
			for i := 0; i < 30; i++ {
				visit(browserUA, "/secret-page")
			}
			// The same k-1 visitors read each of several rare pages: one
			// short of k. Several, because noise could lift one of them to
			// k if only the noisy figure were checked against k.
			for p := 0; p < rarePages; p++ {
				for i := 0; i < k-1; i++ {
					visit(visitor(i), fmt.Sprintf("/rare-page-%d", p))
				}
			}
			// 3k visitors read a popular page.
			for i := 0; i < 3*k; i++ {
				visit(visitor(100+i), "/popular-page")
			}
			if err := s.app.Activity.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			const visitDay = "2026-11-30" // in both sites' time zones at 15:00 UTC
			clk.Advance(24 * time.Hour)
			today := clk.Now().Format(time.DateOnly) // also both sites' date
			if got := s.do(t, "GET", "/api/v1/trends?to="+today, nil, ""); !statusIs(got.status, invalid) {
				t.Errorf("trends including today = %d, want 400 or 422", got.status)
			}
			got := s.do(t, "GET", "/api/v1/trends", nil, "")
			if got.status != 200 {
				t.Fatalf("trends = %d %s", got.status, got.body)
			}
			var tr struct {
				From, To string
				Privacy  struct {
					K       int     `json:"k"`
					Epsilon float64 `json:"epsilon_per_count"`
					Unit    string
				}
				Days []struct {
					Day         string
					VisitorDays int64 `json:"visitor_days"`
				}
				Pages []struct {
					Value       string
					VisitorDays int64 `json:"visitor_days"`
				}
				Suppressed int `json:"suppressed_groups"`
			}
			if err := json.Unmarshal([]byte(got.body), &tr); err != nil {
				t.Fatalf("trends body %s: %v", got.body, err)
			}
			if tr.Privacy.K != k || tr.Privacy.Epsilon != 1 || tr.Privacy.Unit != "visitor-days" {
				t.Errorf("privacy = %+v, want k=10, ε=1 per count, visitor-days", tr.Privacy)
			}
			if tr.From > visitDay || tr.To < visitDay {
				t.Fatalf("trends cover %s to %s, not the day of the visits %s", tr.From, tr.To, visitDay)
			}
			if strings.Contains(got.body, "secret-page") {
				t.Error("a page with one visitor was published")
			}
			if strings.Contains(got.body, "rare-page") {
				t.Errorf("a page with %d visitor-days (k = %d) was published: %s", k-1, k, got.body)
			}
			popular := false
			for _, p := range tr.Pages {
				if p.Value == "/popular-page" {
					popular = true
					if p.VisitorDays < k {
						t.Errorf("the popular page is published with %d visitor-days, under k = %d", p.VisitorDays, k)
					}
				}
			}
			if !popular {
				t.Errorf("the page with %d visitor-days (k = %d) is not published: %s", 3*k, k, got.body)
			}
			dayShown := false
			for _, d := range tr.Days {
				dayShown = dayShown || d.Day == visitDay
			}
			if !dayShown {
				t.Errorf("the day of the visits (%d visitor-days) is not published: %s", 1+(k-1)+3*k, got.body)
			}
			if tr.Suppressed < 1+rarePages {
				t.Errorf("suppressed groups = %d, want at least the %d small pages", tr.Suppressed, 1+rarePages)
			}
			if got.header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("trends are not readable from other origins")
			}
		})
	}
}
