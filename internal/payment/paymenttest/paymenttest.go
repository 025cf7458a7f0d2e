// Package paymenttest starts Stripe's official mock server (stripe-mock)
// for tests, gives the official client pointed at it, and builds and signs
// webhook events the way Stripe does. stripe-mock sends no webhooks: a
// test creates objects there with the client and wraps the answers in
// events itself. Without stripe-mock installed a test fails under CI
// (which installs it) and is skipped otherwise.
package paymenttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"steward/internal/testsrv"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// Secret is the webhook endpoint secret tests sign with.
const Secret = "whsec_stewardtest0123456789abcdef"

// Binary finds stripe-mock: on PATH or where go install puts it.
func Binary(t testing.TB) string {
	t.Helper()
	return testsrv.Binary(t, "stripe-mock", "go install github.com/stripe/stripe-mock@v0.203.0")
}

// Start starts stripe-mock on a free loopback port for the test, waits
// until it answers, and returns its base URL.
func Start(t testing.TB) string {
	t.Helper()
	srv := testsrv.Start(t, Binary(t), func(addr string) []string { return []string{"-http-addr", addr} }, nil,
		func(addr string) (bool, error) {
			req, _ := http.NewRequest("GET", "http://"+addr+"/v1/customers", nil)
			req.SetBasicAuth("sk_test_123", "")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		})
	return "http://" + srv.Addr
}

// Client returns the official client pointed at a stripe-mock, with a
// test key, no retries and no logging.
func Client(url string) *stripe.Client {
	cfg := &stripe.BackendConfig{URL: stripe.String(url), MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}}
	return stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))
}

// Event wraps an object (as JSON, the way the API answered it) in a
// webhook event of a type, as Stripe delivers it.
func Event(id, typ string, object []byte) []byte {
	return EventWithPrevious(id, typ, object, nil)
}

// EventWithPrevious is Event with the previous values of the object's
// changed attributes (an update or a detachment).
func EventWithPrevious(id, typ string, object, previous []byte) []byte {
	data := map[string]json.RawMessage{"object": object}
	if previous != nil {
		data["previous_attributes"] = previous
	}
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": stripe.APIVersion, "created": time.Now().Unix(),
		"livemode": false, "pending_webhooks": 1, "type": typ, "data": data,
		"request": map[string]any{"id": "req_" + strings.TrimPrefix(id, "evt_"), "idempotency_key": nil},
	})
	if err != nil {
		panic(fmt.Sprintf("paymenttest: event: %v", err)) // the object is not JSON: a broken test
	}
	return b
}

// Sign returns the Stripe-Signature header Stripe would send with the
// payload, signed with secret at the given time.
func Sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}
