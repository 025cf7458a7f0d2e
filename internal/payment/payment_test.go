package payment_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/payment"
	"steward/internal/payment/paymenttest"
	"steward/internal/rights"
	"steward/internal/subject"
)

// TestWebhookKeepsCardsFromStripeMock: a customer and a card made at
// Stripe's mock server with the official client, delivered as signed
// events: the customer is linked to the member with its address, the
// card kept, changed by an update and deleted when detached.
func TestWebhookKeepsCardsFromStripeMock(t *testing.T) {
	m := newMock(t)
	each(t, nil, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org")
		cus, raw := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("ann@example.org")})
		e.mustDeliver("customer.created", raw, payment.ActionLinked)
		pm, attached := m.card(cus, nil)
		e.mustDeliver("payment_method.attached", attached, payment.ActionStored)
		methods, err := e.pay.Methods(e.ctx, door.System("payment"), ann)
		if err != nil {
			t.Fatal(err)
		}
		if len(methods) != 1 {
			t.Fatalf("methods = %+v, want one", methods)
		}
		got := methods[0]
		if got.Token != pm || got.Brand != "visa" || got.Last4 != "4242" || got.BillingAddress == nil || got.BillingAddress.Line1 == "" {
			t.Errorf("method = %+v, want %s, visa, 4242 and the processor's billing address", got, pm)
		}
		// The card network updates the card: the same row changes.
		e.clk.Advance(time.Minute)
		e.mustDeliver("payment_method.automatically_updated", patch(t, attached, map[string]any{"card.last4": "1881"}), payment.ActionStored)
		methods, _ = e.pay.Methods(e.ctx, door.System("payment"), ann)
		if len(methods) != 1 || methods[0].Last4 != "1881" || methods[0].ID != got.ID || !methods[0].UpdatedAt.After(got.UpdatedAt) {
			t.Errorf("after the update: %+v", methods)
		}
		e.mustDeliver("payment_method.detached", m.detach(pm), payment.ActionDeleted)
		if methods, _ = e.pay.Methods(e.ctx, door.Subject(), ann); len(methods) != 0 {
			t.Errorf("after the detachment: %+v", methods)
		}
		// Events of other types are acknowledged and change nothing.
		before := e.paymentRows()
		if out := e.mustDeliver("charge.succeeded", []byte(`{"id":"ch_1","object":"charge","customer":"`+cus+`"}`), payment.ActionIgnored); out.Duplicate {
			t.Errorf("a new event counted as a duplicate")
		}
		if after := e.paymentRows(); after["payment_methods"] != before["payment_methods"] || after["payment_customers"] != before["payment_customers"] {
			t.Errorf("an ignored event changed %v into %v", before, after)
		}
	})
}

