package rights_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"regexp"
	"steward/internal/identity/identitytest"
	"strings"
	"testing"
	"time"

	"steward/internal/app"
	"steward/internal/clock"
	"steward/internal/identity"
	"steward/internal/mail/mailtest"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// web is a whole Steward, started through app.Open as the binary starts
// it, served over HTTP, with a test SMTP server and a fake clock.
type web struct {
	t     testing.TB
	ctx   context.Context
	a     *app.App
	ts    *httptest.Server
	smtp  *mailtest.Server
	clock *clock.Fake
	env   *env // the seeder's view of the same database
}

const testPassword = "correct horse battery staple lantern"

var roomyLimits = identity.Limits{
	Window: 15 * time.Minute, LoginAccount: 1000, LoginIP: 1000, SignupAccount: 1000, SignupIP: 1000,
	ResetAccount: 1000, ResetIP: 1000, MemoryPerSec: 1000, MemoryBurst: 1000, MemoryMaxIPs: 1000,
}

// startWeb starts Steward on the engine of the subtest ("sqlite" or
// "postgres") under an embedded example policy.
func startWeb(t *testing.T, engine, policyFile string) *web {
	t.Helper()
	ctx := context.Background()
	w := &web{t: t, ctx: ctx, clock: clock.NewFake(t0), smtp: mailtest.Start(t)}
	cfg := app.Config{
		DataDir: t.TempDir(), PolicyPath: "embedded:" + policyFile, SMTPURL: w.smtp.URL(),
		MailFrom: "Steward <steward@example.org>", BaseURL: "http://steward.test", Addr: "127.0.0.1:0",
	}
	if engine == "postgres" {
		cfg.DatabaseURL = storetest.PostgresURL(t)
	}
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32))
	getenv := func(k string) string {
		if k == "STEWARD_MASTER_KEY" {
			return key
		}
		return ""
	}
	a, err := app.Open(ctx, cfg, getenv, slog.New(slog.DiscardHandler), app.Options{Clock: w.clock, Identity: func(d *identity.Deps) {
		d.Config.Argon2 = fastArgon2
		d.Config.Limits = roomyLimits
	}})
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	w.a = a
	w.ts = httptest.NewServer(a.Handler)
	t.Cleanup(w.ts.Close)
	reg, err := schema.Registry()
	if err != nil {
		t.Fatal(err)
	}
	w.env = &env{t: t, ctx: ctx, db: a.DB, clock: w.clock, pol: a.Policy.Policy, ver: a.Policy.Version, reg: reg, subjects: a.Subjects,
		door: a.Door, audit: a.Audit, jobs: a.Jobs, outbox: a.Outbox, identity: a.Identity, rights: a.Rights}
	return w
}

// eachWeb runs fn on both engines.
func eachWeb(t *testing.T, policyFile string, fn func(t *testing.T, w *web)) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) { fn(t, startWeb(t, engine, policyFile)) })
	}
}

// run runs due jobs (mail delivery included) until none is left.
func (w *web) run() {
	w.t.Helper()
	for range 4 {
		n, err := w.a.Jobs.RunDue(w.ctx)
		if err != nil {
			w.t.Fatalf("jobs: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

type client struct {
	w     *web
	http  *http.Client
	token string
}

func (w *web) anon() *client {
	jar, _ := cookiejar.New(nil)
	return &client{w: w, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", truncate(string(r.body), 500), err)
	}
}

func (c *client) do(method, path string, body any) resp {
	c.w.t.Helper()
	c.w.clock.Advance(time.Millisecond)
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.w.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.w.ts.URL+path, rd)
	if err != nil {
		c.w.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// want checks the status of an answer.
func want(t testing.TB, r resp, status int, what string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, truncate(string(r.body), 600))
	}
}

// wantProblem checks a problem+json answer with a status and type code.
func wantProblem(t testing.TB, r resp, status int, code, what string) {
	t.Helper()
	want(t, r, status, what)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	var p struct {
		Type, Detail string
	}
	r.json(t, &p)
	if !strings.HasSuffix(p.Type, "/"+code) {
		t.Errorf("%s: problem type %q, want …/%s", what, p.Type, code)
	}
}

var verifyTokenRE = regexp.MustCompile(`/verify-email\?token=([A-Za-z0-9_%\-]+)`)

// member signs up, verifies the address from the mail it received, and
// logs in.
func (w *web) member(email, name string) (*client, string) {
	w.t.Helper()
	c := w.anon()
	want(w.t, c.do("POST", "/api/v1/accounts", map[string]any{"name": name, "email": email, "password": testPassword, "age_confirmed": true}), 202, "sign up")
	w.run()
	m := w.smtp.WaitFor(w.t, mailtest.SentTo(email), 5*time.Second)
	match := verifyTokenRE.FindStringSubmatch(m.Text)
	if match == nil {
		w.t.Fatalf("no verification link in %q", m.Text)
	}
	tok := strings.ReplaceAll(match[1], "%3D", "=")
	want(w.t, c.do("POST", "/api/v1/email-verifications/confirm", map[string]string{"token": tok}), 200, "verify")
	return w.login(email)
}

func (w *web) login(email string) (*client, string) {
	w.t.Helper()
	c := w.anon()
	r := c.do("POST", "/api/v1/sessions", map[string]string{"email": email, "password": testPassword})
	want(w.t, r, 201, "login")
	var sc struct{ Token string }
	r.json(w.t, &sc)
	c.token = sc.Token
	// Staff give the second factor their role requires.
	identitytest.PassSecondFactor(w.t, w.a.Identity, sc.Token, w.a.Clock.Now())
	var me struct{ ID string }
	c.do("GET", "/api/v1/me", nil).json(w.t, &me)
	return c, me.ID
}

type requestOut struct {
	ID            string          `json:"id"`
	Status        string          `json:"status"`
	DueAt         time.Time       `json:"due_at"`
	ReceivedAt    time.Time       `json:"received_at"`
	Download      string          `json:"download"`
	NeedsReview   bool            `json:"needs_review"`
	RefusalReason string          `json:"refusal_reason"`
	Result        json.RawMessage `json:"result"`
	Token         string          `json:"token"`
	Overdue       bool            `json:"overdue"`
	Extended      bool            `json:"extended"`
	VerifyBy      time.Time       `json:"verify_by"`
}

func (c *client) file(body map[string]any) requestOut {
	c.w.t.Helper()
	r := c.do("POST", "/api/v1/me/requests", body)
	want(c.w.t, r, 202, "file "+body["type"].(string))
	var out requestOut
	r.json(c.w.t, &out)
	return out
}

func (c *client) request(id string) requestOut {
	c.w.t.Helper()
	r := c.do("GET", "/api/v1/me/requests/"+id, nil)
	want(c.w.t, r, 200, "get request")
	var out requestOut
	r.json(c.w.t, &out)
	return out
}

func unzip(t testing.TB, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("not a ZIP: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		out[f.Name] = b
	}
	return out
}

var _ = store.SQLite
