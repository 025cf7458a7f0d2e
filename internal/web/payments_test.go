package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v82/webhook"

	"steward/internal/store"
	"steward/internal/store/storetest"
)

const testWebhookSecret = "whsec_test_0123456789abcdef"

// signedEvent is a processor event signed the way the processor signs it.
func signedEvent(t testing.TB, payload string) (string, string) {
	t.Helper()
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: testWebhookSecret})
	return string(sp.Payload), sp.Header
}

// TestPromiseJ17_PaymentEndpointsRefusePlainHTTP: the webhook and the
// card reads refuse plain HTTP outside development mode.
func TestPromiseJ17_PaymentEndpointsRefusePlainHTTP(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{policyFile: "jmir.yaml", paymentSecret: testWebhookSecret})
	body, sig := signedEvent(t, `{"id":"evt_1","object":"event","type":"customer.created","data":{"object":{"id":"cus_1","object":"customer"}}}`)
	assertProblem(t, e.do(nil, "POST", "/api/v1/payments/webhook", body, "Stripe-Signature", sig, "Content-Type", "application/json"), 403, "insecure_transport")
	member, _ := e.member("ann@example.org", "Ann")
	assertProblem(t, e.do(member, "GET", "/api/v1/payments/methods", nil), 403, "insecure_transport")
}

// TestPromiseJ9_PaymentWebhookAndReads: in development mode (or over TLS)
// a signed event stores the member's card as the policy declares it, the
// member and billing staff read it, support staff are refused, and a
// delivery with a bad signature is refused without storing anything.
func TestPromiseJ9_PaymentWebhookAndReads(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, envOptions{policyFile: "jmir.yaml", paymentSecret: testWebhookSecret, config: Config{Dev: true}})
		member, _ := e.member("ann@example.org", "Ann")
		sub, err := e.svc.Subjects.FindByEmail(context.Background(), e.db, e.svc.Door, "ann@example.org")
		if err != nil {
			t.Fatal(err)
		}
		post := func(payload string) resp {
			body, sig := signedEvent(t, payload)
			return e.do(nil, "POST", "/api/v1/payments/webhook", body, "Stripe-Signature", sig, "Content-Type", "application/json")
		}
		if r := post(`{"id":"evt_c1","object":"event","type":"customer.created","data":{"object":{"id":"cus_A1","object":"customer","email":"someone@example.org","name":"Planted Name","metadata":{"steward_subject":"` + sub.ID + `"}}}}`); r.StatusCode != http.StatusOK {
			t.Fatalf("customer event: %d %s", r.StatusCode, r.body)
		}
		pm := `{"id":"evt_p1","object":"event","type":"payment_method.attached","data":{"object":{"id":"pm_1","object":"payment_method","customer":"cus_A1","type":"card",` +
			`"card":{"brand":"visa","last4":"4242","exp_month":12,"exp_year":2030,"fingerprint":"PlantedFingerprint"},` +
			`"billing_details":{"name":"Planted Holder","email":"planted@example.org","phone":"+1 555 0100","address":{"line1":"1 Main St","city":"Toronto","postal_code":"M5V","country":"CA"}},"metadata":{"note":"4242424242424242"}}}}`
		r := post(pm)
		if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), `"action":"stored"`) {
			t.Fatalf("payment method event: %d %s", r.StatusCode, r.body)
		}
		if r := post(pm); !strings.Contains(string(r.body), `"duplicate":true`) {
			t.Errorf("a replayed event: %d %s", r.StatusCode, r.body)
		}
		got := e.do(member, "GET", "/api/v1/payments/methods", nil)
		if got.StatusCode != http.StatusOK || !strings.Contains(string(got.body), `"card_last4":"4242"`) || !strings.Contains(string(got.body), `"card_brand":"visa"`) {
			t.Fatalf("the member's cards: %d %s", got.StatusCode, got.body)
		}
		for _, planted := range []string{"Planted", "planted@example.org", "4242424242424242", "555 0100"} {
			if strings.Contains(string(got.body), planted) || strings.Contains(string(storetest.RowBytes(t, e.db, `SELECT * FROM payment_methods`)), planted) {
				t.Errorf("%q was kept", planted)
			}
		}
		billing, _ := e.staff("billing@example.org", "billing")
		if r := e.do(billing, "GET", "/api/v1/payments/members/"+sub.ID+"/methods", nil); r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "4242") {
			t.Errorf("billing staff: %d %s", r.StatusCode, r.body)
		}
		support, _ := e.staff("support@example.org", "support")
		if r := e.do(support, "GET", "/api/v1/payments/members/"+sub.ID+"/methods", nil); r.StatusCode != http.StatusForbidden {
			t.Errorf("support staff read cards: %d %s", r.StatusCode, r.body)
		}
		body, _ := signedEvent(t, `{"id":"evt_x","object":"event","type":"payment_method.attached","data":{"object":{"id":"pm_2","object":"payment_method","customer":"cus_A1","card":{"brand":"amex","last4":"0005"}}}}`)
		bad := e.do(nil, "POST", "/api/v1/payments/webhook", body, "Stripe-Signature", "t=1,v1=deadbeef", "Content-Type", "application/json")
		assertProblem(t, bad, 401, "unauthorized")
		if strings.Contains(string(e.do(member, "GET", "/api/v1/payments/methods", nil).body), "0005") {
			t.Error("an event with a bad signature was stored")
		}
	})
}