// TestPromiseJ1_PaymentDataCollectedAtPurchaseKeepsOnlyDeclaredFields:
// events carrying the customer's name, email, phone, description and
// metadata, and a card's billing name, email, phone, fingerprint and
// metadata, leave only the declared fields in storage; with a policy that
// drops card_brand, the brand is not kept either.
func TestPromiseJ1_PaymentDataCollectedAtPurchaseKeepsOnlyDeclaredFields(t *testing.T) {
	m := newMock(t)
	for _, tc := range []struct {
		name  string
		edits []string
		brand string
	}{{"jmir", nil, "visa"}, {"without card_brand", withoutBrand, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			each(t, tc.edits, func(t *testing.T, e *env) {
				ann := e.member("ann@example.org")
				cus, raw := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("ann.other@example.org"),
					Name: stripe.String("Planted-Name-7c1"), Phone: stripe.String("+15550100777"),
					Description: stripe.String("Planted-description-7c1"), Metadata: map[string]string{"loyalty": "Planted-metadata-7c1"}})
				// What the mock does not echo, Stripe would: the metadata the
				// operator's app set, naming the member.
				raw = patch(t, raw, map[string]any{"name": "Planted-Name-7c1", "phone": "+15550100777", "description": "Planted-description-7c1",
					"metadata": map[string]any{"loyalty": "Planted-metadata-7c1", "steward_subject": ann}})
				e.mustDeliver("customer.updated", raw, payment.ActionLinked)
				pm, attached := m.card(cus, &stripe.PaymentMethodCreateBillingDetailsParams{Name: stripe.String("Planted-billing-name"),
					Email: stripe.String("planted-billing@example.org"), Phone: stripe.String("+15550100888")})
				var answer struct {
					Card struct{ Fingerprint string } `json:"card"`
				}
				json.Unmarshal(attached, &answer)
				attached = patch(t, attached, map[string]any{
					"billing_details.name": "Planted-billing-name", "billing_details.email": "planted-billing@example.org",
					"billing_details.phone": "+15550100888", "billing_details.address.line1": "12 Planted Street",
					"billing_details.address.city": "Springfield", "metadata": map[string]any{"order": "Planted-order-7c1"},
					"description": "Planted-pm-description-7c1"})
				e.mustDeliver("payment_method.attached", attached, payment.ActionStored)

				methods, err := e.pay.Methods(e.ctx, door.Subject(), ann)
				if err != nil || len(methods) != 1 {
					t.Fatalf("methods = %+v, %v", methods, err)
				}
				got := methods[0]
				if got.Token != pm || got.Last4 != "4242" || got.Brand != tc.brand || got.BillingAddress == nil ||
					got.BillingAddress.Line1 != "12 Planted Street" || got.BillingAddress.City != "Springfield" {
					t.Errorf("method = %+v (address %+v), want token, brand %q, last four and address", got, got.BillingAddress, tc.brand)
				}
				if tc.brand == "" {
					if n := e.count(`SELECT COUNT(*) FROM payment_methods WHERE card_brand_sealed IS NOT NULL`); n != 0 {
						t.Errorf("%d rows keep a brand the policy does not declare", n)
					}
				}
				stored := e.stored()
				for _, needle := range []string{"Planted-Name", "+15550100777", "Planted-description", "Planted-metadata", "Planted-billing-name",
					"planted-billing@example.org", "+15550100888", "Planted-order", "Planted-pm-description", "ann.other@example.org",
					"12 Planted Street", pm, cus, answer.Card.Fingerprint} {
					if needle != "" && bytes.Contains(stored, []byte(needle)) {
						t.Errorf("%q is in storage", needle)
					}
				}
				if rows := e.paymentRows(); rows["payment_methods"] != 1 || rows["payment_customers"] != 1 || rows["payment_quarantine"] != 0 {
					t.Errorf("rows = %v", rows)
				}
			})
		})
	}
}

// TestPromiseJ1_CardNumberNeverStoredOrLogged: events that carry a full
// card number in metadata, a description, a number field, track data and
// the billing address, and a CVC, leave none of them in any row of any
// table on either engine, nor in anything any service logged; refusals
// never quote one. (The policy is jmir.yaml with invoices declared, so
// invoice events are read too.)
func TestPromiseJ1_CardNumberNeverStoredOrLogged(t *testing.T) {
	m := newMock(t)
	const (
		pan    = "4242424242424242"
		track1 = "%B4242424242424242^DOE/JANE^34121010000000000000?"
		track2 = ";4242424242424242=34121010000000000?"
		cvc    = "8675"
	)
	each(t, withInvoices, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org")
		cus, raw := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("ann@example.org"), Description: stripe.String("card " + pan)})
		raw = patch(t, raw, map[string]any{"description": "card " + pan, "metadata": map[string]any{"pan": pan}, "number": pan})
		e.mustDeliver("customer.created", raw, payment.ActionLinked)
		_, attached := m.card(cus, nil)
		attached = patch(t, attached, map[string]any{"metadata": map[string]any{"note": pan, "track": track1}, "description": "paid with " + pan,
			"card.number": pan, "card.cvc": cvc, "card.track1": track1, "card.track2": track2,
			"billing_details.address.line2": "4242 4242 4242 4242"})
		out := e.mustDeliver("payment_method.attached", attached, payment.ActionStored)
		if !strings.Contains(out.Reason, "billing address was not kept") {
			t.Errorf("reason %q: the billing address holding a card number should be dropped and said so", out.Reason)
		}
		methods, err := e.pay.Methods(e.ctx, door.Subject(), ann)
		if err != nil || len(methods) != 1 || methods[0].BillingAddress != nil || methods[0].Last4 != "4242" {
			t.Errorf("methods = %+v, %v; want the card without its address", methods, err)
		}
		// A number where a short value belongs, an id that is a card
		// number: refused whole, nothing of them kept.
		if _, err := e.deliver("payment_method.updated", patch(t, attached, map[string]any{"card.last4": pan})); !fault.Is(err, fault.Invalid) {
			t.Errorf("a card number as the last four digits: %v, want invalid", err)
		} else if strings.Contains(err.Error(), pan) {
			t.Errorf("the refusal quotes the card number: %v", err)
		}
		if _, err := e.deliver("payment_method.updated", patch(t, attached, map[string]any{"card.last4": 4242424242424242})); !fault.Is(err, fault.Invalid) {
			t.Errorf("a card number as a JSON number: %v, want invalid", err)
		} else if strings.Contains(err.Error(), pan) {
			t.Errorf("the refusal quotes the card number: %v", err)
		}
		body := paymenttest.Event("evt_"+pan, "payment_method.attached", attached)
		if _, err := e.pay.Webhook(e.ctx, body, paymenttest.Sign(body, paymenttest.Secret, time.Now())); !fault.Is(err, fault.Invalid) {
			t.Errorf("an event id holding a card number: %v, want invalid", err)
		}
		// Invoices (declared here) refuse a card number as their number,
		// and a number too large for an amount without quoting it.
		for _, in := range []string{
			`{"id":"in_1","object":"invoice","customer":"` + cus + `","description":"` + pan + `","number":"` + pan + `","currency":"usd"}`,
			`{"id":"in_2","object":"invoice","customer":"` + cus + `","number":"INV-1","currency":"usd","amount_paid":` + pan + pan + `}`,
		} {
			if _, err := e.deliver("invoice.paid", []byte(in)); !fault.Is(err, fault.Invalid) {
				t.Errorf("an invoice holding a card number: %v, want invalid", err)
			} else if strings.Contains(err.Error(), pan) {
				t.Errorf("the refusal quotes the card number: %v", err)
			}
		}
		e.svc.Door.Close(e.ctx)

		stored, logs := e.stored(), e.logs.Bytes()
		for _, needle := range []string{pan, "4242 4242 4242 4242", "4242-4242-4242-4242", "DOE/JANE", "=3412101"} {
			if bytes.Contains(stored, []byte(needle)) {
				t.Errorf("%q is in storage", needle)
			}
			if bytes.Contains(logs, []byte(needle)) {
				t.Errorf("%q is in the logs", needle)
			}
		}
		for _, table := range []string{"payment_methods", "payment_customers", "payment_events", "payment_quarantine", "payment_invoices"} {
			if b := rowsOf(e, table); bytes.Contains(b, []byte(cvc)) {
				t.Errorf("the CVC is in %s", table)
			}
		}
		if bytes.Contains(logs, []byte(cvc)) {
			t.Errorf("the CVC is in the logs")
		}
		if len(logs) == 0 {
			t.Error("nothing was logged at all: the log scan reads nothing")
		}
	})
}

