// Package web is Steward's HTTP layer. It owns the route table
// (routes.go), the middleware every request passes through (request ids,
// access log, metrics, panic recovery, security headers, body limits,
// cross-origin protection, trusted-proxy handling, authentication), the one
// mapping from fault codes to RFC 9457 problem responses, the JSON
// decode/encode helpers, the server-rendered pages and their embedded
// templates and stylesheet, and the OpenAPI document served at
// /openapi.json. Handlers decode, call a domain package, and encode:
// nothing else lives here.
package web

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"

	"github.com/prometheus/client_golang/prometheus"

	"steward/internal/activity"
	"steward/internal/analytics"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/consent"
	"steward/internal/content"
	"steward/internal/disclosure"
	"steward/internal/identity"
	"steward/internal/mail"
	"steward/internal/newsletter"
	"steward/internal/notice"
	"steward/internal/openid"
	"steward/internal/payment"
	"steward/internal/policy"
	"steward/internal/retention"
	"steward/internal/rights"
	"steward/internal/support"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// SessionCookie is the name of the one cookie Steward sets. Every policy
// must declare it as a functional cookie (promise M3).
const SessionCookie = "steward_session"

// defaultMaxBody bounds request bodies unless Config.MaxBodyBytes says
// otherwise; no endpoint of this layer needs more.
const defaultMaxBody = 1 << 20

// Config holds the HTTP settings the operator controls.
type Config struct {
	// BaseURL is the public URL of the server (used in links and as a
	// trusted origin for cross-origin protection behind a proxy).
	BaseURL string
	// Dev is development mode: payment endpoints accept plain HTTP and
	// the demo site is served.
	Dev bool
	// TrustedProxies are the peers whose X-Forwarded-For / -Proto and
	// Forwarded headers are believed.
	TrustedProxies []netip.Prefix
	// TLS says the server itself terminates TLS: cookies are Secure and
	// HSTS is sent.
	TLS bool
	// DemoDir, when set, is served at /demo/.
	DemoDir fs.FS
	// MaxBodyBytes bounds request bodies; 0 means 1 MiB.
	MaxBodyBytes int64
	// MetricsToken, when set, lets a scraper outside loopback and the
	// trusted proxies read /metrics with it as a Bearer token.
	MetricsToken string
}

// Deps are everything the HTTP layer calls: every service is required
// (Metrics may be nil: a private registry is used).
type Deps struct {
	// Ready answers nil while Steward can serve requests (the database
	// answers); /readyz reports it.
	Ready       func(context.Context) error
	Clock       clock.Clock
	Log         *slog.Logger
	Metrics     *prometheus.Registry
	Policy      policy.Published // the policy in force
	Versions    *policy.Archive
	Identity    *identity.Service
	Audit       *audit.Log
	Outbox      *mail.Outbox
	Consent     *consent.Ledger
	Newsletters *newsletter.Service
	Notices     *notice.Service
	Rights      *rights.Service
	Activity    *activity.Collector
	Analytics   *analytics.Service
	Content     *content.Service
	Support     *support.Service
	Payment     *payment.Service
	OpenID      *openid.Service // nil: no application signs people in
	Retention   *retention.Service
	Disclosure  *disclosure.Service
	Config      Config
}

// server holds what the handlers share. It is built once by New and never
// changes afterwards.
type server struct {
	d        Deps
	log      *slog.Logger
	pages    map[string]*template.Template
	metrics  *httpMetrics
	maxBody  int64
	base     *url.URL // nil when BaseURL is empty
	cookies  map[string]bool
	openapi  []byte
	routeTab []route
	ids      *requestIDs
}

// New builds the HTTP handler for the whole server.
func New(d Deps) (http.Handler, error) {
	s, err := newServer(d)
	if err != nil {
		return nil, err
	}
	return s.handler(nil), nil
}

func newServer(d Deps) (*server, error) {
	for name, missing := range map[string]bool{
		"Ready": d.Ready == nil, "Clock": d.Clock == nil, "Log": d.Log == nil, "Policy": d.Policy.Policy == nil,
		"Versions": d.Versions == nil, "Identity": d.Identity == nil, "Audit": d.Audit == nil, "Outbox": d.Outbox == nil, "Consent": d.Consent == nil,
		"Newsletters": d.Newsletters == nil, "Notices": d.Notices == nil, "Rights": d.Rights == nil,
		"Activity": d.Activity == nil, "Analytics": d.Analytics == nil, "Content": d.Content == nil, "Support": d.Support == nil, "Payment": d.Payment == nil,
	} {
		if missing {
			return nil, fmt.Errorf("web: Deps.%s is required", name)
		}
	}
	if d.Metrics == nil {
		d.Metrics = prometheus.NewRegistry()
	}
	s := &server{d: d, log: d.Log, maxBody: d.Config.MaxBodyBytes, ids: newRequestIDs()}
	if s.maxBody <= 0 {
		s.maxBody = defaultMaxBody
	}
	if d.Config.BaseURL != "" {
		u, err := url.Parse(d.Config.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("web: base URL %q must be an absolute http(s) URL", d.Config.BaseURL)
		}
		s.base = u
	}
	s.cookies = functionalCookies(d.Policy.Policy)
	if !s.cookies[SessionCookie] {
		return nil, fmt.Errorf("web: the policy must declare the functional cookie %q, the only cookie Steward sets (promise M3)", SessionCookie)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s.pages = pages
	m, err := newHTTPMetrics(d.Metrics)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.routeTab = s.routes()
	doc, err := s.openAPIDocument()
	if err != nil {
		return nil, err
	}
	s.openapi = doc
	return s, nil
}

// handler assembles the middleware around the route table. extra routes
// are for tests that need a route the product does not have yet (such as a
// payment endpoint).
func (s *server) handler(extra []route) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range append(append([]route(nil), s.routeTab...), extra...) {
		mux.Handle(rt.pattern(), s.instrument(rt.pattern(), rt.h))
	}
	var h http.Handler = s.dispatch(mux)
	h = s.gpc(h) // a signed-in member's Sec-GPC is recorded on every route
	h = s.requireTLS(h)
	h = s.crossOrigin(h)
	h = s.limitBody(h)
	h = s.securityHeaders(h)
	h = s.recoverPanics(h)
	h = s.observe(h) // outermost: sees every status, including recovered panics
	return h
}

// functionalCookies returns the names of the cookies the policy declares
// as functional, the only ones Steward may set.
func functionalCookies(p *policy.Policy) map[string]bool {
	out := map[string]bool{}
	for _, c := range p.Cookies {
		if c.Kind == policy.CookieFunctional {
			out[c.Name] = true
		}
	}
	return out
}
