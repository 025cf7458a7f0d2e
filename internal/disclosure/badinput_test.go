package disclosure_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"steward/internal/app/services"
	"steward/internal/app/services/servicestest"
	"steward/internal/consent"
	"steward/internal/disclosure"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/rights"
)

// A subject under restriction, with an objection, or without the consent
// a consent-based purpose needs: the guard refuses, and the refusal is
// audited twice (the door's denial, the refused disclosure).
func TestDiscloseRefusedBySubjectState(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		_, err := e.d.Disclose(e.ctx, disclosure.Request{Recipient: "marketing-services", Purpose: "marketing", Subject: ann,
			Values: map[string]string{"email": "ann@example.org"}, Basis: disclosure.BasisConsent})
		if !fault.Is(err, fault.PurposeDenied) || !e.audited("disclosure.refused", map[string]string{"reason": disclosure.RefusedBasis, "basis": "consent"}) {
			t.Fatalf("marketing without consent: %v", err)
		}
		if _, err := e.svc.Rights.File(e.ctx, rights.Requester{SubjectID: ann}, rights.Filing{Type: rights.Restriction}); err != nil {
			t.Fatal(err)
		}
		_, err = e.d.Disclose(e.ctx, disclosure.Request{Recipient: "brand-partners", Purpose: "order-fulfilment", Subject: ann,
			Values: map[string]string{"email": "ann@example.org"}, Basis: disclosure.BasisContract})
		if !fault.Is(err, fault.PurposeDenied) || !e.audited("disclosure.refused", map[string]string{"reason": "guard_denied", "guard": "processing restricted"}) {
			t.Fatalf("restricted subject: %v", err)
		}
		if err := e.svc.Door.Close(e.ctx); err != nil { // flushes the denials held from inside a transaction
			t.Fatal(err)
		}
		if !e.audited("guard.denied", map[string]string{"reason": "processing restricted"}) {
			t.Fatal("the door did not audit its denial")
		}
		if _, err := e.d.Disclose(e.ctx, disclosure.Request{Recipient: "brand-partners", Purpose: "order-fulfilment", Subject: "s_nobody",
			Values: map[string]string{"email": "x@example.org"}, Basis: disclosure.BasisContract}); !fault.Is(err, fault.NotFound) {
			t.Fatalf("unknown subject: %v", err)
		}
		if _, err := e.d.Disclose(e.ctx, disclosure.Request{Recipient: "brand-partners", Purpose: "order-fulfilment", Subject: ann,
			Basis: disclosure.BasisContract}); !fault.Is(err, fault.Invalid) {
			t.Fatalf("nothing named: %v", err)
		}
		if n := count(t, e, `SELECT COUNT(*) FROM disclosures`); n != 0 {
			t.Fatalf("%d disclosures recorded", n)
		}
	})
}

// A forged, stale or replayed acknowledgement is refused and audited;
// one naming an event the recipient never got is refused.
func TestAcknowledgementForgedOrReplayed(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		d := e.purchase(ann, map[string]string{"email": "ann@example.org"})
		e.run()
		now := e.clk.Now()
		ts, sig, body := ack([]byte("not the partner's key"), "msg_a", now, d.Delivery)
		if _, err := e.d.Acknowledge(e.ctx, "brand-partners", "msg_a", ts, sig, body); !fault.Is(err, fault.Unauthorized) {
			t.Fatalf("forged: %v", err)
		}
		ts, sig, body = ack(partnerKey, "msg_b", now.Add(-10*time.Minute), d.Delivery)
		if _, err := e.d.Acknowledge(e.ctx, "brand-partners", "msg_b", ts, sig, body); !fault.Is(err, fault.Unauthorized) {
			t.Fatalf("stale: %v", err)
		}
		ts, sig, body = ack(partnerKey, "msg_c", now, d.Delivery)
		tampered := append([]byte(nil), body...)
		tampered[len(tampered)-3] ^= 1
		if _, err := e.d.Acknowledge(e.ctx, "brand-partners", "msg_c", ts, sig, tampered); !fault.Is(err, fault.Unauthorized) {
			t.Fatalf("tampered: %v", err)
		}
		if _, err := e.d.Acknowledge(e.ctx, "brand-partners", "msg_c", ts, sig, body); err != nil {
			t.Fatalf("genuine: %v", err)
		}
		if _, err := e.d.Acknowledge(e.ctx, "brand-partners", "msg_c", ts, sig, body); !fault.Is(err, fault.Conflict) {
			t.Fatalf("replayed: %v", err)
		}
		for _, reason := range []string{"bad_signature", "replay"} {
			if !e.audited("disclosure.ack_refused", map[string]string{"reason": reason}) {
				t.Fatalf("no audit of the %s", reason)
			}
		}
		ts, sig, body = ack(partnerKey, "msg_d", now, "msg_aaaaaaaaaaaaaaaaaaaa")
		if _, err := e.d.Acknowledge(e.ctx, "brand-partners", "msg_d", ts, sig, body); !fault.Is(err, fault.Invalid) {
			t.Fatalf("an event never delivered: %v", err)
		}
		if _, err := e.d.Acknowledge(e.ctx, "authorities", "msg_e", ts, sig, body); !fault.Is(err, fault.Unauthorized) {
			t.Fatalf("a recipient without a webhook: %v", err)
		}
	})
}

