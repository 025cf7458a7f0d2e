package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"steward/examples"
	"steward/internal/app/services"
	"steward/internal/audit"
	"steward/internal/blob/blobtest"
	"steward/internal/clock"
	"steward/internal/content"
	"steward/internal/door"
	"steward/internal/identity"
	"steward/internal/identity/identitytest"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/policy"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/support"
)

// modules are every module's migrations: the layer runs on all services.
func modules() []store.Migrations { return schema.Migrations() }

// fastArgon2 keeps the suite quick; identity's own tests check the
// production parameters.
var fastArgon2 = identity.Argon2{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// roomyLimits let a test walk every route as several people from one
// address; identity's own tests check the real limits.
var roomyLimits = identity.Limits{
	Window: 15 * time.Minute, LoginAccount: 1000, LoginIP: 1000, SignupAccount: 1000, SignupIP: 1000,
	ResetAccount: 1000, ResetIP: 1000, MemoryPerSec: 1000, MemoryBurst: 1000, MemoryMaxIPs: 1000,
}

// logBuffer collects log output for tests that read it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// env is a whole HTTP layer on every real service, built the way the app
// builds them (services.Build), on a fake clock.
type env struct {
	t        testing.TB
	db       *store.DB
	clock    *clock.Fake
	svc      *services.Services
	policy   *policy.Policy
	version  policy.Version
	identity *identity.Service
	audit    *audit.Log
	outbox   *mail.Outbox
	runner   *jobs.Runner
	smtp     *mailtest.Server
	srv      *server
	ts       *httptest.Server
	logs     *logBuffer
	// secrets are the authenticator keys staff enrolled, by address.
	secrets map[string]string
}

type envOptions struct {
	policyFile string // an embedded example; default mixi.yaml
	policyData []byte // instead of policyFile
	config     Config
	extra      []route
	tls        bool
	smtp       bool
	// publish lists earlier policies to publish first (for version tests).
	publish [][]byte
	// uploads bounds members' uploads (content's defaults when zero);
	// blobURL keeps them elsewhere than a temporary directory (an S3
	// gateway's bucket).
	uploads content.Limits
	blobURL string
	// supportAddress is the support desk's mail address ("" = none);
	// supportLimits bound what a request holds (the desk's defaults when
	// zero).
	supportAddress string
	supportLimits  support.Limits
	// getenv is the environment the services read (the client secrets of
	// the policy's identity providers); nil is an empty one.
	getenv func(string) string
	// paymentSecret signs the payment processor's webhook deliveries.
	paymentSecret string
}

func loadExample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(examples.FS, name)
	if err != nil {
		t.Fatalf("read example %s: %v", name, err)
	}
	return b
}

