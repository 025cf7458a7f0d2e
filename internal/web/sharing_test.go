package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestPromiseJ15_SharedAccountOverHTTP: a primary holder invites a
// sub-account by mail, its holder accepts on the page the link opens (a
// GET changes nothing), the primary reads the granted profile and is
// refused beyond the grant, and after a revocation reads nothing.
func TestPromiseJ15_SharedAccountOverHTTP(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOptions{policyFile: "jmir.yaml"})
		primary, _ := e.member("pat@example.org", "Pat Primary")
		sub, _ := e.member("sam@example.org", "Sam Sub")
		samSub, err := e.svc.Subjects.FindByEmail(context.Background(), e.db, e.svc.Door, "sam@example.org")
		if err != nil {
			t.Fatal(err)
		}
		r := e.do(primary, "POST", "/api/v1/me/shared-accounts", map[string]any{"kind": "sub-account", "email": "sam@example.org", "categories": []string{"identity"}})
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("invite: %d %s", r.StatusCode, r.body)
		}
		tok := e.mailedToken("sam@example.org", "/account/sharing/accept")
		if page := e.do(sub, "GET", "/account/sharing/accept?token="+url.QueryEscape(tok), nil); page.StatusCode != http.StatusOK {
			t.Fatalf("accept page: %d", page.StatusCode)
		}
		if r := e.do(primary, "GET", "/api/v1/shared-accounts/"+samSub.ID, nil); r.StatusCode != http.StatusNotFound {
			t.Fatalf("read before acceptance: %d %s", r.StatusCode, r.body)
		}
		if r := e.do(sub, "POST", "/account/sharing/accept", url.Values{"token": {tok}}); r.StatusCode != http.StatusOK {
			t.Fatalf("accept: %d %s", r.StatusCode, r.body)
		}
		r = e.do(primary, "GET", "/api/v1/shared-accounts/"+samSub.ID+"?categories=identity", nil)
		if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "Sam Sub") {
			t.Fatalf("the primary reads the sub-account: %d %s", r.StatusCode, r.body)
		}
		assertProblem(t, e.do(primary, "GET", "/api/v1/shared-accounts/"+samSub.ID+"?categories=activity", nil), 403, "forbidden")
		var list struct {
			Delegations []struct{ ID string } `json:"delegations"`
		}
		e.do(sub, "GET", "/api/v1/me/shared-accounts", nil).json(t, &list)
		if len(list.Delegations) != 1 {
			t.Fatalf("the sub-account's shares: %+v", list)
		}
		if r := e.do(sub, "DELETE", "/api/v1/me/shared-accounts/"+list.Delegations[0].ID, nil); r.StatusCode != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", r.StatusCode, r.body)
		}
		if r := e.do(primary, "GET", "/api/v1/shared-accounts/"+samSub.ID, nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("read after the revocation: %d %s", r.StatusCode, r.body)
		}
	})
}