// An endpoint that answers 500 for a day is retried with backoff, every
// attempt with the same event id, each in the delivery log, until it
// answers; one that never does ends failed, listed for staff.
func TestDeliveryRetriedWithTheSameEventID(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		e.ep.setStatus(http.StatusInternalServerError)
		d := e.purchase(ann, map[string]string{"email": "ann@example.org"})
		for end := e.clk.Now().Add(24 * time.Hour); e.clk.Now().Before(end); e.clk.Advance(time.Hour) {
			e.run()
		}
		e.ep.setStatus(http.StatusOK)
		for range 8 {
			e.clk.Advance(6 * time.Hour)
			e.run()
		}
		got := e.ep.requests()
		if len(got) < 5 {
			t.Fatalf("%d attempts in a day and more, want retries", len(got))
		}
		for _, r := range got {
			if r.ID != d.Delivery {
				t.Fatalf("attempt with event id %q, want %q on every one", r.ID, d.Delivery)
			}
		}
		dl, err := e.d.GetDelivery(e.ctx, d.Delivery)
		if err != nil {
			t.Fatal(err)
		}
		if dl.Status != disclosure.StatusDelivered || len(dl.Log) != len(got) || dl.Log[0].StatusCode != 500 || dl.Log[len(dl.Log)-1].StatusCode != 200 {
			t.Fatalf("delivery %s with %d log entries for %d attempts: %+v", dl.Status, len(dl.Log), len(got), dl.Log)
		}

		// Never answering: failed after the last attempt, the data dropped.
		e.ep.setStatus(http.StatusServiceUnavailable)
		d2 := e.purchase(ann, map[string]string{"name": "Ann"})
		for range 40 {
			e.clk.Advance(6 * time.Hour)
			e.run()
		}
		dl, _ = e.d.GetDelivery(e.ctx, d2.Delivery)
		if dl.Status != disclosure.StatusFailed || dl.Attempts != 20 {
			t.Fatalf("never answered: %s after %d attempts, want failed after 20", dl.Status, dl.Attempts)
		}
		if n := count(t, e, `SELECT COUNT(*) FROM disclosure_deliveries WHERE body_sealed IS NOT NULL`); n != 0 {
			t.Fatal("a failed delivery keeps the data")
		}
		failed, _ := e.d.Deliveries(e.ctx, "brand-partners", disclosure.StatusFailed, 10)
		if len(failed) != 1 || failed[0].ID != d2.Delivery {
			t.Fatalf("failed deliveries listed for staff: %+v", failed)
		}
	})
}

