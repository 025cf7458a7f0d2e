package payment_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"

	"steward/examples"
	"steward/internal/app/services"
	"steward/internal/app/services/servicestest"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/payment"
	"steward/internal/payment/paymenttest"
	"steward/internal/policy"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// logBuffer collects everything every service logs, for scanning.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

type env struct {
	t    testing.TB
	ctx  context.Context
	db   *store.DB
	svc  *services.Services
	pay  *payment.Service
	clk  *clock.Fake
	logs *logBuffer
}

// policyOf reads examples/jmir.yaml, changed by edits (old → new, each
// of which must apply), and parses it.
func policyOf(t testing.TB, edits ...string) *policy.Policy {
	t.Helper()
	data, err := fs.ReadFile(examples.FS, "jmir.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(edits); i += 2 {
		if !bytes.Contains(data, []byte(edits[i])) {
			t.Fatalf("jmir.yaml has no %q to change", edits[i])
		}
		data = bytes.Replace(data, []byte(edits[i]), []byte(edits[i+1]), 1)
	}
	pol, err := policy.Parse("jmir.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// Edits of jmir.yaml the tests use.
var (
	// withoutBrand drops the card brand from the payment category.
	withoutBrand = []string{
		"fields: [card_token, card_brand, card_last4, billing_address]", "fields: [card_token, card_last4, billing_address]",
		"sensitive: [card_token, card_brand, card_last4, billing_address]", "sensitive: [card_token, card_last4, billing_address]",
	}
	// withPaymentDesk adds a staff role that takes payments (named apart
	// from any billing role the example may gain).
	withPaymentDesk = []string{"staff:\n", "staff:\n  payment-desk:\n    description: Takes payments and answers questions about them.\n    purposes: [payment]\n"}
	// withInvoices adds invoices, a payment category kept for a legal
	// obligation.
	withInvoices = []string{
		"  activity:\n    # J2:", "  invoices:\n    description: The invoices of what you bought.\n    fields: [invoice]\n    payment: true\n" +
			"    source: [subject]\n    legal_obligation: Tax law obliges us to keep every invoice for ten years after the year it was issued.\n" +
			"  activity:\n    # J2:",
		"    uses: [payment, identity]", "    uses: [payment, identity, invoices]",
		"  payment: account-lifetime\n", "  payment: account-lifetime\n  invoices: 10 years\n",
	}
)

// newEnv builds every service on db as the app does, with pol, and the
// payment service beside them; everything they log goes to e.logs.
func newEnv(t testing.TB, db *store.DB, pol *policy.Policy) *env {
	t.Helper()
	logs := &logBuffer{}
	svc, clk := servicestest.Build(t, db, pol, services.Config{BaseURL: "http://steward.test", PaymentSecret: paymenttest.Secret},
		slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return &env{t: t, ctx: context.Background(), db: db, svc: svc, pay: svc.Payment, clk: clk, logs: logs}
}

// each runs fn on SQLite and PostgreSQL with jmir.yaml changed by edits.
func each(t *testing.T, edits []string, fn func(t *testing.T, e *env)) {
	storetest.Each(t, schema.Migrations(), func(t *testing.T, db *store.DB) { fn(t, newEnv(t, db, policyOf(t, edits...))) })
}

// member signs a member up, confirms their address, and returns their id.
func (e *env) member(email string) string {
	e.t.Helper()
	return servicestest.Member(e.t, e.svc, email, "Member")
}

// unverifiedMember signs a member up without confirming the address.
func (e *env) unverifiedMember(email string) string {
	e.t.Helper()
	return servicestest.UnverifiedMember(e.t, e.svc, email, "Member")
}

var eventSeq atomic.Int64

// deliver wraps an object in a fresh event of a type, signs it now with
// the endpoint's secret and hands it to the webhook.
func (e *env) deliver(typ string, object []byte) (payment.Outcome, error) {
	e.t.Helper()
	body := paymenttest.Event(fmt.Sprintf("evt_test%d", eventSeq.Add(1)), typ, object)
	return e.pay.Webhook(e.ctx, body, paymenttest.Sign(body, paymenttest.Secret, time.Now()))
}

// mustDeliver is deliver, failing the test on an error or another action.
func (e *env) mustDeliver(typ string, object []byte, want payment.Action) payment.Outcome {
	e.t.Helper()
	out, err := e.deliver(typ, object)
	if err != nil {
		e.t.Fatalf("%s: %v", typ, err)
	}
	if out.Action != want {
		e.t.Fatalf("%s: action %q (%s), want %q", typ, out.Action, out.Reason, want)
	}
	return out
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRowContext(e.ctx, query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// audits returns the audit entries of an action, newest first.
func (e *env) audits(action string) []audit.Entry {
	e.t.Helper()
	all, err := e.svc.Audit.List(e.ctx, 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Entry
	for _, en := range all {
		if en.Action == action {
			out = append(out, en)
		}
	}
	return out
}

// stored returns every byte of every row of every table, on either
// engine: what a copy of the database holds.
func (e *env) stored() []byte {
	e.t.Helper()
	cols, err := e.db.Columns(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []byte
	for _, c := range cols {
		if seen[c.Table] {
			continue
		}
		seen[c.Table] = true
		out = append(out, storetest.RowBytes(e.t, e.db, `SELECT * FROM "`+c.Table+`"`)...)
	}
	return out
}

// paymentRows counts the rows of the package's tables.
func (e *env) paymentRows() map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for _, t := range payment.Tables() {
		out[t.Name] = e.count(`SELECT COUNT(*) FROM ` + t.Name)
	}
	return out
}

// mock is Stripe's mock server with the official client on it.
type mock struct {
	t  testing.TB
	sc *stripe.Client
}

func newMock(t testing.TB) *mock {
	return &mock{t: t, sc: paymenttest.Client(paymenttest.Start(t))}
}

// customer creates a customer at the processor and returns its id and
// the processor's answer.
func (m *mock) customer(p *stripe.CustomerCreateParams) (string, []byte) {
	m.t.Helper()
	c, err := m.sc.V1Customers.Create(context.Background(), p)
	if err != nil {
		m.t.Fatalf("stripe-mock: create customer: %v", err)
	}
	return c.ID, c.LastResponse.RawJSON
}

// card creates a card payment method at the processor (number, CVC and
// billing details as a browser would send them to it) and attaches it to
// the customer; it returns the method's id and the attachment's answer.
func (m *mock) card(customer string, bd *stripe.PaymentMethodCreateBillingDetailsParams) (string, []byte) {
	m.t.Helper()
	ctx := context.Background()
	pm, err := m.sc.V1PaymentMethods.Create(ctx, &stripe.PaymentMethodCreateParams{Type: stripe.String("card"),
		Card: &stripe.PaymentMethodCreateCardParams{Number: stripe.String("4242424242424242"), ExpMonth: stripe.Int64(12),
			ExpYear: stripe.Int64(2034), CVC: stripe.String("314")}, BillingDetails: bd})
	if err != nil {
		m.t.Fatalf("stripe-mock: create payment method: %v", err)
	}
	at, err := m.sc.V1PaymentMethods.Attach(ctx, pm.ID, &stripe.PaymentMethodAttachParams{Customer: stripe.String(customer)})
	if err != nil {
		m.t.Fatalf("stripe-mock: attach: %v", err)
	}
	return at.ID, at.LastResponse.RawJSON
}

// detach detaches a payment method at the processor and returns the
// answer.
func (m *mock) detach(id string) []byte {
	m.t.Helper()
	pm, err := m.sc.V1PaymentMethods.Detach(context.Background(), id, &stripe.PaymentMethodDetachParams{})
	if err != nil {
		m.t.Fatalf("stripe-mock: detach: %v", err)
	}
	return pm.LastResponse.RawJSON
}

// patch sets values in a JSON object by dotted path: what the mock
// server does not echo back (it answers from fixtures) but Stripe would.
func patch(t testing.TB, raw []byte, set map[string]any) []byte {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	for path, v := range set {
		parts := strings.Split(path, ".")
		m := obj
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// invoice creates an invoice for the customer at the processor, pays it
// and returns the payment's answer.
func (m *mock) invoice(customer string) []byte {
	m.t.Helper()
	ctx := context.Background()
	in, err := m.sc.V1Invoices.Create(ctx, &stripe.InvoiceCreateParams{Customer: stripe.String(customer)})
	if err != nil {
		m.t.Fatalf("stripe-mock: create invoice: %v", err)
	}
	paid, err := m.sc.V1Invoices.Pay(ctx, in.ID, &stripe.InvoicePayParams{})
	if err != nil {
		m.t.Fatalf("stripe-mock: pay invoice: %v", err)
	}
	return patch(m.t, paid.LastResponse.RawJSON, map[string]any{"customer": customer})
}
