package payment_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"steward/internal/fault"
	"steward/internal/payment"
	"steward/internal/payment/paymenttest"
	"steward/internal/schema"
	"steward/internal/store/storetest"
)

// cardObject is a payment method as stripe-mock answers an attachment,
// for the fuzz seeds and the benchmark, which run without it.
func cardObject(id, customer string) []byte {
	return []byte(`{"allow_redisplay":"unspecified","billing_details":{"address":{"city":"San Francisco","country":"US",` +
		`"line1":"1234 Fake Street","line2":null,"postal_code":"94102","state":"CA"},"email":"jenny@example.com","name":null,` +
		`"phone":"+15555555555","tax_id":null},"card":{"brand":"visa","checks":{"address_line1_check":null,` +
		`"address_postal_code_check":null,"cvc_check":"pass"},"country":"US","display_brand":"visa","exp_month":12,"exp_year":2034,` +
		`"fingerprint":"AOB934RVNwzk6xtn","funding":"credit","last4":"4242","networks":{"available":["visa"],"preferred":null},` +
		`"three_d_secure_usage":{"supported":true},"wallet":null},"created":1234567890,"customer":"` + customer + `",` +
		`"id":"` + id + `","livemode":false,"metadata":{"order_id":"123456789"},"object":"payment_method","type":"card"}`)
}

// panRE finds what looks like a card number: 13 or more digits, single
// spaces or dashes between them allowed.
var panRE = regexp.MustCompile(`[0-9](?:[ -]?[0-9]){12,}`)

// FuzzWebhook feeds the webhook arbitrary bodies, signed with the
// endpoint's secret (so parsing is reached) or sent with an arbitrary
// signature header. Whatever arrives, the answer is an outcome or a coded
// refusal, never an internal error (a 5xx), and neither quotes anything
// that looks like a card number.
func FuzzWebhook(f *testing.F) {
	e := newEnv(f, storetest.SQLite(f, schema.Migrations()), policyOf(f))
	ann := e.member("ann@example.org")
	if _, err := e.pay.LinkCustomer(e.ctx, ann, "cus_fuzz"); err != nil {
		f.Fatal(err)
	}
	for _, body := range [][]byte{
		paymenttest.Event("evt_seed1", "payment_method.attached", cardObject("pm_seed1", "cus_fuzz")),
		paymenttest.Event("evt_seed2", "payment_method.automatically_updated", cardObject("pm_seed1", "cus_fuzz")),
		paymenttest.Event("evt_seed3", "payment_method.attached", cardObject("pm_seed2", "cus_unknown")),
		paymenttest.Event("evt_seed4", "payment_method.detached", cardObject("pm_seed1", "")),
		paymenttest.Event("evt_seed5", "customer.created", []byte(`{"id":"cus_seed","object":"customer","email":"ann@example.org",`+
			`"metadata":{"steward_subject":"`+ann+`"},"name":"Ann","phone":"+15550100777"}`)),
		paymenttest.Event("evt_seed6", "invoice.paid", []byte(`{"id":"in_1","object":"invoice","customer":"cus_fuzz","number":"INV-1",`+
			`"amount_paid":1999,"currency":"usd","status_transitions":{"paid_at":1767225600}}`)),
		paymenttest.Event("evt_seed7", "charge.succeeded", []byte(`{"id":"ch_1","object":"charge"}`)),
		[]byte(`{"id":"evt_x","type":"payment_method.attached","data":{"object":{"id":"pm_x","object":"payment_method","customer":{"id":"cus_fuzz"},"card":{"last4":4242424242424242}}}}`),
		[]byte(`{}`), []byte(`[]`), []byte(`null`), []byte(``),
	} {
		f.Add(body, "", true)
	}
	f.Add([]byte(`{"id":"evt_y","type":"x.y"}`), "t=1,v1=00", false)
	f.Add([]byte(`{"id":"evt_y","type":"x.y"}`), "t=,v1=", false)
	f.Add([]byte(`{"id":"evt_y","type":"x.y"}`), "", false)
	f.Fuzz(func(t *testing.T, body []byte, header string, sign bool) {
		if sign {
			header = paymenttest.Sign(body, paymenttest.Secret, time.Now())
		}
		out, err := e.pay.Webhook(context.Background(), body, header)
		if err != nil {
			if fault.CodeOf(err) == fault.Internal {
				t.Fatalf("an internal error: %v", err)
			}
			if panRE.MatchString(err.Error()) {
				t.Fatalf("the refusal quotes what looks like a card number: %v", err)
			}
			return
		}
		if !sign {
			t.Fatalf("an unsigned body was accepted: %+v", out)
		}
		if panRE.MatchString(out.EventID + " " + out.Type + " " + out.Reason) {
			t.Fatalf("the outcome holds what looks like a card number: %+v", out)
		}
	})
}

// BenchmarkWebhook is one payment_method.attached delivery, verified and
// kept (sealed for a linked member, upserted over 100 cards): the
// signature check, the decoding, the event's record, the door's view and
// the audit entry, on SQLite.
func BenchmarkWebhook(b *testing.B) {
	e := newEnv(b, storetest.SQLite(b, schema.Migrations()), policyOf(b))
	ann := e.member("ann@example.org")
	if _, err := e.pay.LinkCustomer(e.ctx, ann, "cus_bench"); err != nil {
		b.Fatal(err)
	}
	// Bodies are made before the clock runs; each delivery writes its
	// own event id (fixed width) into a copy.
	const placeholder = "evt_bench0000000000"
	bodies, at := make([][]byte, 100), make([]int, 100)
	for i := range bodies {
		bodies[i] = paymenttest.Event(placeholder, "payment_method.attached", cardObject("pm_bench"+strconv.Itoa(i), "cus_bench"))
		at[i] = bytes.Index(bodies[i], []byte(placeholder)) + len("evt_bench")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		body := bytes.Clone(bodies[i%len(bodies)])
		copy(body[at[i%len(bodies)]:], fmt.Appendf(nil, "%010d", i))
		out, err := e.pay.Webhook(e.ctx, body, paymenttest.Sign(body, paymenttest.Secret, time.Now()))
		if err != nil || out.Action != payment.ActionStored {
			b.Fatalf("%+v, %v", out, err)
		}
		i++
	}
}