func newEnv(t testing.TB, db *store.DB, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	if o.policyFile == "" {
		o.policyFile = "mixi.yaml"
	}
	data := o.policyData
	if data == nil {
		data = loadExample(t, o.policyFile)
	}
	clk := clock.NewFake(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	for i, earlier := range o.publish {
		p, err := policy.Parse("earlier.yaml", earlier)
		if err != nil {
			t.Fatalf("parse earlier policy %d: %v", i, err)
		}
		if _, _, err := policy.Publish(ctx, db, p, clk.Now()); err != nil {
			t.Fatalf("publish earlier policy %d: %v", i, err)
		}
		clk.Advance(24 * time.Hour)
	}
	pol, err := policy.Parse(o.policyFile, data)
	if err != nil {
		t.Fatalf("parse policy: %v", err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	master, err := door.NewMaster(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if o.config.BaseURL == "" {
		o.config.BaseURL = "http://steward.test"
	}
	cfg := services.Config{BaseURL: o.config.BaseURL, MailFrom: "Steward <steward@example.org>", ServesDemo: o.config.DemoDir != nil,
		Uploads: o.uploads, BlobURL: o.blobURL, S3AccessKey: blobtest.AccessKey, S3SecretKey: blobtest.SecretKey,
		SupportAddress: o.supportAddress, Support: o.supportLimits, Getenv: o.getenv, PaymentSecret: o.paymentSecret}
	e := &env{t: t, db: db, clock: clk, logs: logs}
	if o.smtp {
		e.smtp = mailtest.Start(t)
		cfg.SMTPURL = e.smtp.URL()
	}
	svc, err := services.Build(ctx, db, pol, master, clk, log, cfg, services.Options{Identity: func(d *identity.Deps) {
		d.Config.Argon2, d.Config.Limits = fastArgon2, roomyLimits
	}})
	if err != nil {
		t.Fatalf("services: %v", err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	e.svc, e.policy, e.version = svc, svc.Policy.Policy, svc.Policy.Version
	e.identity, e.audit, e.outbox, e.runner = svc.Identity, svc.Audit, svc.Outbox, svc.Jobs
	if e.srv, err = newServer(webDeps(svc, o.config)); err != nil {
		t.Fatalf("web: %v", err)
	}
	h := e.srv.handler(o.extra)
	if o.tls {
		e.ts = httptest.NewTLSServer(h)
	} else {
		e.ts = httptest.NewServer(h)
	}
	t.Cleanup(e.ts.Close)
	return e
}

// webDeps puts the web layer on the services, as the app does.
func webDeps(s *services.Services, cfg Config) Deps {
	return Deps{
		Ready: s.DB.PingContext, Clock: s.Clock, Log: s.Log, Metrics: s.Metrics, Policy: s.Policy,
		Versions: s.Versions, Identity: s.Identity, Audit: s.Audit, Outbox: s.Outbox, Consent: s.Consent,
		Newsletters: s.Newsletters, Notices: s.Notices, Rights: s.Rights, Activity: s.Activity, Analytics: s.Analytics, Content: s.Content,
		Support: s.Support, Payment: s.Payment, OpenID: s.OpenID, Retention: s.Retention, Disclosure: s.Disclosure, Config: cfg,
	}
}

// sqliteEnv is the common case: a fresh SQLite database.
func sqliteEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	return newEnv(t, storetest.SQLite(t, modules()), o)
}

// client returns an HTTP client that does not follow redirects and keeps
// cookies.
func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := *e.ts.Client() // a copy: ts.Client() returns one shared client
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

type resp struct {
	*http.Response
	body []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s body %q: %v", r.Request.URL.Path, r.body, err)
	}
}

// do sends a request. body may be nil, a string, []byte or url.Values
// (sent as a form); hdr adds headers (a Content-Type of application/json
// is the default for string and []byte bodies).
func (e *env) do(c *http.Client, method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	// Time moves on a little with every request, so "newest" is
	// well-defined for rows written by consecutive requests.
	e.clock.Advance(time.Millisecond)
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "application/json"
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/json"
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = e.client()
	}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("read %s %s: %v", method, path, err)
	}
	return resp{res, b}
}

const testPassword = "correct horse battery staple lantern"

// member signs up, verifies (reading the token from the outbox) and logs
// in, returning a client holding the session cookie and the bearer token.
func (e *env) member(email, name string) (*http.Client, string) {
	e.t.Helper()
	r := e.do(nil, "POST", "/api/v1/accounts", map[string]any{"name": name, "email": email, "password": testPassword, "age_confirmed": true})
	if r.StatusCode != http.StatusAccepted {
		e.t.Fatalf("sign up %s: status %d: %s", email, r.StatusCode, r.body)
	}
	tok := e.mailedToken(email, "/verify-email")
	r = e.do(nil, "POST", "/api/v1/email-verifications/confirm", map[string]string{"token": tok})
	if r.StatusCode != http.StatusOK {
		e.t.Fatalf("verify %s: status %d: %s", email, r.StatusCode, r.body)
	}
	return e.login(email, testPassword)
}

func (e *env) login(email, password string) (*http.Client, string) {
	e.t.Helper()
	c := e.client()
	r := e.do(c, "POST", "/api/v1/sessions", map[string]string{"email": email, "password": password})
	if r.StatusCode != http.StatusCreated {
		e.t.Fatalf("login %s: status %d: %s", email, r.StatusCode, r.body)
	}
	var sc sessionCreated
	r.json(e.t, &sc)
	return c, sc.Token
}

// staff creates a staff account and logs it in, with the second factor
// its role requires.
func (e *env) staff(email, role string) (*http.Client, string) {
	e.t.Helper()
	if err := e.identity.CreateStaff(context.Background(), email, role, testPassword); err != nil {
		e.t.Fatalf("create staff: %v", err)
	}
	c, tok := e.login(email, testPassword)
	if e.secrets == nil {
		e.secrets = map[string]string{}
	}
	e.secrets[email] = identitytest.PassSecondFactor(e.t, e.identity, tok, e.clock.Now())
	return c, tok
}

// staffLogin logs staff created by staff in again, giving the code of the
// authenticator they enrolled (a step later: a code is never taken twice).
func (e *env) staffLogin(email string) (*http.Client, string) {
	e.t.Helper()
	c, tok := e.login(email, testPassword)
	e.clock.Advance(30 * time.Second)
	r := e.do(c, "POST", "/api/v1/sessions/current/second-factor", map[string]string{"code": identitytest.Code(e.t, e.secrets[email], e.clock.Now())})
	if r.StatusCode != http.StatusNoContent {
		e.t.Fatalf("second factor of %s: %d %s", email, r.StatusCode, r.body)
	}
	return c, tok
}

var tokenRE = regexp.MustCompile(`token=([A-Za-z0-9_%\-]+)`)

// mailedToken finds the newest outbox message to email with a link to
// path and returns its token.
func (e *env) mailedToken(email, path string) string {
	e.t.Helper()
	list, err := e.outbox.List(context.Background(), mail.AsRecipient, 100)
	if err != nil {
		e.t.Fatalf("outbox: %v", err)
	}
	for _, m := range list {
		if m.To != email {
			continue
		}
		i := strings.Index(m.Text, path+"?token=")
		if i < 0 {
			continue
		}
		match := tokenRE.FindStringSubmatch(m.Text[i:])
		if match == nil {
			continue
		}
		tok, err := url.QueryUnescape(match[1])
		if err != nil {
			e.t.Fatal(err)
		}
		return tok
	}
	e.t.Fatalf("no mail to %s with a %s link", email, path)
	return ""
}

// assertProblem checks a problem+json answer with the given status and
// type code.
func assertProblem(t testing.TB, r resp, status int, code string) problem {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status = %d, want %d; body %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s %s: Content-Type = %q, want application/problem+json", r.Request.Method, r.Request.URL.Path, ct)
	}
	var p problem
	r.json(t, &p)
	if code != "" && p.Type != problemTypeBase+code {
		t.Errorf("%s %s: type = %q, want %q", r.Request.Method, r.Request.URL.Path, p.Type, problemTypeBase+code)
	}
	if p.Status != status {
		t.Errorf("problem status = %d, want %d", p.Status, status)
	}
	if p.Instance == "" || p.Instance != r.Header.Get("X-Request-Id") {
		t.Errorf("problem instance = %q, want the request id %q", p.Instance, r.Header.Get("X-Request-Id"))
	}
	return p
}
