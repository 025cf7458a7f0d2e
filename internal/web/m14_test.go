package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"steward/internal/app"
	"steward/internal/app/services/servicestest"
	"steward/internal/clock"
	"steward/internal/disclosure"
	"steward/internal/policy"
)

// TestPromiseM14_NothingIdentifyingLeavesForThePublicOrPartners: Mixi
// shares only non-identifying information publicly and with partners.
// Publicly: after a member who searched for her own name and opened her
// own profile page, alone, and a crowd of visitors on another page, neither
// the trends nor the transparency report (the public outputs) carry her
// name, address, search, page or network. With
// partners: the policy declares none that receives personal data, and a
// disclosure of her address to anyone outside her consent or the law is
// refused.
func TestPromiseM14_NothingIdentifyingLeavesForThePublicOrPartners(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC))
	s := analyticsServerWith(t, "mixi.yaml", app.Options{Clock: clk})
	ctx := context.Background()
	id := servicestest.Member(t, s.app.Services, "mia.moreau@example.org", "Mia Moreau")
	// She searches for herself and opens her own profile page, alone;
	// forty visitors read a news page.
	for _, page := range []string{"/search?q=mia+moreau+address", "/profile/mia-moreau"} {
		if got := s.do(t, "POST", "/api/v1/collect", collectHeaders(browserUA),
			`{"site":"demo","type":"pageview","url":"`+siteOrigin+page+`"}`); got.status != 202 {
			t.Fatalf("collect: %d %s", got.status, got.body)
		}
	}
	for i := range 40 {
		ua := strings.Replace(browserUA, "Chrome/131.0.0.0", fmt.Sprintf("Chrome/131.0.%d.0", i), 1)
		if got := s.do(t, "POST", "/api/v1/collect", collectHeaders(ua), `{"site":"demo","type":"pageview","url":"`+siteOrigin+`/news"}`); got.status != 202 {
			t.Fatalf("collect: %d", got.status)
		}
	}
	if err := s.app.Activity.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(24 * time.Hour)
	published := 0
	for _, path := range []string{"/api/v1/trends", "/transparency", "/api/v1/transparency"} {
		got := s.do(t, "GET", path, nil, "")
		if got.status != 200 {
			t.Fatalf("%s: %d %s", path, got.status, got.body)
		}
		body := strings.ToLower(got.body)
		for _, what := range []string{"mia", "moreau", "example.org", id, "127.0.0.1"} {
			if strings.Contains(body, strings.ToLower(what)) {
				t.Errorf("public %s holds %q", path, what)
			}
		}
		if strings.Contains(body, "/news") {
			published++
		}
	}
	if published == 0 {
		t.Fatal("the page forty people read is not in the trends: the test proves nothing")
	}
	// No partner receives personal data under the policy in force.
	for _, r := range s.app.Policy.Policy.Recipients {
		if r.Role == policy.RolePartner || r.Role == policy.RoleController {
			t.Errorf("Mixi's policy declares %s (%s) as a recipient", r.ID, r.Role)
		}
	}
	// And nothing of hers leaves for anyone without her consent or a
	// legal request.
	_, err := s.app.Disclosure.Disclose(ctx, disclosure.Request{Recipient: "authorities", Purpose: "legal-compliance", Subject: id,
		Values: map[string]string{"email": "mia.moreau@example.org"}, Basis: disclosure.BasisContract})
	if err == nil {
		t.Fatal("her address was disclosed on no legal request")
	}
}
