// Package paymenttest starts Stripe's official mock server (stripe-mock)
// for tests, gives the official client pointed at it, and builds and signs
// webhook events the way Stripe does. stripe-mock sends no webhooks: a
// test creates objects there with the client and wraps the answers in
// events itself. Without stripe-mock installed a test fails under CI
// (which installs it) and is skipped otherwise.
package paymenttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	if p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "stripe-mock"); fileExists(p) {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("stripe-mock is not installed (.ci/run installs it)")
	}
	t.Skip("stripe-mock is not installed: go install github.com/stripe/stripe-mock@v0.203.0")
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Start starts stripe-mock on a free loopback port for the test, waits
// until it answers, and returns its base URL.
func Start(t testing.TB) string {
	t.Helper()
	bin := Binary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-http-addr", addr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	base := "http://" + addr
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", base+"/v1/customers", nil)
		req.SetBasicAuth("sk_test_123", "")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stripe-mock did not come up on %s: %v\n%s", addr, err, out.String())
		}
	}
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
