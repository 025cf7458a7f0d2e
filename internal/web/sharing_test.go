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

// TestPromiseJ15_PrimaryFilesForSubAccount: a primary holder files a
// rights request for a sub-account only when its holder allowed it; the
// request is the sub-account's own (in their list, not the primary's),
// and a grant without may_request, another member, or a revoked grant
// is refused and audited.
func TestPromiseJ15_PrimaryFilesForSubAccount(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t, modules()), envOptions{policyFile: "jmir.yaml"})
	primary, _ := e.member("pat@example.org", "Pat Primary")
	sub, _ := e.member("sam@example.org", "Sam Sub")
	other, _ := e.member("oz@example.org", "Oz Other")
	ctx := context.Background()
	invite := func(email string, mayRequest bool) string {
		r := e.do(primary, "POST", "/api/v1/me/shared-accounts", map[string]any{"kind": "sub-account", "email": email,
			"categories": []string{"identity"}, "may_request": mayRequest})
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("invite: %d %s", r.StatusCode, r.body)
		}
		return e.mailedToken(email, "/account/sharing/accept")
	}
	if r := e.do(sub, "POST", "/account/sharing/accept", url.Values{"token": {invite("sam@example.org", true)}}); r.StatusCode != http.StatusOK {
		t.Fatalf("accept: %d %s", r.StatusCode, r.body)
	}
	if r := e.do(other, "POST", "/account/sharing/accept", url.Values{"token": {invite("oz@example.org", false)}}); r.StatusCode != http.StatusOK {
		t.Fatalf("accept: %d %s", r.StatusCode, r.body)
	}
	sam, err := e.svc.Subjects.FindByEmail(ctx, e.db, e.svc.Door, "sam@example.org")
	if err != nil {
		t.Fatal(err)
	}
	oz, err := e.svc.Subjects.FindByEmail(ctx, e.db, e.svc.Door, "oz@example.org")
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"type": "restriction", "restrict": true, "reason": "my parent asks on my behalf"}
	r := e.do(primary, "POST", "/api/v1/shared-accounts/"+sam.ID+"/requests", body)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("file for the sub-account: %d %s", r.StatusCode, r.body)
	}
	var filed struct{ ID string }
	r.json(t, &filed)
	var mine struct {
		Requests []struct{ ID string } `json:"requests"`
	}
	e.do(sub, "GET", "/api/v1/me/requests", nil).json(t, &mine)
	if len(mine.Requests) != 1 || mine.Requests[0].ID != filed.ID {
		t.Fatalf("the sub-account's requests: %+v, want %s", mine, filed.ID)
	}
	e.do(primary, "GET", "/api/v1/me/requests", nil).json(t, &mine)
	if len(mine.Requests) != 0 {
		t.Fatalf("the request landed among the primary's own: %+v", mine)
	}
	// No may_request, not a sub-account of the caller, unknown: refused.
	assertProblem(t, e.do(primary, "POST", "/api/v1/shared-accounts/"+oz.ID+"/requests", body), 403, "forbidden")
	assertProblem(t, e.do(other, "POST", "/api/v1/shared-accounts/"+sam.ID+"/requests", body), 404, "not_found")
	// Revoked: refused at once.
	var list struct {
		Delegations []struct{ ID, Subject string } `json:"delegations"`
	}
	e.do(sub, "GET", "/api/v1/me/shared-accounts", nil).json(t, &list)
	if r := e.do(sub, "DELETE", "/api/v1/me/shared-accounts/"+list.Delegations[0].ID, nil); r.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %d", r.StatusCode)
	}
	assertProblem(t, e.do(primary, "POST", "/api/v1/shared-accounts/"+sam.ID+"/requests", body), 404, "not_found")
	entries, err := e.audit.ForSubject(ctx, e.db, oz.ID)
	if err != nil {
		t.Fatal(err)
	}
	refused := false
	for _, en := range entries {
		refused = refused || en.Action == "account.request_for_refused"
	}
	if !refused {
		t.Fatal("the refusal was not audited")
	}
}