// No redirect is followed; a private address is refused unless the
// operator allows it; an endpoint that hangs is cut off by the timeout.
func TestDeliveryEndpointSafety(t *testing.T) {
	t.Run("redirect", func(t *testing.T) {
		each(t, envOpts{}, func(t *testing.T, e *env) {
			ann := e.member("ann@example.org", "Ann")
			e.ep.setStatus(http.StatusFound)
			d := e.purchase(ann, map[string]string{"email": "ann@example.org"})
			e.run()
			dl, _ := e.d.GetDelivery(e.ctx, d.Delivery)
			if len(e.ep.requests()) != 1 || dl.Status != disclosure.StatusPending || len(dl.Log) != 1 || dl.Log[0].StatusCode != http.StatusFound {
				t.Fatalf("a redirect: %d requests, delivery %+v", len(e.ep.requests()), dl)
			}
		})
	})
	t.Run("private address", func(t *testing.T) {
		each(t, envOpts{private: true}, func(t *testing.T, e *env) {
			ann := e.member("ann@example.org", "Ann")
			d := e.purchase(ann, map[string]string{"email": "ann@example.org"})
			e.run()
			dl, _ := e.d.GetDelivery(e.ctx, d.Delivery)
			if len(e.ep.requests()) != 0 || len(dl.Log) != 1 || !hasSub(dl.Log[0].Error, "not a public address") {
				t.Fatalf("a loopback endpoint without the operator's leave: %d requests, %+v", len(e.ep.requests()), dl)
			}
		})
	})
	t.Run("hangs", func(t *testing.T) {
		each(t, envOpts{env: map[string]string{"STEWARD_WEBHOOK_TIMEOUT": "300ms"}}, func(t *testing.T, e *env) {
			ann := e.member("ann@example.org", "Ann")
			e.ep.mu.Lock()
			e.ep.hang = make(chan struct{})
			e.ep.mu.Unlock()
			d := e.purchase(ann, map[string]string{"email": "ann@example.org"})
			start := time.Now()
			e.run()
			if el := time.Since(start); el > 5*time.Second {
				t.Fatalf("a hanging endpoint held the runner %v", el)
			}
			dl, _ := e.d.GetDelivery(e.ctx, d.Delivery)
			if dl.Status != disclosure.StatusPending || len(dl.Log) == 0 || dl.Log[0].StatusCode != 0 {
				t.Fatalf("after a hang: %+v", dl)
			}
		})
	})
}

// A delivery queued before a crash is sent by the next process, and the
// data of a subject erased before delivery is never sent.
func TestDeliverySurvivesRestartAndErasure(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		d := e.purchase(ann, map[string]string{"email": "ann@example.org"})
		// A new process on the same database (the first never ran a job).
		pol := servicestest.Example(t, "jmir.yaml")
		pol.Recipient("brand-partners").Webhook.URL = e.ep.srv.URL + "/steward/orders"
		vars := map[string]string{"STEWARD_RECIPIENT_BRAND_PARTNERS_SECRET": partnerSecret, "STEWARD_WEBHOOKS_ALLOW_PRIVATE": "1"}
		svc2, _ := servicestest.Build(t, e.db, pol, services.Config{Getenv: func(k string) string { return vars[k] }}, nil)
		if _, err := svc2.Jobs.RunDue(e.ctx); err != nil {
			t.Fatal(err)
		}
		if got := e.ep.requests(); len(got) != 1 || got[0].ID != d.Delivery {
			t.Fatalf("after a restart: %+v", got)
		}

		bob := e.member("bob@example.org", "Bob")
		e.ep.setStatus(http.StatusInternalServerError)
		d2 := e.purchase(bob, map[string]string{"email": "bob@example.org"})
		e.run() // one failed attempt
		if _, err := e.svc.Rights.File(e.ctx, rights.Requester{SubjectID: bob, Reauthenticate: rights.Reauthenticated},
			rights.Filing{Type: rights.Erasure, Scope: "account"}); err != nil {
			t.Fatal(err)
		}
		e.ep.setStatus(http.StatusOK)
		for range 6 {
			e.clk.Advance(10 * time.Minute)
			e.run()
		}
		sent := 0
		for _, r := range e.ep.requests() {
			if r.ID == d2.Delivery {
				sent++
			}
		}
		if sent != 1 {
			t.Fatalf("the data of a subject erased before delivery was sent again (%d attempts, want only the one before)", sent)
		}
		dl, _ := e.d.GetDelivery(e.ctx, d2.Delivery)
		if dl.Status != disclosure.StatusFailed {
			t.Fatalf("delivery of an erased subject's data: %s", dl.Status)
		}
	})
}

