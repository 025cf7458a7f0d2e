package web

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"steward/internal/activity"
	"steward/internal/analytics"
	"steward/internal/fault"
)

// The tracker, the collect endpoint, the staff reports (JSON and the
// console page with server-drawn SVG charts) and the anonymised trends.
// The handlers decode, call internal/activity or internal/analytics, and
// encode.

// handleTracker serves tracker.js, built for the policy in force. It may
// be cached (it holds nothing personal) and loaded from any origin.
func (s *server) handleTracker() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		js, etag := s.d.Activity.Tracker()
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("ETag", etag)
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		http.ServeContent(w, r, "tracker.js", time.Time{}, bytes.NewReader(js))
		return nil
	}
}

// collectCORS answers CORS for the collect endpoint: only origins of the
// named site (or, before the site is known, of any configured site). With
// credentials, so a signed-in member's session cookie reaches us where the
// policy links activity to accounts.
func (s *server) collectCORS(w http.ResponseWriter, r *http.Request, site string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	allowed := false
	for _, st := range s.d.Activity.Sites() {
		if (site == "" || st.ID == site) && st.AllowsOrigin(origin) {
			allowed = true
			break
		}
	}
	h := w.Header()
	if v, ok := h["Vary"]; ok {
		h["Vary"] = append(v, "Origin")
	} else {
		h["Vary"] = varyOrigin
	}
	if !allowed {
		return false
	}
	// By canonical key: Set would canonicalise and allocate per call, on
	// every collected event.
	h["Access-Control-Allow-Origin"] = []string{origin}
	h["Access-Control-Allow-Credentials"] = allowCredentials
	return true
}

// Header values the collect answer shares between responses instead of
// allocating them per event. Each has no spare capacity, so an Add to a
// response's header copies instead of writing into the shared array, and
// nothing writes into a header value in place.
var (
	varyOrigin       = []string{"Origin"}
	allowCredentials = []string{"true"}
)

// handleCollectPreflight answers the CORS preflight of fetch() with a JSON
// content type (sendBeacon's text/plain needs none).
func (s *server) handleCollectPreflight() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !s.collectCORS(w, r, "") {
			return fault.New(fault.Forbidden, "this origin may not send events")
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "POST")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// handleCollect records one event: 202 once it is durably committed, 204
// when it is deliberately not recorded (a bot, or a member whose objection
// forbids it), a 4xx problem for bad input with nothing stored.
func (s *server) handleCollect() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		// sendBeacon posts text/plain, which needs no preflight; fetch
		// may send JSON.
		if ct := r.Header.Get("Content-Type"); ct != "" && !plainCollectType(ct) {
			mt, params, err := mime.ParseMediaType(ct)
			if err != nil || (mt != "application/json" && mt != "text/plain") {
				s.collectCORS(w, r, "")
				return fault.New(fault.Unsupported, "send the event as application/json or text/plain")
			}
			if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") {
				s.collectCORS(w, r, "")
				return fault.New(fault.Unsupported, "the event must be UTF-8")
			}
		}
		buf := collectBufs.Get().(*bytes.Buffer)
		defer collectBufs.Put(buf)
		buf.Reset()
		_, err := buf.ReadFrom(io.LimitReader(r.Body, activity.MaxBody+1))
		// ParseInput copies what it keeps (the decoder owns its own
		// buffer), so the body's buffer goes back to the pool.
		body := buf.Bytes()
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return fault.New(fault.TooLarge, "the event is larger than %d bytes", activity.MaxBody)
			}
			return badRequest("", "the request body could not be read", err)
		}
		in, err := activity.ParseInput(body)
		s.collectCORS(w, r, in.Site)
		if err != nil {
			return err
		}
		req := activity.Request{
			IP:        infoOf(r).client.IP,
			UserAgent: r.Header.Get("User-Agent"),
			Origin:    r.Header.Get("Origin"),
			GPC:       gpcSignal(r),
		}
		if a := s.optionalAuth(r); a != nil {
			req.SubjectID = a.P.Account.SubjectID
		}
		switch err := s.d.Activity.Collect(r.Context(), in, req); {
		case err == nil:
			w.WriteHeader(http.StatusAccepted)
		case errors.Is(err, activity.ErrNotRecorded):
			w.WriteHeader(http.StatusNoContent)
		default:
			return err
		}
		return nil
	}
}

// collectBufs holds the buffers collect bodies are read into: one per
// request otherwise, on the hottest endpoint.
var collectBufs = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 1024)) }}

// plainCollectType reports whether ct is one of the content types the
// tracker sends (sendBeacon's text/plain with UTF-8, or JSON), written the
// way browsers write them; those need no media-type parsing. Anything else
// is parsed and checked in full.
func plainCollectType(ct string) bool {
	switch ct {
	case "text/plain;charset=UTF-8", "text/plain; charset=UTF-8", "text/plain;charset=utf-8",
		"text/plain; charset=utf-8", "text/plain", "application/json", "application/json; charset=utf-8":
		return true
	}
	return false
}

// reportQuery reads site, from, to, limit and interval.
func reportQuery(r *http.Request) (analytics.Query, error) {
	q := r.URL.Query()
	out := analytics.Query{Site: q.Get("site"), From: q.Get("from"), To: q.Get("to"), Interval: q.Get("interval")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return out, fault.FieldError("limit", "limit must be a whole number")
		}
		out.Limit = n
	}
	return out, nil
}

// handleReport answers GET /api/v1/admin/analytics/{report} for analysts
// and admins.
func (s *server) handleReport() authed {
	return func(w http.ResponseWriter, r *http.Request, _ auth) error {
		q, err := reportQuery(r)
		if err != nil {
			return err
		}
		rep, err := s.d.Analytics.Report(r.Context(), r.PathValue("report"), q)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, rep)
	}
}

// handleTrends answers GET /api/v1/trends: public, anonymised, and only
// where the policy publishes trends.
func (s *server) handleTrends() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		q, err := reportQuery(r)
		if err != nil {
			return err
		}
		t, err := s.d.Analytics.Trends(r.Context(), q)
		if err != nil {
			return err
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Cache-Control", "public, max-age=300")
		return s.encode(w, http.StatusOK, t)
	}
}
