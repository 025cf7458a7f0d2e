package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"steward/internal/retention"
)

// TestRetentionStaffAPIAndConsole: privacy staff see the dry run and place,
// review and lift holds through the API and the console page; other roles
// are refused; bad input is a problem with the field, never a 5xx; the
// sweep's counters are on /metrics.
func TestRetentionStaffAPIAndConsole(t *testing.T) {
	e := sqliteEnv(t, envOptions{})
	_, annTok := e.member("ann@example.org", "Ann")
	_ = annTok
	ann, err := e.svc.Subjects.FindByEmail(t.Context(), e.svc.DB, e.svc.Door, "ann@example.org")
	if err != nil {
		t.Fatal(err)
	}
	priv, privTok := e.staff("privacy@example.org", "privacy")
	_, supTok := e.staff("support@example.org", "support")
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	r := e.do(nil, "GET", "/api/v1/admin/retention", nil, bearer(supTok)...)
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("support staff reading the dry run: %d", r.StatusCode)
	}
	r = e.do(nil, "GET", "/api/v1/admin/retention", nil, bearer(privTok)...)
	var rep retention.Report
	r.json(t, &rep)
	if r.StatusCode != http.StatusOK || !rep.DryRun || len(rep.Lines) == 0 {
		t.Fatalf("dry run: %d %s", r.StatusCode, r.body)
	}
	exp := e.clock.Now().AddDate(0, 6, 0).Format(time.RFC3339)
	for _, bad := range []string{
		`{"subject_id":"` + ann.ID + `","reason":"","expires_at":"` + exp + `"}`,
		`{"subject_id":"` + ann.ID + `","reason":"x","expires_at":"2001-01-01T00:00:00Z"}`,
		`{"category":"nope","reason":"x","expires_at":"` + exp + `"}`,
		`{"reason":"x","expires_at":"` + exp + `"}`,
		`{"subject_id":1}`,
	} {
		r := e.do(nil, "POST", "/api/v1/admin/holds", bad, bearer(privTok)...)
		if r.StatusCode < 400 || r.StatusCode >= 500 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("hold %s: %d %s", bad, r.StatusCode, r.body)
		}
	}
	r = e.do(nil, "POST", "/api/v1/admin/holds", map[string]string{"subject_id": ann.ID, "reason": "subpoena 12", "source": "lr_9", "expires_at": exp}, bearer(supTok)...)
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("support placing a hold: %d", r.StatusCode)
	}
	r = e.do(nil, "POST", "/api/v1/admin/holds", map[string]string{"subject_id": ann.ID, "reason": "subpoena 12", "source": "lr_9", "expires_at": exp}, bearer(privTok)...)
	var h retention.Hold
	r.json(t, &h)
	if r.StatusCode != http.StatusCreated || h.SubjectID != ann.ID || h.Source != "lr_9" {
		t.Fatalf("place: %d %s", r.StatusCode, r.body)
	}
	r = e.do(nil, "POST", "/api/v1/admin/holds/"+h.ID+"/review", map[string]string{"expires_at": e.clock.Now().AddDate(1, 0, 0).Format(time.RFC3339)}, bearer(privTok)...)
	if r.StatusCode != http.StatusOK {
		t.Errorf("review: %d %s", r.StatusCode, r.body)
	}
	// The console page lists the hold and lifts it.
	page := e.do(priv, "GET", "/admin/retention", nil)
	if page.StatusCode != http.StatusOK || !strings.Contains(string(page.body), h.ID) || !strings.Contains(string(page.body), "activity_member_events") ||
		!strings.Contains(string(page.body), "<td>activity_monthly</td>") {
		t.Fatalf("console: %d", page.StatusCode)
	}
	r = e.do(priv, "POST", "/admin/holds/"+h.ID+"/lift", url.Values{})
	if r.StatusCode != http.StatusSeeOther {
		t.Errorf("lift from the console: %d %s", r.StatusCode, r.body)
	}
	r = e.do(nil, "POST", "/api/v1/admin/holds/"+h.ID+"/lift", "", bearer(privTok)...)
	if r.StatusCode != http.StatusConflict {
		t.Errorf("lifting a lifted hold: %d %s", r.StatusCode, r.body)
	}
	r = e.do(priv, "POST", "/admin/holds", url.Values{"category": {"identity"}, "reason": {"audit"}, "expires_at": {"2027-01-31"}})
	if r.StatusCode != http.StatusSeeOther {
		t.Errorf("place from the console: %d %s", r.StatusCode, r.body)
	}
	r = e.do(nil, "GET", "/api/v1/admin/holds", nil, bearer(privTok)...)
	var hs struct{ Holds []retention.Hold }
	r.json(t, &hs)
	if len(hs.Holds) != 1 || hs.Holds[0].Category != "identity" || hs.Holds[0].SubjectID != "" {
		t.Errorf("holds in force: %s", r.body)
	}
	if _, err := e.svc.Retention.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	m := e.do(nil, "GET", "/metrics", nil)
	if !strings.Contains(string(m.body), "steward_retention_sweep_duration_seconds_count 1") {
		t.Errorf("/metrics lacks the sweep duration")
	}
}
