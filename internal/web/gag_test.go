package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"steward/internal/disclosure"
	"steward/internal/mail"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// A legal request under a gag order (notification delayed 90 days), with
// a disclosure made on it, shows nowhere the member looks until they are
// told: not in their access data, their export, their disclosures, their
// privacy centre or the result of an erasure; their item, category or
// account erasure leaves the legal register whole. Once the date has
// passed and the notice is mailed, they see the request and the
// disclosure, and are told why the register outlives an erasure.
func TestGagOrderHidesTheLegalRequestUntilTheMemberIsTold(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, envOptions{})
		ann, _ := e.member("ann@example.org", "Ann")
		bob, _ := e.member("bob@example.org", "Bob")
		annID, bobID := annID(t, e, ann), annID(t, e, bob)
		lr, err := e.svc.Disclosure.RecordLegalRequest(ctx, "officer", disclosure.LegalInput{Kind: disclosure.KindSubpoena,
			Jurisdiction: "US", Authority: "Federal Bureau of Investigation", Subjects: []string{annID, bobID}, Categories: []string{"identity"},
			Decision: disclosure.DecisionComplied, DecisionReason: "a valid subpoena",
			Notify: disclosure.NotifyDelay, NotifyAfter: e.clock.Now().Add(90 * 24 * time.Hour), NotifyReason: "non-disclosure order"})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{annID, bobID} {
			if _, err := e.svc.Disclosure.DiscloseOnRequest(ctx, "officer", "privacy", lr.ID, id, []string{"identity"}); err != nil {
				t.Fatal(err)
			}
		}
		e.runJobs(t)

		// What would tell the member of the request.
		marks := []string{lr.ID, "legal_requests", "legal-request", `"authorities"`, "Courts, law enforcement", "Federal Bureau"}
		leak := func(what string, body []byte) {
			t.Helper()
			for _, m := range marks {
				if i := strings.Index(string(body), m); i >= 0 {
					t.Errorf("%s under a gag order shows %q: …%s…", what, m, body[max(0, i-150):min(len(body), i+150)])
				}
			}
		}
		shows := func(what string, body []byte, want ...string) {
			t.Helper()
			for _, m := range want {
				if !strings.Contains(string(body), m) {
					t.Errorf("%s once the member was told does not show %q", what, m)
				}
			}
		}
		registerRows := func(subjectID string) (lrs, disc int) {
			t.Helper()
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM legal_request_subjects WHERE request_id = $1 AND subject_id = $2`,
				lr.ID, subjectID).Scan(&lrs); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM disclosures WHERE basis_ref = $1 AND subject_id = $2`,
				lr.ID, subjectID).Scan(&disc); err != nil {
				t.Fatal(err)
			}
			return lrs, disc
		}
		file := func(c *http.Client, body map[string]any) requestView {
			t.Helper()
			body["password"] = testPassword
			var rv requestView
			r := e.do(c, "POST", "/api/v1/me/requests", body)
			if r.StatusCode >= 300 {
				t.Fatalf("request %v: %d %s", body, r.StatusCode, r.body)
			}
			r.json(t, &rv)
			e.runJobs(t)
			// Read as staff would: an account erasure ends the session.
			req, err := e.svc.Rights.Get(ctx, rv.ID)
			if err != nil {
				t.Fatal(err)
			}
			leak("the result of request "+rv.ID, req.Result)
			rv.Status = string(req.Status)
			if req.Type == "access" {
				e.do(c, "GET", "/api/v1/me/requests/"+rv.ID, nil).json(t, &rv)
			}
			return rv
		}
		accessZIP := func(c *http.Client) map[string][]byte {
			t.Helper()
			rv := file(c, map[string]any{"type": "access"})
			if rv.Status != "completed" || rv.Download == "" {
				t.Fatalf("access request: %+v", rv)
			}
			return unzipBytes(t, e.do(c, "GET", rv.Download, nil).body)
		}
		keeps := func(subjectID string) bool {
			t.Helper()
			list, err := e.svc.Rights.Keeps(ctx, subjectID)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range list {
				if k.Dataset == "legal_requests" {
					return true
				}
			}
			return false
		}

		leak("GET /api/v1/me/data", e.do(ann, "GET", "/api/v1/me/data", nil).body)
		leak("GET /api/v1/me/disclosures", e.do(ann, "GET", "/api/v1/me/disclosures", nil).body)
		leak("the privacy centre", e.do(ann, "GET", "/account/privacy", nil).body)
		for name, b := range accessZIP(ann) {
			leak("the export's "+name, b)
		}
		if keeps(annID) {
			t.Error("the privacy centre says an erasure would keep the legal register")
		}

		// The member's erasures leave the register whole: one record
		// (refused, as for every record the engine keeps), a category, the
		// account (Bob).
		// The refusal names the dataset the member named, and is the same
		// for a record that does not exist: it tells them nothing.
		item := func(ref string) resp {
			return e.do(ann, "POST", "/api/v1/me/requests", map[string]any{"type": "erasure", "scope": "item",
				"items": []string{ref}, "password": testPassword})
		}
		real, made := item("legal_requests/"+lr.ID+"/"+annID), item("legal_requests/lr_aaaaaaaaaaaaaaaaaaaa/"+annID)
		if real.StatusCode < 400 || real.StatusCode != made.StatusCode ||
			!strings.Contains(string(real.body), "cannot be erased one by one") || !strings.Contains(string(made.body), "cannot be erased one by one") {
			t.Errorf("item erasure of the legal register's row: %d %s; of an invented one: %d %s", real.StatusCode, real.body, made.StatusCode, made.body)
		}
		file(ann, map[string]any{"type": "erasure", "scope": "category", "categories": []string{"content"}})
		if lrs, disc := registerRows(annID); lrs != 1 || disc != 1 {
			t.Errorf("after the member's erasures the register holds %d rows of the request and %d disclosures, want 1 and 1", lrs, disc)
		}
		if rv := file(bob, map[string]any{"type": "erasure", "scope": "account"}); rv.Status != "completed" {
			t.Fatalf("account erasure: %+v", rv)
		}
		if lrs, disc := registerRows(bobID); lrs != 1 || disc != 1 {
			t.Errorf("after the account's erasure the register holds %d rows of the request and %d disclosures, want 1 and 1", lrs, disc)
		}

		// The date passes: the notice is mailed, and the member sees it.
		marks = nil
		e.clock.Advance(91 * 24 * time.Hour)
		e.runJobs(t)
		list, err := e.outbox.List(ctx, mail.AsRecipient, 1000)
		if err != nil {
			t.Fatal(err)
		}
		told := 0
		for _, m := range list {
			if m.Kind == "legal-request" && m.To == "ann@example.org" {
				told++
			}
		}
		if told != 1 {
			t.Fatalf("the member was mailed %d notices, want 1", told)
		}
		ann, _ = e.login("ann@example.org", testPassword)
		shows("GET /api/v1/me/data", e.do(ann, "GET", "/api/v1/me/data", nil).body, lr.ID, "legal_requests", "legal-request", `"authorities"`)
		var mine struct {
			Disclosures []disclosure.Mine `json:"disclosures"`
		}
		e.do(ann, "GET", "/api/v1/me/disclosures", nil).json(t, &mine)
		if len(mine.Disclosures) != 1 || mine.Disclosures[0].Basis != string(disclosure.BasisLegalRequest) || mine.Disclosures[0].Recipient != "authorities" {
			t.Errorf("my disclosures once told: %+v", mine.Disclosures)
		}
		shows("the privacy centre", e.do(ann, "GET", "/account/privacy", nil).body, "Courts, law enforcement")
		z := accessZIP(ann)
		shows("the export", z["access.json"], lr.ID, "legal-request")
		if _, ok := z["legal_requests.csv"]; !ok {
			t.Errorf("the export once told has no legal_requests.csv: %v", mapKeys(z))
		}
		if !keeps(annID) {
			t.Error("once told, the privacy centre does not say an erasure keeps the legal register")
		}
		// The account's erasure keeps the register and says why.
		rv := file(ann, map[string]any{"type": "erasure", "scope": "account"})
		req, err := e.svc.Rights.Get(ctx, rv.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Kept []struct {
				Dataset     string `json:"dataset"`
				Why         string `json:"why"`
				Explanation string `json:"explanation"`
			} `json:"kept"`
		}
		if err := json.Unmarshal(req.Result, &out); err != nil || rv.Status != "completed" {
			t.Fatalf("account erasure once told: %s %s (%v)", rv.Status, req.Result, err)
		}
		found := false
		for _, k := range out.Kept {
			found = found || (k.Dataset == "legal_requests" && k.Why == "legal-obligation" && strings.Contains(k.Explanation, "the law obliges us"))
		}
		if !found {
			t.Errorf("the account erasure once told does not say the legal register is kept, and why: %s", req.Result)
		}
		if lrs, _ := registerRows(annID); lrs != 1 {
			t.Errorf("after the account's erasure the register holds %d rows of the request, want 1", lrs)
		}
	})
}
