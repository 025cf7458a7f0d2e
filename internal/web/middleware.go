package web

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"steward/internal/fault"
)

// reqInfo is what the middleware learns about a request and the inner
// layers need: its id for logs and problem bodies, the client as seen
// through trusted proxies, and the route pattern the mux chose (filled in
// by instrument, read back by observe for logs and metrics).
type reqInfo struct {
	id      string
	client  client
	pattern string
}

type ctxKey struct{}

// infoOf returns the request's info. Requests that did not pass through
// observe (only possible in tests of a single handler) get a fresh one.
func infoOf(r *http.Request) *reqInfo {
	if i, ok := r.Context().Value(ctxKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// statusWriter records the status and whether anything was written, so
// the access log and the panic handler know what the client got.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status = code
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status = http.StatusOK
		w.wrote = true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe gives the request an id, resolves the client, and after the
// response logs one access line and records metrics. The line carries the
// route pattern, never the raw path or query (they may hold tokens or
// emails), and the client's network truncated to /24 or /48, never the
// full address.
//
// The collect endpoint is the exception to one line per request: it takes
// one request per page view of every visitor, and formatting and writing a
// line for each cost more CPU than the rest of the middleware together
// (measured with TestLoadCollect). Its successful answers (202 and 204)
// are only counted in the metrics; its errors are logged like any other
// request's.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// One allocation for the info and the status writer.
		st := &observed{info: reqInfo{id: s.ids.next(), client: s.clientOf(r)}}
		info, sw := &st.info, &st.sw
		sw.ResponseWriter = w
		w.Header()["X-Request-Id"] = []string{info.id}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, info))
		defer func() {
			status := sw.status
			if !sw.wrote {
				status = http.StatusOK
			}
			route := info.pattern
			if route == "" {
				route = "unmatched"
			}
			dur := time.Since(start)
			s.metrics.observe(route, r.Method, status, dur)
			if route == collectRoute && status < 300 {
				return // see above: collect successes are counted, not logged
			}
			if !s.log.Enabled(r.Context(), slog.LevelInfo) {
				return
			}
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Duration("duration", dur),
				slog.String("request_id", info.id),
				slog.String("network", truncatedNetwork(info.client.IP)),
			)
		}()
		next.ServeHTTP(sw, r)
	})
}

// collectRoute is the route pattern of the tracker's collect endpoint,
// collectPath its path.
const (
	collectRoute = "POST " + collectPath
	collectPath  = "/api/v1/collect"
)

// observed is what observe allocates per request.
type observed struct {
	info reqInfo
	sw   statusWriter
}

// requestIDs hands out request ids: a random prefix drawn once per server
// and a counter. Ids only correlate a response, its problem body and the
// log lines; they grant nothing, so they need to be unique, not
// unguessable, and a counter spares a crypto/rand read per request. The
// prefix keeps ids of different processes and restarts apart.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs { return &requestIDs{prefix: rand.Text()[:13]} }

func (g *requestIDs) next() string {
	var b [13 + 13]byte
	copy(b[:], g.prefix)
	n := g.n.Add(1)
	// 13 base-32 digits hold 65 bits: the counter never wraps.
	const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	for i := len(b) - 1; i >= 13; i-- {
		b[i] = digits[n&31]
		n >>= 5
	}
	return string(b[:])
}

// instrument records which route pattern serves the request.
func (s *server) instrument(pattern string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoOf(r).pattern = pattern
		h.ServeHTTP(w, r)
	})
}

// dispatch serves matched routes through the mux and answers unmatched
// paths and methods with a problem (or an HTML page) instead of the mux's
// plain text, keeping the Allow header of a 405.
func (s *server) dispatch(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &probeWriter{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
			s.fail(w, r, &httpError{status: http.StatusMethodNotAllowed, code: fault.Unsupported, msg: "this method is not allowed here"})
			return
		}
		s.fail(w, r, fault.New(fault.NotFound, "no such page"))
	})
}

// probeWriter captures what the mux would answer for an unmatched request.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
func (p *probeWriter) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