// A legal request with a notification date in the past, an unknown
// kind, jurisdiction or subject, or a category its authority may not
// receive, is refused with the field named; nothing is written.
func TestLegalRequestBadInput(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		now := e.clk.Now()
		good := func() disclosure.LegalInput {
			return disclosure.LegalInput{Kind: disclosure.KindSubpoena, Jurisdiction: "US", Authority: "Court", Subjects: []string{ann},
				Categories: []string{"identity"}, Notify: disclosure.NotifyNow}
		}
		cases := []struct {
			field string
			edit  func(*disclosure.LegalInput)
		}{
			{"notify_after", func(in *disclosure.LegalInput) {
				in.Notify, in.NotifyAfter, in.NotifyReason = disclosure.NotifyDelay, now.Add(-time.Hour), "gag"
			}},
			{"notify_reason", func(in *disclosure.LegalInput) {
				in.Notify, in.NotifyAfter = disclosure.NotifyDelay, now.Add(time.Hour)
			}},
			{"notify_reason", func(in *disclosure.LegalInput) { in.Notify = disclosure.NotifyNever }},
			{"notify", func(in *disclosure.LegalInput) { in.Notify = "later" }},
			{"kind", func(in *disclosure.LegalInput) { in.Kind = "warrant canary" }},
			{"jurisdiction", func(in *disclosure.LegalInput) { in.Jurisdiction = "Narnia" }},
			{"authority", func(in *disclosure.LegalInput) { in.Authority = "bad\x00name" }},
			{"subjects", func(in *disclosure.LegalInput) { in.Subjects = []string{"s_nobody"} }},
			{"subjects", func(in *disclosure.LegalInput) { in.Subjects = nil }},
			{"categories", func(in *disclosure.LegalInput) { in.Categories = []string{"payment"} }},
			{"decision_reason", func(in *disclosure.LegalInput) { in.Decision = disclosure.DecisionRefused }},
			{"decision", func(in *disclosure.LegalInput) { in.Decision = "maybe" }},
		}
		for _, c := range cases {
			in := good()
			c.edit(&in)
			_, err := e.d.RecordLegalRequest(e.ctx, "officer", in)
			if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != c.field {
				t.Fatalf("%s: %v (field %q)", c.field, err, fault.FieldOf(err))
			}
		}
		in := good()
		in.Hold = &disclosure.HoldInput{Reason: "preserve", Category: "no-such-category"}
		if _, err := e.d.RecordLegalRequest(e.ctx, "officer", in); !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != "hold.category" {
			t.Fatalf("a hold on an undeclared category: %v", err)
		}
		in.Hold = &disclosure.HoldInput{Reason: " "}
		if _, err := e.d.RecordLegalRequest(e.ctx, "officer", in); !fault.Is(err, fault.Invalid) {
			t.Fatalf("a hold without a reason: %v", err)
		}
		if n := count(t, e, `SELECT COUNT(*) FROM legal_requests`); n != 0 {
			t.Fatalf("%d legal requests written from bad input", n)
		}
		lr, err := e.d.RecordLegalRequest(e.ctx, "officer", good())
		if err != nil {
			t.Fatal(err)
		}
		e.run()
		if _, err := e.d.SetNotification(e.ctx, "officer", lr.ID, disclosure.NotifyDelay, now.Add(time.Hour), "too late"); !fault.Is(err, fault.Conflict) {
			t.Fatalf("delaying what was told: %v", err)
		}
		// Nothing leaves on a pending request.
		pending := good()
		pending.Notify, pending.NotifyReason = disclosure.NotifyNever, "sealed"
		lr2, err := e.d.RecordLegalRequest(e.ctx, "officer", pending)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.d.DiscloseOnRequest(e.ctx, "officer", "privacy", lr2.ID, ann, []string{"identity"}); !fault.Is(err, fault.PurposeDenied) {
			t.Fatalf("disclosure on a pending request: %v", err)
		}
	})
}

