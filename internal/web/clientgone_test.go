package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClientGoneIsNotAServerError: a handler that gives up because its
// client disconnected (the request's context cancelled) is answered as
// the client's doing: no 5xx, nothing at error level, for the API and
// for pages alike. A cancellation the client did not cause stays a 500.
func TestClientGoneIsNotAServerError(t *testing.T) {
	e := sqliteEnv(t, envOptions{})
	for _, path := range []string{"/api/v1/me", "/account"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := httptest.NewRequest("GET", path, nil).WithContext(ctx)
		w := httptest.NewRecorder()
		err := fmt.Errorf("store: query: %w", context.Canceled)
		if strings.HasPrefix(path, "/api/") {
			e.srv.problemJSON(w, r, err)
		} else {
			e.srv.errorPage(w, r, err)
		}
		if w.Code != statusClientClosed {
			t.Errorf("%s: status %d, want %d", path, w.Code, statusClientClosed)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "client went away") {
		t.Errorf("logs:\n%s", logs)
	}
	// The server's own cancellation, with the client still there: a 500.
	w := httptest.NewRecorder()
	e.srv.problemJSON(w, httptest.NewRequest("GET", "/api/v1/me", nil), context.Canceled)
	if w.Code != http.StatusInternalServerError {
		t.Errorf("a cancellation the client did not cause: %d", w.Code)
	}
}