// TestPromiseJ9_PaymentDataReadOnlyToTakePayment: a member's cards are
// read for the purpose payment (by the system or a staff role holding
// it) and by the member's own request; marketing, support and a support
// role naming payment are refused by the guard, and each refusal is in
// the audit log.
func TestPromiseJ9_PaymentDataReadOnlyToTakePayment(t *testing.T) {
	m := newMock(t)
	each(t, withPaymentDesk, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org")
		staff := e.member("staff@example.org")
		cus, raw := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("ann@example.org")})
		e.mustDeliver("customer.created", raw, payment.ActionLinked)
		pm, attached := m.card(cus, nil)
		e.mustDeliver("payment_method.attached", attached, payment.ActionStored)
		for _, u := range []door.Use{door.System("payment"), door.Subject(), door.Staff(staff, "payment-desk", "payment")} {
			methods, err := e.pay.Methods(e.ctx, u, ann)
			if err != nil || len(methods) != 1 || methods[0].Token != pm {
				t.Errorf("%s: %+v, %v; want the card", u, methods, err)
			}
		}
		if reads := e.audits("staff.read"); len(reads) != 1 || reads[0].Subject != ann || reads[0].Detail["dataset"] != "payment_methods" {
			t.Errorf("staff reads audited: %+v", reads)
		}
		for _, u := range []door.Use{door.System("marketing"), door.System("support"), door.Staff(staff, "support", "support"),
			door.Staff(staff, "support", "payment")} {
			before := len(e.audits("guard.denied"))
			methods, err := e.pay.Methods(e.ctx, u, ann)
			if !fault.Is(err, fault.PurposeDenied) || methods != nil {
				t.Errorf("%s: %+v, %v; want purpose_denied", u, methods, err)
				continue
			}
			denied := e.audits("guard.denied")
			if len(denied) != before+1 {
				t.Errorf("%s: %d denials audited, want %d", u, len(denied), before+1)
				continue
			}
			if d := denied[0]; d.Subject != ann || d.Detail["purpose"] != u.Purpose || d.Detail["category"] != "payment" {
				t.Errorf("%s: audited %+v", u, d)
			}
		}
	})
}

