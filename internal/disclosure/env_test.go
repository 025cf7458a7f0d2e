package disclosure_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"steward/internal/app/services"
	"steward/internal/app/services/servicestest"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/disclosure"
	"steward/internal/policy"
	"steward/internal/rights"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// partnerSecret is the brand partners' webhook secret in the
// environment, as Standard Webhooks writes one.
const partnerSecret = "whsec_c2VjcmV0IG9mIHRoZSBicmFuZCBwYXJ0bmVycyBlbmRwb2ludA=="

var partnerKey = []byte("secret of the brand partners endpoint")

// received is one request the recipient's test endpoint got.
type received struct {
	ID, Timestamp, Signature string
	Body                     []byte
}

// endpoint is a recipient's webhook: a real HTTP server that answers with
// the status its test sets and keeps every request.
type endpoint struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	status int
	hang   chan struct{}
}

func newEndpoint(t testing.TB) *endpoint {
	ep := &endpoint{status: http.StatusNoContent}
	ep.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ep.mu.Lock()
		ep.got = append(ep.got, received{ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"),
			Signature: r.Header.Get("webhook-signature"), Body: body})
		status, hang := ep.status, ep.hang
		ep.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}
		if status == http.StatusFound {
			http.Redirect(w, r, "http://elsewhere.example/", http.StatusFound)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(func() {
		ep.mu.Lock()
		if ep.hang != nil {
			close(ep.hang)
			ep.hang = nil
		}
		ep.mu.Unlock()
		ep.srv.Close()
	})
	return ep
}

func (ep *endpoint) setStatus(s int) {
	ep.mu.Lock()
	ep.status = s
	ep.mu.Unlock()
}

func (ep *endpoint) requests() []received {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return append([]received(nil), ep.got...)
}

type env struct {
	t   *testing.T
	ctx context.Context
	db  *store.DB
	svc *services.Services
	clk *clock.Fake
	d   *disclosure.Service
	ep  *endpoint
}

type envOpts struct {
	policy  string            // example file, jmir.yaml by default
	env     map[string]string // extra environment
	private bool              // leave private addresses refused
	tweak   func(*policy.Policy)
}

// newEnv builds the services under an example policy whose brand
// partners' webhook points at a test endpoint.
func newEnv(t *testing.T, db *store.DB, o envOpts) *env {
	if o.policy == "" {
		o.policy = "jmir.yaml"
	}
	ep := newEndpoint(t)
	pol := servicestest.Example(t, o.policy)
	if r := pol.Recipient("brand-partners"); r != nil && r.Webhook != nil {
		r.Webhook.URL = ep.srv.URL + "/steward/orders"
	}
	if o.tweak != nil {
		o.tweak(pol)
	}
	vars := map[string]string{"STEWARD_RECIPIENT_BRAND_PARTNERS_SECRET": partnerSecret, "STEWARD_WEBHOOKS_ALLOW_PRIVATE": "1",
		"STEWARD_WEBHOOK_TIMEOUT": "2s"}
	if o.private {
		delete(vars, "STEWARD_WEBHOOKS_ALLOW_PRIVATE")
	}
	for k, v := range o.env {
		vars[k] = v
	}
	svc, clk := servicestest.Build(t, db, pol, services.Config{Getenv: func(k string) string { return vars[k] }}, nil)
	return &env{t: t, ctx: context.Background(), db: db, svc: svc, clk: clk, d: svc.Disclosure, ep: ep}
}

// each runs fn on SQLite and, when configured, PostgreSQL.
func each(t *testing.T, o envOpts, fn func(t *testing.T, e *env)) {
	storetest.Each(t, schema.Migrations(), func(t *testing.T, db *store.DB) { fn(t, newEnv(t, db, o)) })
}

func (e *env) member(email, name string) string {
	return servicestest.Member(e.t, e.svc, email, name)
}

// run runs the due jobs a few times (a job may queue another).
func (e *env) run() {
	e.t.Helper()
	for range 4 {
		if _, err := e.svc.Jobs.RunDue(e.ctx); err != nil {
			e.t.Fatalf("run jobs: %v", err)
		}
	}
}

// actions lists the audit actions recorded since the start, in order.
func (e *env) actions() []audit.Entry {
	e.t.Helper()
	list, err := e.svc.Audit.List(e.ctx, 0, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// audited reports whether an entry of action with the detail values was
// recorded.
func (e *env) audited(action string, detail map[string]string) bool {
	for _, en := range e.actions() {
		if en.Action != action {
			continue
		}
		ok := true
		for k, v := range detail {
			ok = ok && en.Detail[k] == v
		}
		if ok {
			return true
		}
	}
	return false
}

// purchase is the JMIR partner-brand purchase: the member's declared
// fields go to the partner who fulfils the order (J12).
func (e *env) purchase(subjectID string, values map[string]string) disclosure.Disclosure {
	e.t.Helper()
	d, err := e.d.Disclose(e.ctx, disclosure.Request{Recipient: "brand-partners", Purpose: "order-fulfilment", Subject: subjectID,
		Values: values, Basis: disclosure.BasisContract, Actor: "subject", Event: "order.placed"})
	if err != nil {
		e.t.Fatalf("purchase: %v", err)
	}
	return d
}

// report is the member's access report, decoded.
func (e *env) report(subjectID string) rights.CoverSheet {
	e.t.Helper()
	var buf bytes.Buffer
	if err := e.svc.Rights.AccessReport(e.ctx, subjectID, &buf); err != nil {
		e.t.Fatalf("access report: %v", err)
	}
	var r struct {
		Cover rights.CoverSheet `json:"cover_sheet"`
	}
	if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
		e.t.Fatal(err)
	}
	return r.Cover
}

// ack signs an acknowledgement the way the partner would.
func ack(key []byte, id string, ts time.Time, events ...string) (string, string, []byte) {
	body, _ := json.Marshal(map[string]any{"events": events})
	tsS := jsonInt(ts.Unix())
	return tsS, disclosure.Sign(key, id, ts.Unix(), body), body
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func hasSub(s, sub string) bool { return strings.Contains(s, sub) }
