package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"steward/internal/disclosure"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestPromiseJ16_LegalRequestPlacesAHold: a legal request that asks for
// a hold places it in the subject-state store, in the request's own
// transaction, where erasure and the retention sweep read it: the
// member's erasure is then refused with the reason, and the hold shows on
// the retention console's list with the request as its source.
func TestPromiseJ16_LegalRequestPlacesAHold(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOptions{policyFile: "jmir.yaml"})
		c, _ := e.member("hal@example.org", "Hal Held")
		id := annID(t, e, c)
		ctx := context.Background()
		lr, err := e.svc.Disclosure.RecordLegalRequest(ctx, "officer", disclosure.LegalInput{Kind: disclosure.KindSubpoena, Jurisdiction: "US",
			Authority: "District Court", Subjects: []string{id}, Categories: []string{"identity"}, Notify: disclosure.NotifyNow,
			Hold: &disclosure.HoldInput{Reason: "preserve for litigation"}})
		if err != nil {
			t.Fatal(err)
		}
		holds, err := e.svc.Subjects.HoldsOn(ctx, e.db, []string{id})
		if err != nil {
			t.Fatal(err)
		}
		if len(holds) != 1 || holds[0].Source != lr.ID || holds[0].Reason != "preserve for litigation" || holds[0].ExpiresAt.IsZero() {
			t.Fatalf("holds after the legal request: %+v", holds)
		}
		// Both ask for their account's erasure; only the one not held goes.
		free, _ := e.member("fay@example.org", "Fay Free")
		freeID := annID(t, e, free)
		for _, m := range []*http.Client{c, free} {
			if r := e.do(m, "POST", "/api/v1/me/requests", map[string]any{"type": "erasure", "scope": "account", "password": testPassword}); r.StatusCode != http.StatusAccepted {
				t.Fatalf("erasure: %d %s", r.StatusCode, r.body)
			}
		}
		if _, err := e.runner.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := e.identity.AccountOf(ctx, freeID); err == nil {
			t.Fatal("the member without a hold was not erased: the test proves nothing")
		}
		if _, err := e.identity.AccountOf(ctx, id); err != nil {
			t.Fatalf("the held member's account is gone: %v", err)
		}
		var mine struct {
			Requests []struct {
				Status        string `json:"status"`
				RefusalReason string `json:"refusal_reason"`
			} `json:"requests"`
		}
		e.do(c, "GET", "/api/v1/me/requests", nil).json(t, &mine)
		if len(mine.Requests) != 1 || mine.Requests[0].Status != "refused" || !strings.Contains(mine.Requests[0].RefusalReason, "preserve for litigation") {
			t.Fatalf("the held member's erasure: %+v, want refused with the hold's reason", mine.Requests)
		}
	})
}