// TestWebhookBadInputRefusedAndAudited: a bad, missing or malformed
// signature, a signature older than the tolerance, a body that is not
// JSON or not an event, an event whose values are not what they should
// be, and a replayed event: each refused (or, replayed, acknowledged as a
// duplicate) with a clear reason and a stable code, audited without its
// body, and nothing of it stored.
func TestWebhookBadInputRefusedAndAudited(t *testing.T) {
	m := newMock(t)
	each(t, nil, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org")
		cus, raw := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("ann@example.org")})
		e.mustDeliver("customer.created", raw, payment.ActionLinked)
		_, attached := m.card(cus, nil)
		good := paymenttest.Event("evt_bad_input", "payment_method.attached", attached)
		now := time.Now()
		cases := []struct {
			name, header string
			body         []byte
			code         fault.Code
			message      string
			reason       string
		}{
			{"bad signature", paymenttest.Sign(good, "whsec_another_endpoint_secret", now), good, fault.Unauthorized,
				"the webhook signature does not verify", "bad signature"},
			{"signature of another body", paymenttest.Sign([]byte(`{}`), paymenttest.Secret, now), good, fault.Unauthorized,
				"the webhook signature does not verify", "bad signature"},
			{"missing signature", "", good, fault.Unauthorized, "the Stripe-Signature header is missing", "missing signature"},
			{"malformed signature header", "t=now,v1", good, fault.Unauthorized, "the Stripe-Signature header is malformed", "malformed signature header"},
			{"timestamp outside tolerance", paymenttest.Sign(good, paymenttest.Secret, now.Add(-6*time.Minute)), good, fault.Unauthorized,
				"outside the tolerance of 5m0s", "timestamp outside tolerance"},
			{"malformed JSON", "", []byte(`{"id":"evt_1","type":"payment_method.attached","data":{"object":{"id":`), fault.Invalid,
				"not valid JSON", "malformed event"},
			{"not an event", "", []byte(`[1, 2, 3]`), fault.Invalid, "not a JSON event", "malformed event"},
			{"event without an id", "", []byte(`{"type":"payment_method.attached","data":{"object":{}}}`), fault.Invalid, "no valid id", "malformed event"},
			{"a customer where a card belongs", "", paymenttest.Event("evt_wrong_object", "payment_method.attached", raw), fault.Invalid,
				"must carry a payment_method", "refused event"},
			{"last four digits that are not", "", paymenttest.Event("evt_bad_last4", "payment_method.attached", patch(t, attached, map[string]any{"card.last4": "42a2"})),
				fault.Invalid, "not four digits", "refused event"},
			{"a customer id that is not", "", paymenttest.Event("evt_bad_customer", "payment_method.attached", patch(t, attached, map[string]any{"customer": "cus bad"})),
				fault.Invalid, "customer id is not valid", "refused event"},
			{"too large", "", append(bytes.Repeat([]byte(" "), payment.MaxPayload), good...), fault.TooLarge, "larger than", "too large"},
		}
		for _, tc := range cases {
			header := tc.header
			if header == "" && tc.reason != "missing signature" {
				header = paymenttest.Sign(tc.body, paymenttest.Secret, now)
			}
			before := e.paymentRows()
			refusals := len(e.audits("payment.webhook_refused"))
			_, err := e.pay.Webhook(e.ctx, tc.body, header)
			if fault.CodeOf(err) != tc.code || !strings.Contains(fault.MessageOf(err), tc.message) {
				t.Errorf("%s: %v, want %s with %q", tc.name, err, tc.code, tc.message)
			}
			if after := e.paymentRows(); !equalRows(before, after) {
				t.Errorf("%s: rows %v became %v", tc.name, before, after)
			}
			audited := e.audits("payment.webhook_refused")
			if len(audited) != refusals+1 || audited[0].Detail["reason"] != tc.reason || audited[0].Detail["code"] != string(tc.code) {
				t.Errorf("%s: audited %+v, want one more with reason %q", tc.name, audited, tc.reason)
			}
		}
		// Refused events are not marked processed: corrected, they go through.
		fixed := paymenttest.Event("evt_bad_last4", "payment_method.attached", attached)
		if out, err := e.pay.Webhook(e.ctx, fixed, paymenttest.Sign(fixed, paymenttest.Secret, now)); err != nil || out.Action != payment.ActionStored {
			t.Errorf("the corrected event: %+v, %v", out, err)
		}

		// A replay, as captured and as the processor's retry (signed anew),
		// stores nothing again and says so.
		header := paymenttest.Sign(good, paymenttest.Secret, now)
		first, err := e.pay.Webhook(e.ctx, good, header)
		if err != nil || first.Duplicate || first.Action != payment.ActionStored {
			t.Fatalf("first delivery: %+v, %v", first, err)
		}
		var updated time.Time
		if err := e.db.QueryRowContext(e.ctx, `SELECT updated_at FROM payment_methods WHERE subject_id = $1 ORDER BY updated_at DESC LIMIT 1`, ann).Scan(&updated); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(time.Hour)
		before := e.paymentRows()
		for _, h := range []string{header, paymenttest.Sign(good, paymenttest.Secret, time.Now())} {
			out, err := e.pay.Webhook(e.ctx, good, h)
			if err != nil || !out.Duplicate || out.Action != payment.ActionIgnored || out.EventID != "evt_bad_input" {
				t.Errorf("replay: %+v, %v; want a duplicate", out, err)
			}
		}
		var again time.Time
		e.db.QueryRowContext(e.ctx, `SELECT updated_at FROM payment_methods WHERE subject_id = $1 ORDER BY updated_at DESC LIMIT 1`, ann).Scan(&again)
		if after := e.paymentRows(); !equalRows(before, after) || !again.Equal(updated) {
			t.Errorf("a replay changed storage: rows %v → %v, updated %v → %v", before, after, updated, again)
		}
		if dups := e.audits("payment.webhook_duplicate"); len(dups) != 2 || dups[0].Detail["event"] != "evt_bad_input" {
			t.Errorf("replays audited: %+v", dups)
		}
	})
}