// recoverPanics turns a handler panic into a 500 problem, logging the
// panic and stack with the request id. http.ErrAbortHandler keeps its
// meaning (abort the response silently).
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.LogAttrs(r.Context(), slog.LevelError, "web: handler panic",
				slog.String("request_id", infoOf(r).id),
				slog.String("route", infoOf(r).pattern),
				slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())),
			)
			if sw, ok := w.(*statusWriter); ok && sw.wrote {
				// Part of the response is out: the only honest thing
				// left is to break the connection.
				panic(http.ErrAbortHandler)
			}
			s.fail(w, r, fault.New(fault.Internal, "internal error"))
		}()
		next.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows only Steward's own stylesheet and forms:
// the pages need no script, no inline style and no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Values of the headers on every response, shared between responses (see
// varyOrigin).
var (
	nosniff = []string{"nosniff"}
	noStore = []string{"no-store"}
)

// securityHeaders sets the headers every response carries. Responses are
// not cached by default because most carry personal data; public assets
// override that.
func (s *server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Assigned by canonical key instead of Set: Set allocates a slice
		// per header on every request.
		h := w.Header()
		h["X-Content-Type-Options"] = nosniff
		h["Cache-Control"] = noStore
		// The tracker's beacon gets no document: its answer is an empty
		// 202/204 or a problem no browser renders (nosniff). The headers
		// that only govern a document are left off the busiest endpoint,
		// where each header costs a copy and a sort at WriteHeader.
		if r.Method != http.MethodPost || r.URL.Path != collectPath {
			h["Content-Security-Policy"] = []string{contentSecurityPolicy}
			h["X-Frame-Options"] = []string{"DENY"}
			// no-referrer: verification and reset links carry tokens in
			// the query, which must not leak to any linked site.
			h["Referrer-Policy"] = []string{"no-referrer"}
			h["Cross-Origin-Opener-Policy"] = []string{"same-origin"}
		}
		if s.d.Config.TLS || r.TLS != nil || infoOf(r).client.HTTPS {
			h["Strict-Transport-Security"] = []string{"max-age=63072000; includeSubDomains"}
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses bodies over the limit: at once when the declared
// length is too long, and while reading otherwise (the decode helpers turn
// the reader's error into a 413 problem).
func (s *server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUpload(r) {
			next.ServeHTTP(w, r) // the upload handler applies the content limits
			return
		}
		if r.ContentLength > s.maxBody {
			w.Header().Set("Connection", "close")
			s.fail(w, r, fault.New(fault.TooLarge, "the request body is larger than %d bytes", s.maxBody))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// isUpload reports whether r posts a file to an item or a profile picture,
// or posts a support form that may carry files (the routes whose body may
// be larger than the general limit; their handlers bound each part).
func isUpload(r *http.Request) bool {
	if r.URL.Path == "/api/v1/me/picture" && r.Method == http.MethodPut {
		return true
	}
	if r.Method != http.MethodPost {
		return false
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/me/content/"); ok {
		return strings.HasSuffix(rest, "/files") && strings.Count(rest, "/") == 1
	}
	return isSupportUpload(r.URL.Path)
}

// isSupportUpload reports whether a path is one of the support desk's
// forms with files: a new request, a requester's message, staff's answer
// or recorded call, each on the API and as a page.
func isSupportUpload(path string) bool {
	if path == "/api/v1/me/support" || path == "/account/support" {
		return true
	}
	for _, f := range []struct{ prefix, ends string }{
		{"/api/v1/me/support/", "/messages"}, {"/account/support/", "/messages"},
		{"/api/v1/admin/support/", "/answers"}, {"/api/v1/admin/support/", "/recordings"},
		{"/admin/support/", "/answers"}, {"/admin/support/", "/recordings"},
	} {
		if rest, ok := strings.CutPrefix(path, f.prefix); ok && strings.HasSuffix(rest, f.ends) && strings.Count(rest, "/") == 1 {
			return true
		}
	}
	return false
}

// crossOriginExempt lists the endpoints that must accept unsafe requests
// from other origins: the tracker's collect endpoint (it changes nothing
// a member owns) and the RFC 8058 one-click unsubscribe (mail clients post
// it from anywhere, authorised by its signed token). Everything else that
// is not GET, HEAD or OPTIONS is refused when a browser says it comes from
// another origin, which covers cookie-authenticated forms and login CSRF.
func crossOriginExempt() []string {
	return []string{
		"POST /api/v1/collect",
		"POST /newsletters/unsubscribe",
		// A guest's comment from the operator's site: it acts on no
		// session, the handler takes only the site's declared origins,
		// and nothing shows until the mailed link is followed.
		"POST /api/v1/threads/{site}/comments",
		// The payment processor's events: it acts on no session, and the
		// handler takes only deliveries signed with the endpoint secret.
		"POST /api/v1/payments/webhook",
		// The OpenID provider's token, userinfo, revocation and
		// introspection endpoints: applications call them from their
		// servers, authenticated by their client secret or access token,
		// never by a session.
		"POST /oidc/oauth/token",
		"POST /oidc/userinfo",
		"POST /oidc/revoke",
		"POST /oidc/oauth/introspect",
	}
}

func (s *server) crossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	for _, p := range crossOriginExempt() {
		cop.AddInsecureBypassPattern(p)
	}
	if s.base != nil {
		// Behind a proxy that rewrites Host, the public origin is still
		// ours.
		_ = cop.AddTrustedOrigin(s.base.Scheme + "://" + s.base.Host)
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, fault.New(fault.Forbidden, "cross-origin request refused"))
	}))
	checked := cop.Handler(s.refererCheck(next))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The collect endpoint is exempt, and it is called cross-origin
		// on every page view: the protection would find that out only
		// after matching the request against its own mux of exempt
		// patterns. The exact method and clean path are what that
		// pattern matches; anything else takes the full check.
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/collect" {
			next.ServeHTTP(w, r)
			return
		}
		checked.ServeHTTP(w, r)
	})
}

