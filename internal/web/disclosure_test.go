package web

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"steward/internal/disclosure"
)

// partnerEndpoint is the brand partners' webhook: a real server that
// keeps what it receives.
type partnerEndpoint struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []*http.Request
	bod [][]byte
}

func newPartnerEndpoint(t *testing.T) *partnerEndpoint {
	p := &partnerEndpoint{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.got, p.bod = append(p.got, r), append(p.bod, b)
		p.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

const webPartnerSecret = "whsec_cGFydG5lciBzZWNyZXQgZm9yIHRoZSB3ZWIgdGVzdHM="

// jmirWithPartner is the JMIR policy with its brand partners' webhook at
// the test endpoint.
func jmirWithPartner(t *testing.T, p *partnerEndpoint) envOptions {
	data := bytes.Replace(loadExample(t, "jmir.yaml"), []byte("https://partners.jmir.example/steward/orders"), []byte(p.srv.URL+"/orders"), 1)
	vars := map[string]string{"STEWARD_RECIPIENT_BRAND_PARTNERS_SECRET": webPartnerSecret, "STEWARD_WEBHOOKS_ALLOW_PRIVATE": "1"}
	return envOptions{policyFile: "jmir.yaml", policyData: data, getenv: func(k string) string { return vars[k] }}
}

// J12 over HTTP: the member's order through a partner brand reaches the
// partner's webhook with exactly the declared fields; the member sees it
// in the privacy centre and over the API; the partner's signed
// acknowledgement is taken once, a forged or replayed one refused.
func TestPromiseJ12_PartnerOrderOverHTTP(t *testing.T) {
	p := newPartnerEndpoint(t)
	e := sqliteEnv(t, jmirWithPartner(t, p))
	c, _ := e.member("ann@example.org", "Ann Lee")
	r := e.do(c, "POST", "/api/v1/me/partner-orders", map[string]string{"recipient": "brand-partners"})
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("order: %d %s", r.StatusCode, r.body)
	}
	var d disclosure.Disclosure
	r.json(t, &d)
	e.runJobs(t)
	p.mu.Lock()
	if len(p.got) != 1 {
		p.mu.Unlock()
		t.Fatalf("the partner got %d requests", len(p.got))
	}
	body := p.bod[0]
	p.mu.Unlock()
	var ev struct {
		Data struct {
			Fields map[string]string `json:"fields"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Data.Fields) != 2 || ev.Data.Fields["name"] != "Ann Lee" || ev.Data.Fields["email"] != "ann@example.org" {
		t.Fatalf("fields delivered %v, want exactly name and email", ev.Data.Fields)
	}

	var mine struct {
		Disclosures []disclosure.Mine `json:"disclosures"`
	}
	e.do(c, "GET", "/api/v1/me/disclosures", nil).json(t, &mine)
	if len(mine.Disclosures) != 1 || mine.Disclosures[0].Purpose != "order-fulfilment" || mine.Disclosures[0].Recipient != "brand-partners" {
		t.Fatalf("my disclosures: %+v", mine.Disclosures)
	}
	page := e.do(c, "GET", "/account/privacy", nil)
	if !strings.Contains(string(page.body), "Third parties you buy from through one of our brands") || !strings.Contains(string(page.body), "order-fulfilment") {
		t.Fatalf("the privacy centre does not show who received the data")
	}

	ack := func(key []byte, id string, ts time.Time) resp {
		b := []byte(`{"events":["` + d.Delivery + `"]}`)
		return e.do(nil, "POST", "/api/v1/recipients/brand-partners/acknowledgements", b, "webhook-id", id,
			"webhook-timestamp", strconv.FormatInt(ts.Unix(), 10), "webhook-signature", disclosure.Sign(key, id, ts.Unix(), b))
	}
	key := []byte("partner secret for the web tests")
	if r := ack([]byte("guess"), "msg_1", e.clock.Now()); r.StatusCode != http.StatusUnauthorized || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("forged ack: %d %s", r.StatusCode, r.body)
	}
	if r := ack(key, "msg_2", e.clock.Now()); r.StatusCode != http.StatusOK {
		t.Fatalf("ack: %d %s", r.StatusCode, r.body)
	}
	if r := ack(key, "msg_2", e.clock.Now()); r.StatusCode != http.StatusConflict {
		t.Fatalf("replayed ack: %d %s", r.StatusCode, r.body)
	}
	if r := e.do(c, "POST", "/api/v1/me/partner-orders", map[string]string{"recipient": "hosting-us"}); r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("an order to a processor: %d %s", r.StatusCode, r.body)
	}

	// The member restricts processing: the partner is told (Art. 19),
	// and staff see who was told, over the API and on the request's page.
	r = e.do(c, "POST", "/api/v1/me/requests", map[string]any{"type": "restriction"})
	if r.StatusCode >= 300 {
		t.Fatalf("restriction: %d %s", r.StatusCode, r.body)
	}
	var req struct{ ID string }
	r.json(t, &req)
	e.runJobs(t)
	staff, _ := e.staff("dpo@example.org", "privacy")
	var told struct {
		Recipients []disclosure.Delivery `json:"recipients"`
	}
	e.do(staff, "GET", "/api/v1/admin/requests/"+req.ID+"/recipients", nil).json(t, &told)
	if len(told.Recipients) != 1 || told.Recipients[0].Recipient != "brand-partners" || told.Recipients[0].Status != disclosure.StatusDelivered {
		t.Fatalf("told of the restriction: %+v", told.Recipients)
	}
	if page := e.do(staff, "GET", "/admin/requests/"+req.ID, nil); !strings.Contains(string(page.body), "Recipients told") ||
		!strings.Contains(string(page.body), told.Recipients[0].ID) {
		t.Fatalf("the request's page does not show who was told: %d", page.StatusCode)
	}
}

// J16 and M13 over HTTP: privacy staff record legal requests (a past
// notification date refused as a problem naming the field), and the
// public report, page and JSON, counts them without naming anyone.
func TestPromiseM13_TransparencyOverHTTP(t *testing.T) {
	e := sqliteEnv(t, envOptions{})
	_, token := e.member("kim@example.org", "Kim")
	_ = token
	var me struct{ ID string }
	c, _ := e.login("kim@example.org", testPassword)
	e.do(c, "GET", "/api/v1/me", nil).json(t, &me)
	staff, _ := e.staff("dpo@example.org", "privacy")
	in := map[string]any{"kind": "court-order", "jurisdiction": "JP", "authority": "Tokyo District Court", "subjects": []string{me.ID},
		"categories": []string{"identity"}, "decision": "complied", "decision_reason": "valid order", "notify": "delay",
		"notify_after": e.clock.Now().Add(-time.Hour).Format(time.RFC3339), "notify_reason": "gag"}
	r := e.do(staff, "POST", "/api/v1/admin/legal-requests", in)
	var prob struct {
		Type  string `json:"type"`
		Field string `json:"field"`
	}
	r.json(t, &prob)
	if r.StatusCode != http.StatusUnprocessableEntity || prob.Field != "notify_after" || prob.Type == "" {
		t.Fatalf("a past notification date: %d %s", r.StatusCode, r.body)
	}
	in["notify_after"] = e.clock.Now().Add(30 * 24 * time.Hour).Format(time.RFC3339)
	if r := e.do(staff, "POST", "/api/v1/admin/legal-requests", in); r.StatusCode != http.StatusCreated {
		t.Fatalf("record: %d %s", r.StatusCode, r.body)
	}
	if r := e.do(c, "POST", "/api/v1/admin/legal-requests", in); r.StatusCode != http.StatusForbidden {
		t.Fatalf("a member records a legal request: %d", r.StatusCode)
	}
	var rep disclosure.Report
	r = e.do(nil, "GET", "/api/v1/transparency", nil)
	r.json(t, &rep)
	if len(rep.Periods) != 1 || rep.Periods[0].Requests != 1 || rep.Periods[0].Rows[0].Kind != "court-order" || rep.Periods[0].Accounts != "1-9" {
		t.Fatalf("report %+v", rep)
	}
	page := e.do(nil, "GET", "/transparency", nil)
	if page.StatusCode != http.StatusOK || !strings.Contains(string(page.body), "court-order") {
		t.Fatalf("page: %d", page.StatusCode)
	}
	for _, secret := range []string{me.ID, "Tokyo District Court", "kim@"} {
		if strings.Contains(string(page.body), secret) || strings.Contains(string(r.body), secret) {
			t.Fatalf("the public report shows %q", secret)
		}
	}
	if r := e.do(staff, "GET", "/admin/legal-requests", nil); r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "Tokyo District Court") {
		t.Fatalf("the register page: %d", r.StatusCode)
	}
	if r := e.do(staff, "GET", "/admin/disclosures?recipient=authorities", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("the disclosures page: %d", r.StatusCode)
	}
	// The register's form: a past date is drawn again with the message
	// beside the field; a good one is recorded.
	form := url.Values{"kind": {"subpoena"}, "jurisdiction": {"US"}, "authority": {"FBI"}, "subjects": {me.ID}, "categories": {"identity"},
		"decision": {"pending"}, "notify": {"delay"}, "notify_after": {"2020-01-01"}, "notify_reason": {"gag"}}
	r = e.do(staff, "POST", "/admin/legal-requests", form)
	if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "in the past") {
		t.Fatalf("a past date on the form: %d", r.StatusCode)
	}
	form.Set("notify_after", e.clock.Now().AddDate(0, 1, 0).Format("2006-01-02"))
	if r := e.do(staff, "POST", "/admin/legal-requests", form); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("the form: %d %s", r.StatusCode, r.body)
	}
	var list struct {
		Requests []disclosure.LegalRequest `json:"legal_requests"`
	}
	e.do(staff, "GET", "/api/v1/admin/legal-requests", nil).json(t, &list)
	if len(list.Requests) != 2 || list.Requests[0].Kind != "subpoena" || list.Requests[0].Notify != "delay" {
		t.Fatalf("register: %+v", list.Requests)
	}
	// On its page: disclosing before deciding is refused; decided, the
	// disclosure is recorded and listed.
	lr := "/admin/legal-requests/" + list.Requests[0].ID
	if r := e.do(staff, "POST", lr+"/disclosures", url.Values{"subject": {me.ID}, "categories": {"identity"}}); r.StatusCode != http.StatusForbidden {
		t.Fatalf("disclosure on a pending request: %d", r.StatusCode)
	}
	if r := e.do(staff, "POST", lr+"/decision", url.Values{"decision": {"complied"}, "reason": {"valid subpoena"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("decision: %d %s", r.StatusCode, r.body)
	}
	if r := e.do(staff, "POST", lr+"/disclosures", url.Values{"subject": {me.ID}, "categories": {"identity"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("disclosure: %d %s", r.StatusCode, r.body)
	}
	if r := e.do(staff, "POST", lr+"/notification", url.Values{"notify": {"delay"}, "notify_after": {"2020-01-01"}, "reason": {"x"}}); r.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("an extension into the past: %d", r.StatusCode)
	}
	page = e.do(staff, "GET", lr, nil)
	if page.StatusCode != http.StatusOK || !strings.Contains(string(page.body), "valid subpoena") || strings.Contains(string(page.body), "Nothing yet.") {
		t.Fatalf("the request's page: %d", page.StatusCode)
	}
}

// A legal request's page lists its own disclosures however many were
// made on other requests since: the oldest request's one shows beside
// 500 later disclosures to the same authority on another request.
func TestLegalRequestPageListsItsDisclosuresAmongMany(t *testing.T) {
	e := sqliteEnv(t, envOptions{})
	ctx := context.Background()
	_, _ = e.member("kim@example.org", "Kim")
	var me struct{ ID string }
	c, _ := e.login("kim@example.org", testPassword)
	e.do(c, "GET", "/api/v1/me", nil).json(t, &me)
	staff, _ := e.staff("dpo@example.org", "privacy")
	d := e.svc.Disclosure
	record := func() disclosure.LegalRequest {
		t.Helper()
		lr, err := d.RecordLegalRequest(ctx, "dpo", disclosure.LegalInput{Kind: disclosure.KindCourtOrder, Jurisdiction: "JP",
			Authority: "Tokyo District Court", Subjects: []string{me.ID}, Categories: []string{"identity"},
			Decision: disclosure.DecisionComplied, DecisionReason: "valid order", Notify: disclosure.NotifyNever, NotifyReason: "gag"})
		if err != nil {
			t.Fatal(err)
		}
		return lr
	}
	old := record()
	if _, err := d.DiscloseOnRequest(ctx, "dpo", "privacy", old.ID, me.ID, []string{"identity"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	later := record()
	first, err := d.DiscloseOnRequest(ctx, "dpo", "privacy", later.ID, me.ID, []string{"identity"})
	if err != nil {
		t.Fatal(err)
	}
	// 500 more on the later request, written as the register would.
	if err := e.db.InTx(ctx, func(tx *sql.Tx) error {
		for i := range 500 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO disclosures (id, subject_id, recipient_id, recipient_ref, purpose, categories, fields,
				basis, basis_ref, actor, disclosed_at) SELECT $1, subject_id, recipient_id, recipient_ref, purpose, categories, fields, basis,
				basis_ref, actor, $2 FROM disclosures WHERE id = $3`, "dis_many"+strconv.Itoa(i), first.DisclosedAt.Add(time.Duration(i+1)*time.Second),
				first.ID); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	page := e.do(staff, "GET", "/admin/legal-requests/"+old.ID, nil)
	if page.StatusCode != http.StatusOK || strings.Contains(string(page.body), "Nothing yet.") || !strings.Contains(string(page.body), me.ID) {
		t.Fatalf("the older request's page: %d, its disclosure missing", page.StatusCode)
	}
	if n := strings.Count(string(page.body), "<td><code>staff:dpo</code></td>"); n != 1 {
		t.Fatalf("the older request's page lists %d disclosures, want its 1", n)
	}
}
