package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"steward/internal/fault"
)

// problemTypeBase prefixes every problem type; the last segment is the
// fault code, which never changes once published.
const problemTypeBase = "https://steward.dev/problems/"

// problem is an RFC 9457 problem details body.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Field    string `json:"field,omitempty"`
}

// httpError is an error raised by the web layer itself whose status the
// fault code alone does not decide: a body that is not even well-formed is
// a 400, where a well-formed but invalid one is a 422; a wrong method is a
// 405.
type httpError struct {
	status int
	code   fault.Code
	msg    string
	field  string
	err    error
}

func (e *httpError) Error() string {
	s := "web: " + string(e.code) + ": " + e.msg
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *httpError) Unwrap() error { return e.err }

// badRequest is a 400 "invalid" problem about the shape of the request.
func badRequest(field, msg string, err error) *httpError {
	return &httpError{status: http.StatusBadRequest, code: fault.Invalid, msg: msg, field: field, err: err}
}

// renameField points a domain error at the name the request used for the
// field (identity calls the current password "password"; a request body
// may call it "current_password").
func renameField(err error, names map[string]string) error {
	var fe *fault.Error
	if errors.As(err, &fe) {
		if to, ok := names[fe.Field]; ok {
			c := *fe
			c.Field = to
			return &c
		}
	}
	return err
}

// retryAfterer is satisfied by errors that know when the client may try
// again (a rate limiter's lock, for example).
type retryAfterer interface{ RetryAfter() time.Duration }

// defaultRetryAfter is sent with a 429 when the error does not say.
const defaultRetryAfter = time.Minute

// statusOf maps a fault code to its HTTP status. It is the one place that
// decides this mapping.
func statusOf(code fault.Code) int {
	switch code {
	case fault.Invalid:
		return http.StatusUnprocessableEntity
	case fault.NotFound:
		return http.StatusNotFound
	case fault.Unauthorized:
		return http.StatusUnauthorized
	case fault.Forbidden, fault.PurposeDenied, fault.ReauthNeeded, fault.InsecureTransport, fault.EmailUnverified, fault.SecondFactorNeeded:
		return http.StatusForbidden
	case fault.Conflict:
		return http.StatusConflict
	case fault.RateLimited:
		return http.StatusTooManyRequests
	case fault.TooLarge:
		return http.StatusRequestEntityTooLarge
	case fault.Unsupported:
		return http.StatusUnsupportedMediaType
	case fault.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func titleOf(code fault.Code) string {
	switch code {
	case fault.Invalid:
		return "Invalid input"
	case fault.NotFound:
		return "Not found"
	case fault.Unauthorized:
		return "Authentication required"
	case fault.Forbidden:
		return "Forbidden"
	case fault.Conflict:
		return "Conflict"
	case fault.PurposeDenied:
		return "Use of personal data not permitted"
	case fault.RateLimited:
		return "Too many requests"
	case fault.TooLarge:
		return "Request too large"
	case fault.Unsupported:
		return "Unsupported request"
	case fault.ReauthNeeded:
		return "Re-authentication required"
	case fault.InsecureTransport:
		return "HTTPS required"
	case fault.EmailUnverified:
		return "Email address not confirmed"
	case fault.SecondFactorNeeded:
		return "Second factor required"
	case fault.Unavailable:
		return "Not ready"
	default:
		return "Internal error"
	}
}

// problemOf turns any error into the problem the client sees. Only coded
// errors carry their message to the client; anything else is a 500 with a
// generic message.
func problemOf(err error) problem {
	var (
		code   = fault.CodeOf(err)
		status = statusOf(code)
		detail = fault.MessageOf(err)
		field  = fault.FieldOf(err)
	)
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		code, status, detail, field = he.code, he.status, he.msg, he.field
	case errors.As(err, &mbe):
		code, status = fault.TooLarge, http.StatusRequestEntityTooLarge
		detail = "the request body is larger than " + strconv.FormatInt(mbe.Limit, 10) + " bytes"
	}
	if code == fault.Internal {
		detail = "An internal error occurred. Quote the request id when reporting it."
		field = ""
	}
	return problem{
		Type:   problemTypeBase + string(code),
		Title:  titleOf(code),
		Status: status,
		Detail: detail,
		Field:  field,
	}
}

// logFailure logs the full error of a 5xx with the request id; 4xx
// answers are the client's doing and are logged at debug level by code
// only, since domain messages may quote what the client sent.
func (s *server) logFailure(r *http.Request, p problem, err error) {
	id := infoOf(r).id
	if p.Status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelError, "web: request failed",
			slog.String("request_id", id), slog.String("route", infoOf(r).pattern),
			slog.Int("status", p.Status), slog.String("error", err.Error()))
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "web: request refused",
		slog.String("request_id", id), slog.String("route", infoOf(r).pattern),
		slog.Int("status", p.Status), slog.String("type", p.Type), slog.String("field", p.Field))
}

// setProblemHeaders adds the headers some statuses need.
func setProblemHeaders(w http.ResponseWriter, p problem, err error) {
	switch p.Status {
	case http.StatusTooManyRequests:
		d := defaultRetryAfter
		var ra retryAfterer
		if errors.As(err, &ra) && ra.RetryAfter() > 0 {
			d = ra.RetryAfter()
		}
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="steward"`)
	}
}

// problemJSON writes err as an application/problem+json response.
func (s *server) problemJSON(w http.ResponseWriter, r *http.Request, err error) {
	if s.clientGone(w, r, err) {
		return
	}
	p := problemOf(err)
	p.Instance = infoOf(r).id
	s.logFailure(r, p, err)
	setProblemHeaders(w, p, err)
	writeJSON(w, "application/problem+json", p.Status, p)
}

// fail answers with an HTML error page when a browser asked for a page,
// and with problem+json otherwise (always under /api/).
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if wantsHTML(r) {
		s.errorPage(w, r, err)
		return
	}
	s.problemJSON(w, r, err)
}

func wantsHTML(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// statusClientClosed is what a request whose client went away before the
// answer was ready is counted as (nginx's 499): the client's doing, not
// a server failure.
const statusClientClosed = 499

// clientGone answers a request whose client disconnected (its context was
// cancelled and the handler gave up with that error): logged at info as
// the client's doing, never as a 5xx. It reports whether it answered.
func (s *server) clientGone(w http.ResponseWriter, r *http.Request, err error) bool {
	if r.Context().Err() == nil || !(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return false
	}
	s.log.LogAttrs(context.WithoutCancel(r.Context()), slog.LevelInfo, "web: client went away",
		slog.String("request_id", infoOf(r).id), slog.String("route", infoOf(r).pattern))
	w.WriteHeader(statusClientClosed)
	return true
}