// A recipient that pulls gets its events with its own key, again until it
// acknowledges them; a wrong key gets nothing.
func TestPull(t *testing.T) {
	each(t, envOpts{env: map[string]string{"STEWARD_RECIPIENT_BRAND_PARTNERS_KEY": "pull-key-0123456789"}, tweak: func(p *policy.Policy) {
		r := p.Recipient("brand-partners")
		r.Webhook = nil
		r.Pull = &policy.RecipientPull{KeyEnv: "STEWARD_RECIPIENT_BRAND_PARTNERS_KEY"}
	}}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		d := e.purchase(ann, map[string]string{"email": "ann@example.org"})
		if _, err := e.d.Pull(e.ctx, "brand-partners", "wrong", 10); !fault.Is(err, fault.Unauthorized) {
			t.Fatalf("wrong key: %v", err)
		}
		for range 2 {
			evs, err := e.d.Pull(e.ctx, "brand-partners", "pull-key-0123456789", 10)
			if err != nil || len(evs) != 1 || evs[0].ID != d.Delivery || !hasSub(string(evs[0].Body), "ann@example.org") {
				t.Fatalf("pull: %+v, %v", evs, err)
			}
		}
		done, err := e.d.AcknowledgeWithKey(e.ctx, "brand-partners", "pull-key-0123456789", []byte(`{"events":["`+d.Delivery+`"]}`))
		if err != nil || !slices.Equal(done, []string{d.Delivery}) {
			t.Fatalf("ack: %v %v", done, err)
		}
		if evs, _ := e.d.Pull(e.ctx, "brand-partners", "pull-key-0123456789", 10); len(evs) != 0 {
			t.Fatalf("acknowledged events pulled again: %+v", evs)
		}

		// A recipient that pulls and never acknowledges, or never pulls,
		// leaves no copy here past the window: the data goes, the
		// delivery is failed and no longer pulled; a younger one stays.
		pulled := e.purchase(ann, map[string]string{"email": "ann@example.org"})
		if evs, err := e.d.Pull(e.ctx, "brand-partners", "pull-key-0123456789", 10); err != nil || len(evs) != 1 {
			t.Fatalf("pull: %+v, %v", evs, err)
		}
		never := e.purchase(ann, map[string]string{"email": "ann@example.org"})
		e.clk.Advance(disclosure.PullWindow - time.Hour)
		young := e.purchase(ann, map[string]string{"email": "ann@example.org"})
		e.clk.Advance(2 * time.Hour)
		e.run()
		for _, c := range []struct {
			id, status string
			body       int
		}{{pulled.Delivery, "failed", 0}, {never.Delivery, "failed", 0}, {young.Delivery, "pending", 1}} {
			var status string
			var body int
			if err := e.db.QueryRowContext(e.ctx, `SELECT status, CASE WHEN body_sealed IS NULL THEN 0 ELSE 1 END FROM disclosure_deliveries WHERE id = $1`,
				c.id).Scan(&status, &body); err != nil {
				t.Fatal(err)
			}
			if status != c.status || body != c.body {
				t.Fatalf("delivery %s: %s with %d bodies, want %s with %d", c.id, status, body, c.status, c.body)
			}
		}
		evs, err := e.d.Pull(e.ctx, "brand-partners", "pull-key-0123456789", 10)
		if err != nil || len(evs) != 1 || evs[0].ID != young.Delivery {
			t.Fatalf("after the window the pull returns %+v, %v: want only the younger event", evs, err)
		}
	})
}

// A disclosure on consent names the ledger's record of the consent in
// force; once withdrawn, it is refused.
func TestDiscloseOnConsentNamesTheRecord(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		rec, err := e.svc.Consent.Change(e.ctx, consent.Change{SubjectID: ann, Purpose: "marketing", State: consent.Given,
			Method: consent.MethodForm, CollectionPoint: "/account/privacy"})
		if err != nil {
			t.Fatal(err)
		}
		req := disclosure.Request{Recipient: "marketing-services", Purpose: "marketing", Subject: ann,
			Values: map[string]string{"email": "ann@example.org"}, Basis: disclosure.BasisConsent}
		d, err := e.d.Disclose(e.ctx, req)
		if err != nil || d.BasisRef != rec.ID {
			t.Fatalf("disclosure on consent: %+v %v, want the basis %s", d, err, rec.ID)
		}
		e.clk.Advance(time.Second)
		if _, err := e.svc.Consent.Change(e.ctx, consent.Change{SubjectID: ann, Purpose: "marketing", State: consent.Withdrawn,
			Method: consent.MethodForm, CollectionPoint: "/account/privacy"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.d.Disclose(e.ctx, req); !fault.Is(err, fault.PurposeDenied) {
			t.Fatalf("after withdrawal: %v", err)
		}
	})
}

// A recipient whose webhook secret is missing from the environment: the
// disclosure's delivery is listed for staff, its data dropped, and
// nothing is sent unsigned.
func TestDeliveryWithoutSecretIsManual(t *testing.T) {
	each(t, envOpts{env: map[string]string{"STEWARD_RECIPIENT_BRAND_PARTNERS_SECRET": ""}}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		d := e.purchase(ann, map[string]string{"email": "ann@example.org"})
		e.run()
		dl, err := e.d.GetDelivery(e.ctx, d.Delivery)
		if err != nil || dl.Status != disclosure.StatusManual || len(e.ep.requests()) != 0 {
			t.Fatalf("delivery %+v %v, %d requests", dl, err, len(e.ep.requests()))
		}
		if n := count(t, e, `SELECT COUNT(*) FROM disclosure_deliveries WHERE body_sealed IS NOT NULL`); n != 0 {
			t.Fatal("a manual delivery keeps the data")
		}
	})
}
