package web

import (
	"context"
	"crypto/subtle"
	"net/http"
	"steward/internal/fault"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *server) handleHealthz() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.encode(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// handleReadyz answers 200 only while the database answers.
func (s *server) handleReadyz() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.d.Ready(ctx); err != nil {
			return fault.Wrap(fault.Unavailable, err, "the database does not answer")
		}
		return s.encode(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// handleMetrics serves the Prometheus metrics to the operator only: a
// scraper on loopback or in a trusted proxy network, or one holding the
// metrics token. They name routes and counts, nothing personal, but how
// busy each part of a site is belongs to its operator.
func (s *server) handleMetrics() handler {
	h := promhttp.HandlerFor(s.d.Metrics, promhttp.HandlerOpts{})
	return func(w http.ResponseWriter, r *http.Request) error {
		if !s.metricsAllowed(r) {
			return fault.New(fault.Forbidden, "metrics are served only to the operator's scrapers")
		}
		h.ServeHTTP(w, r)
		return nil
	}
}

func (s *server) metricsAllowed(r *http.Request) bool {
	ip := infoOf(r).client.IP
	if ip.IsValid() && (ip.Unmap().IsLoopback() || s.trusted(ip)) {
		return true
	}
	tok := s.d.Config.MetricsToken
	if tok == "" {
		return false
	}
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(tok)) == 1
}

func (s *server) handleOpenAPI() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.openapi)
		return nil
	}
}