func equalRows(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

func rowsOf(e *env, table string) []byte {
	var out []byte
	rows, err := e.db.QueryContext(e.ctx, `SELECT * FROM `+table)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		rows.Scan(ptrs...)
		for _, v := range vals {
			switch x := v.(type) {
			case []byte:
				out = append(out, x...)
			case string:
				out = append(out, x...)
			}
			out = append(out, 0)
		}
	}
	return out
}

// TestUnknownCustomerQuarantinedReleasedAndPruned: a card of a customer
// nobody matches is held, sealed under a key of its own; it goes to the
// member when the customer is linked (by a later customer event or by the
// operator's app), and is deleted, key and row, when its time is up.
func TestUnknownCustomerQuarantinedReleasedAndPruned(t *testing.T) {
	m := newMock(t)
	each(t, nil, func(t *testing.T, e *env) {
		// Carol is not known yet: her customer is acknowledged, not kept;
		// her card is held.
		cus, raw := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("carol@example.org")})
		if out := e.mustDeliver("customer.created", raw, payment.ActionIgnored); out.Reason != "unknown customer" {
			t.Errorf("reason %q", out.Reason)
		}
		_, attached := m.card(cus, nil)
		attached = patch(t, attached, map[string]any{"billing_details.address.line1": "7 Quarantine Lane"})
		if out := e.mustDeliver("payment_method.attached", attached, payment.ActionQuarantined); out.Reason != "unknown customer" {
			t.Errorf("reason %q", out.Reason)
		}
		rows := e.paymentRows()
		if rows["payment_quarantine"] != 1 || rows["payment_methods"] != 0 || rows["payment_customers"] != 0 {
			t.Fatalf("rows = %v", rows)
		}
		if bytes.Contains(e.stored(), []byte("7 Quarantine Lane")) {
			t.Error("a held event is stored in the clear")
		}
		var held, reason string
		if err := e.db.QueryRowContext(e.ctx, `SELECT id, reason FROM payment_quarantine`).Scan(&held, &reason); err != nil || reason != "unknown customer" {
			t.Fatalf("held %s with reason %q: %v", held, reason, err)
		}
		if q := e.audits("payment.event"); len(q) == 0 || q[0].Detail["action"] != "quarantined" || q[0].Detail["reason"] != "unknown customer" {
			t.Errorf("the quarantine is not audited: %+v", q)
		}
		// Carol signs up; the processor tells of her customer again.
		carol := e.member("carol@example.org")
		out := e.mustDeliver("customer.updated", raw, payment.ActionLinked)
		if out.Released != 1 {
			t.Errorf("released %d, want 1", out.Released)
		}
		methods, err := e.pay.Methods(e.ctx, door.Subject(), carol)
		if err != nil || len(methods) != 1 || methods[0].BillingAddress == nil || methods[0].BillingAddress.Line1 != "7 Quarantine Lane" {
			t.Errorf("Carol's methods after the release: %+v, %v", methods, err)
		}
		if n := e.count(`SELECT COUNT(*) FROM payment_quarantine`); n != 0 {
			t.Errorf("%d held after the release", n)
		}
		if n := e.count(`SELECT COUNT(*) FROM item_keys WHERE item = $1 AND destroyed_at IS NULL`, held); n != 0 {
			t.Error("the released event's key is still live")
		}

		// Dave's card is held; the operator's app links his customer.
		dcus, _ := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("dave@example.org")})
		_, dcard := m.card(dcus, nil)
		e.mustDeliver("payment_method.attached", dcard, payment.ActionQuarantined)
		dave := e.member("dave.other@example.org")
		if n, err := e.pay.LinkCustomer(e.ctx, dave, dcus); err != nil || n != 1 {
			t.Errorf("LinkCustomer = %d, %v; want 1 released", n, err)
		}
		if methods, _ := e.pay.Methods(e.ctx, door.System("payment"), dave); len(methods) != 1 {
			t.Errorf("Dave's methods: %+v", methods)
		}
		if _, err := e.pay.LinkCustomer(e.ctx, carol, dcus); !fault.Is(err, fault.Conflict) {
			t.Errorf("linking Dave's customer to Carol: %v, want conflict", err)
		}
		if _, err := e.pay.LinkCustomer(e.ctx, "s_nobody", "cus_x"); !fault.Is(err, fault.NotFound) {
			t.Errorf("linking to nobody: %v, want not found", err)
		}

		// Erin's card is held and nobody claims it: after 30 days the
		// hourly job deletes it, key and row.
		ecus, _ := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("erin@example.org")})
		_, ecard := m.card(ecus, nil)
		e.mustDeliver("payment_method.attached", ecard, payment.ActionQuarantined)
		if err := e.db.QueryRowContext(e.ctx, `SELECT id FROM payment_quarantine`).Scan(&held); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(29 * 24 * time.Hour)
		if n, err := e.pay.Prune(e.ctx); err != nil || n != 0 {
			t.Errorf("pruned %d before its time, %v", n, err)
		}
		e.clk.Advance(24*time.Hour + time.Minute)
		for range 2 {
			if _, err := e.svc.Jobs.RunDue(e.ctx); err != nil {
				t.Fatal(err)
			}
			e.clk.Advance(time.Hour)
		}
		if n := e.count(`SELECT COUNT(*) FROM payment_quarantine`); n != 0 {
			t.Errorf("%d held after their time", n)
		}
		if n := e.count(`SELECT COUNT(*) FROM item_keys WHERE item = $1 AND destroyed_at IS NULL`, held); n != 0 {
			t.Error("the expired event's key is still live")
		}
		if a := e.audits("payment.quarantine_expired"); len(a) != 1 || a[0].Detail["events"] != "1" {
			t.Errorf("the deletion is not audited: %+v", a)
		}
	})
}