// refererCheck refuses an unsafe request whose only sign of origin is a
// Referer from another site. CrossOriginProtection decides on
// Sec-Fetch-Site and Origin and lets a request with neither through (a
// program, or an old browser); a browser that sends only a Referer still
// says where the request came from, and a page on another site must not
// act with the visitor's cookie. The exempt endpoints are not checked.
func (s *server) refererCheck(next http.Handler) http.Handler {
	exempt := http.NewServeMux()
	for _, p := range crossOriginExempt() {
		exempt.Handle(p, http.NotFoundHandler())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		ref := r.Header.Get("Referer")
		if ref == "" || r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Origin") != "" {
			next.ServeHTTP(w, r)
			return
		}
		if _, pattern := exempt.Handler(r); pattern != "" {
			next.ServeHTTP(w, r)
			return
		}
		if !s.ownOrigin(r, ref) {
			s.fail(w, r, fault.New(fault.Forbidden, "cross-origin request refused"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ownOrigin reports whether a Referer names this server: the Host the
// request was sent to, or the public origin of the base URL.
func (s *server) ownOrigin(r *http.Request, ref string) bool {
	u, err := url.Parse(ref)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return s.base != nil && strings.EqualFold(u.Scheme, s.base.Scheme) && strings.EqualFold(u.Host, s.base.Host)
}

// paymentPrefix is where payment endpoints live; J17 requires them to be
// reached over TLS only.
const paymentPrefix = "/api/v1/payments/"

// requireTLS refuses plain-HTTP requests to payment endpoints (promise
// J17) unless the server runs in development mode, the request came over
// TLS, or a trusted proxy says the client used HTTPS.
func (s *server) requireTLS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The cheap conditions first: the path is cleaned (an
		// allocation) only for plain-HTTP requests outside development.
		if !s.d.Config.Dev && r.TLS == nil && !infoOf(r).client.HTTPS &&
			isPaymentPath(path.Clean("/"+r.URL.Path)) {
			s.fail(w, r, fault.New(fault.InsecureTransport, "payment endpoints are served only over HTTPS"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isPaymentPath(p string) bool {
	return p+"/" == paymentPrefix || strings.HasPrefix(p, paymentPrefix)
}