// TestDetachDropsHeldCard: a held card its customer removes is dropped
// from the quarantine at once.
func TestDetachDropsHeldCard(t *testing.T) {
	m := newMock(t)
	each(t, nil, func(t *testing.T, e *env) {
		cus, _ := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("frank@example.org")})
		pm, attached := m.card(cus, nil)
		e.mustDeliver("payment_method.attached", attached, payment.ActionQuarantined)
		e.mustDeliver("payment_method.detached", m.detach(pm), payment.ActionDeleted)
		if n := e.count(`SELECT COUNT(*) FROM payment_quarantine`); n != 0 {
			t.Errorf("%d held after the detachment", n)
		}
	})
}

// TestPaymentMethodsExportedAndErased: a member's cards and customer link
// are in their access report, opened; an account erasure deletes them and
// destroys the payment key; the processor's next card for that customer is
// held, as for anyone unknown.
func TestPaymentMethodsExportedAndErased(t *testing.T) {
	m := newMock(t)
	each(t, nil, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org")
		cus, raw := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("ann@example.org")})
		e.mustDeliver("customer.created", raw, payment.ActionLinked)
		pm, attached := m.card(cus, nil)
		e.mustDeliver("payment_method.attached", attached, payment.ActionStored)
		var report bytes.Buffer
		if err := e.svc.Rights.AccessReport(e.ctx, ann, &report); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"payment_methods"`, `"payment_customers"`, pm, `"visa"`, `"4242"`} {
			if !strings.Contains(report.String(), want) {
				t.Errorf("the access report lacks %s", want)
			}
		}
		r, err := e.svc.Rights.File(e.ctx, rights.Requester{SubjectID: ann, Reauthenticate: rights.Reauthenticated},
			rights.Filing{Type: rights.Erasure, Scope: "account"})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := e.svc.Jobs.RunDue(e.ctx); err != nil {
				t.Fatal(err)
			}
		}
		if r, err = e.svc.Rights.Get(e.ctx, r.ID); err != nil || r.Status != rights.StatusCompleted {
			t.Fatalf("erasure %s: %v (%s)", r.Status, err, r.Result)
		}
		if rows := e.paymentRows(); rows["payment_methods"] != 0 || rows["payment_customers"] != 0 {
			t.Errorf("after the erasure: %v", rows)
		}
		if gone, err := e.svc.Door.Shredded(e.ctx, e.db, ann, "payment"); err != nil || !gone {
			t.Errorf("the payment key of an erased member: shredded %v, %v", gone, err)
		}
		e.mustDeliver("payment_method.updated", attached, payment.ActionQuarantined)
	})
}

// TestPromiseJ1_InvoiceKeptForLegalObligation: under a policy that
// declares invoices, kept for a legal obligation, an invoice paid is kept
// sealed; the member's erasure deletes their cards and keeps the invoice,
// telling them why in the policy's words. Under jmir.yaml, which declares
// no invoices, nothing of an invoice is kept.
func TestPromiseJ1_InvoiceKeptForLegalObligation(t *testing.T) {
	m := newMock(t)
	t.Run("declared", func(t *testing.T) {
		each(t, withInvoices, func(t *testing.T, e *env) {
			ann := e.member("ann@example.org")
			cus, raw := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("ann@example.org")})
			e.mustDeliver("customer.created", raw, payment.ActionLinked)
			_, attached := m.card(cus, nil)
			e.mustDeliver("payment_method.attached", attached, payment.ActionStored)
			in := m.invoice(cus)
			in = patch(t, in, map[string]any{"number": "INV-0042", "amount_paid": 1999, "status": "paid", "status_transitions.paid_at": 1767225600})
			e.mustDeliver("invoice.paid", in, payment.ActionStored)
			if bytes.Contains(e.stored(), []byte("INV-0042")) {
				t.Error("the invoice is stored in the clear")
			}
			var report bytes.Buffer
			if err := e.svc.Rights.AccessReport(e.ctx, ann, &report); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(report.String(), "INV-0042") || !strings.Contains(report.String(), "1999") {
				t.Errorf("the access report lacks the invoice")
			}
			keeps, err := e.svc.Rights.Keeps(e.ctx, ann)
			if err != nil {
				t.Fatal(err)
			}
			told := false
			for _, k := range keeps {
				told = told || (k.Dataset == "invoices" && k.Why == "legal-obligation" && strings.Contains(k.Explanation, "Tax law obliges us"))
				if k.Dataset == "payment_methods" {
					t.Errorf("an erasure would keep the cards: %+v", k)
				}
			}
			if !told {
				t.Errorf("what an erasure would keep does not say the invoice stays and why: %+v", keeps)
			}
			r, err := e.svc.Rights.File(e.ctx, rights.Requester{SubjectID: ann, Reauthenticate: rights.Reauthenticated},
				rights.Filing{Type: rights.Erasure, Scope: "account"})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				e.svc.Jobs.RunDue(e.ctx)
			}
			if r, err = e.svc.Rights.Get(e.ctx, r.ID); err != nil || r.Status != rights.StatusCompleted {
				t.Fatalf("erasure %s: %v (%s)", r.Status, err, r.Result)
			}
			var out rights.Outcome
			if err := json.Unmarshal(r.Result, &out); err != nil {
				t.Fatal(err)
			}
			kept := false
			for _, k := range out.Kept {
				if k.Dataset == "invoices" && k.Kept == 1 && k.Why == "legal-obligation" && strings.Contains(k.Explanation, "ten years") {
					kept = true
				}
			}
			if !kept {
				t.Errorf("the erasure did not keep the invoice and say why: %+v", out.Kept)
			}
			if rows := e.paymentRows(); rows["payment_methods"] != 0 || rows["payment_invoices"] != 1 {
				t.Errorf("after the erasure: %v", rows)
			}
			if gone, _ := e.svc.Door.Shredded(e.ctx, e.db, ann, "invoices"); gone {
				t.Error("the key sealing the kept invoice was destroyed")
			}
			if gone, _ := e.svc.Door.Shredded(e.ctx, e.db, ann, "payment"); !gone {
				t.Error("the payment key outlived the erasure")
			}
		})
	})
	t.Run("not declared", func(t *testing.T) {
		each(t, nil, func(t *testing.T, e *env) {
			e.member("ann@example.org")
			cus, raw := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("ann@example.org")})
			e.mustDeliver("customer.created", raw, payment.ActionLinked)
			in := patch(t, m.invoice(cus), map[string]any{"number": "INV-0043", "amount_paid": 1999})
			if out := e.mustDeliver("invoice.paid", in, payment.ActionIgnored); !strings.Contains(out.Reason, "does not declare invoices") {
				t.Errorf("reason %q", out.Reason)
			}
			if n := e.count(`SELECT COUNT(*) FROM payment_invoices`); n != 0 {
				t.Errorf("%d invoices kept", n)
			}
		})
	})
}

// TestCardsFollowAMerge: the cards of an email-only subject go with them
// when they are merged into a member, and still open.
func TestCardsFollowAMerge(t *testing.T) {
	m := newMock(t)
	each(t, nil, func(t *testing.T, e *env) {
		guest, err := e.svc.Subjects.Create(e.ctx, e.db, e.svc.Door, door.Subject(), subject.KindEmailOnly, "gwen@example.org", "comment", e.svc.Policy.Number())
		if err != nil {
			t.Fatal(err)
		}
		cus, raw := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("gwen@example.org")})
		e.mustDeliver("customer.created", raw, payment.ActionLinked)
		pm, attached := m.card(cus, nil)
		e.mustDeliver("payment_method.attached", attached, payment.ActionStored)
		member := e.member("gwen.member@example.org")
		if err := e.db.InTx(e.ctx, func(tx *sql.Tx) error { return e.svc.Subjects.Merge(e.ctx, tx, guest.ID, member) }); err != nil {
			t.Fatal(err)
		}
		methods, err := e.pay.Methods(e.ctx, door.Subject(), member)
		if err != nil || len(methods) != 1 || methods[0].Token != pm || methods[0].Brand != "visa" {
			t.Errorf("the member's methods after the merge: %+v, %v", methods, err)
		}
		// The customer's link moved too: its next card is the member's.
		_, second := m.card(cus, nil)
		e.mustDeliver("payment_method.attached", second, payment.ActionStored)
		if methods, _ := e.pay.Methods(e.ctx, door.Subject(), member); len(methods) != 2 {
			t.Errorf("after a second card: %+v", methods)
		}
	})
}

// TestRestrictedSubjectGetsNothingKept: while a member's processing is
// restricted, a card event for them is acknowledged and nothing of it is
// kept; the guard's refusal is audited.
func TestRestrictedSubjectGetsNothingKept(t *testing.T) {
	m := newMock(t)
	each(t, nil, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org")
		cus, raw := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("ann@example.org")})
		e.mustDeliver("customer.created", raw, payment.ActionLinked)
		if err := e.svc.Subjects.SetRestriction(e.ctx, e.db, ann, true, nil); err != nil {
			t.Fatal(err)
		}
		_, attached := m.card(cus, nil)
		out := e.mustDeliver("payment_method.attached", attached, payment.ActionDropped)
		if !strings.Contains(out.Reason, "does not allow") {
			t.Errorf("reason %q", out.Reason)
		}
		if n := e.count(`SELECT COUNT(*) FROM payment_methods`); n != 0 {
			t.Errorf("%d methods kept for a restricted member", n)
		}
		if err := e.svc.Door.Close(e.ctx); err != nil {
			t.Fatal(err)
		}
		if d := e.audits("guard.denied"); len(d) == 0 || d[0].Subject != ann || d[0].Detail["purpose"] != "payment" {
			t.Errorf("the refusal is not audited: %+v", d)
		}
	})
}

// TestPromiseJ9_UnverifiedAddressReceivesNoCards: someone who signs up with
// another person's address and never confirms it is not matched to that
// person's customer by email: the person's card is held, not stored in
// the impostor's account.
func TestPromiseJ9_UnverifiedAddressReceivesNoCards(t *testing.T) {
	m := newMock(t)
	each(t, nil, func(t *testing.T, e *env) {
		impostor := e.unverifiedMember("victim@example.org")
		cus, raw := m.customer(&stripe.CustomerCreateParams{Email: stripe.String("victim@example.org")})
		if out := e.mustDeliver("customer.created", raw, payment.ActionIgnored); out.Action == payment.ActionLinked {
			t.Fatalf("an unverified address was linked: %+v", out)
		}
		_, attached := m.card(cus, nil)
		e.mustDeliver("payment_method.attached", attached, payment.ActionQuarantined)
		ms, err := e.pay.Methods(e.ctx, door.Subject(), impostor)
		if err != nil || len(ms) != 0 {
			t.Fatalf("the impostor reads %d cards (%v)", len(ms), err)
		}
	})
}
