package disclosure_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"steward/internal/disclosure"
	"steward/internal/fault"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/rights"
)

// J12: a purchase through a partner brand passes exactly the declared
// fields to that partner's webhook, signed (Standard Webhooks), with the
// partner's own reference for the member; the member's access report
// shows the disclosure with its date and purpose; the member's erasure
// is propagated to the partner by that reference and acknowledged.
func TestPromiseJ12_PartnerPurchaseEndToEnd(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Lee")
		at := e.clk.Now()
		d := e.purchase(ann, map[string]string{"name": "Ann Lee", "email": "ann@example.org"})
		e.run()

		got := e.ep.requests()
		if len(got) != 1 {
			t.Fatalf("the partner got %d requests, want 1", len(got))
		}
		r := got[0]
		if err := disclosure.Verify(partnerKey, r.ID, r.Timestamp, r.Signature, r.Body, e.clk.Now()); err != nil {
			t.Fatalf("the partner cannot verify the delivery: %v", err)
		}
		if r.ID != d.Delivery {
			t.Fatalf("webhook-id %q, want the delivery's event id %q", r.ID, d.Delivery)
		}
		var body struct {
			Type string `json:"type"`
			Data struct {
				Subject string            `json:"subject"`
				Purpose string            `json:"purpose"`
				Fields  map[string]string `json:"fields"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"name": "Ann Lee", "email": "ann@example.org"}; !maps.Equal(body.Data.Fields, want) {
			t.Fatalf("fields delivered %v, want exactly %v", body.Data.Fields, want)
		}
		if body.Type != "order.placed" || body.Data.Purpose != "order-fulfilment" {
			t.Fatalf("event %q for %q", body.Type, body.Data.Purpose)
		}
		ref := body.Data.Subject
		if ref == "" || ref == ann || hasSub(ref, "ann") || ref != e.d.Reference("brand-partners", ann) {
			t.Fatalf("the partner knows the member as %q: want its own reference, neither the id %q nor the address", ref, ann)
		}
		if other := e.d.Reference("marketing-services", ann); other == ref {
			t.Fatal("two recipients share a reference for the member: they could join their records")
		}
		// No copy of the data stays once delivered.
		if n := count(t, e, `SELECT COUNT(*) FROM disclosure_deliveries WHERE body_sealed IS NOT NULL`); n != 0 {
			t.Fatalf("%d deliveries still hold the data after delivery", n)
		}

		cover := e.report(ann)
		i := slices.IndexFunc(cover.Disclosures, func(c rights.CoverDisclosure) bool { return c.Recipient == "brand-partners" })
		if i < 0 {
			t.Fatalf("the access report lists no disclosure to the partner: %+v", cover.Disclosures)
		}
		cd := cover.Disclosures[i]
		if !cd.At.Equal(at) || cd.Purpose != "order-fulfilment" || !slices.Equal(cd.Fields, []string{"email", "name"}) {
			t.Fatalf("access report shows %+v, want the purchase's date %v, purpose and fields", cd, at)
		}
		j := slices.IndexFunc(cover.Recipients, func(c rights.CoverRecipient) bool { return c.ID == "brand-partners" })
		if j < 0 || cover.Recipients[j].Basis != "disclosed" {
			t.Fatalf("the partner is not listed as a recipient that received the data: %+v", cover.Recipients)
		}
		// A recipient that received nothing is not listed (only the
		// processors that host the data are, as declared).
		for _, rc := range cover.Recipients {
			if rc.ID == "authorities" || rc.ID == "acquirer" {
				t.Fatalf("%s is listed though it received nothing", rc.ID)
			}
		}

		// The erasure reaches the partner, by its reference, after the
		// address is gone.
		er, err := e.svc.Rights.File(e.ctx, rights.Requester{SubjectID: ann, Reauthenticate: rights.Reauthenticated},
			rights.Filing{Type: rights.Erasure, Scope: "account"})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			e.run()
			e.clk.Advance(time.Minute)
		}
		if st := e.request(er.ID).Status; st != rights.StatusCompleted {
			t.Fatalf("erasure is %s, want completed", st)
		}
		got = e.ep.requests()
		if len(got) != 2 {
			t.Fatalf("the partner got %d requests, want the purchase and the erasure", len(got))
		}
		r = got[1]
		if err := disclosure.Verify(partnerKey, r.ID, r.Timestamp, r.Signature, r.Body, e.clk.Now()); err != nil {
			t.Fatalf("erasure event: %v", err)
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				Subject    string   `json:"subject"`
				Categories []string `json:"categories"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != "subject.erased" || ev.Data.Subject != ref || !slices.Equal(ev.Data.Categories, []string{"identity"}) {
			t.Fatalf("erasure event %s: %+v, want subject.erased for %s of identity", ev.Type, ev.Data, ref)
		}
		if hasSub(string(r.Body), "ann@example.org") {
			t.Fatal("the erasure event carries the address")
		}
		var result struct {
			Told     []rights.Told         `json:"recipients_told"`
			ToNotify []rights.RecipientRef `json:"recipients_to_notify"`
		}
		if err := json.Unmarshal(e.request(er.ID).Result, &result); err != nil {
			t.Fatal(err)
		}
		if len(result.ToNotify) != 1 || result.ToNotify[0].ID != "brand-partners" || result.ToNotify[0].Basis != "disclosed" {
			t.Fatalf("the erasure names as its recipients %+v, want the partner that received the data", result.ToNotify)
		}
		if k := slices.IndexFunc(result.Told, func(x rights.Told) bool { return x.Recipient == "brand-partners" }); k < 0 || result.Told[k].Event != r.ID {
			t.Fatalf("the completed request does not show the partner told: %+v", result.Told)
		}
		told, err := e.d.Told(e.ctx, er.ID)
		if err != nil || len(told) != 1 || told[0].Status != disclosure.StatusDelivered {
			t.Fatalf("told %+v, %v: want the partner's event delivered", told, err)
		}
		ts, sig, ackBody := ack(partnerKey, "msg_ack1", e.clk.Now(), r.ID)
		if done, err := e.d.Acknowledge(e.ctx, "brand-partners", "msg_ack1", ts, sig, ackBody); err != nil || !slices.Equal(done, []string{r.ID}) {
			t.Fatalf("acknowledge: %v, %v", done, err)
		}
		told, _ = e.d.Told(e.ctx, er.ID)
		if told[0].Status != disclosure.StatusAcknowledged || told[0].AcknowledgedAt.IsZero() {
			t.Fatalf("after the partner's acknowledgement: %+v", told[0])
		}
	})
}

// J11: a recipient receives data only for the purposes, categories and
// fields it is declared with; anything else is refused and audited.
func TestPromiseJ11_OutsideDeclarationRefused(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Lee")
		cases := []struct {
			name   string
			req    disclosure.Request
			reason string
		}{
			{"purpose not its own", disclosure.Request{Recipient: "brand-partners", Purpose: "marketing", Subject: ann,
				Values: map[string]string{"email": "ann@example.org"}, Basis: disclosure.BasisConsent}, disclosure.RefusedPurpose},
			{"processor beyond its purpose", disclosure.Request{Recipient: "fraud-prevention", Purpose: "analytics", Subject: ann,
				Values: map[string]string{"page": "/x"}, Basis: disclosure.BasisPurpose}, disclosure.RefusedPurpose},
			{"field of its category it may not get", disclosure.Request{Recipient: "brand-partners", Purpose: "order-fulfilment", Subject: ann,
				Values: map[string]string{"email": "ann@example.org", "password": "x"}, Basis: disclosure.BasisContract}, disclosure.RefusedField},
			{"category not its own", disclosure.Request{Recipient: "support-staff", Purpose: "support", Subject: ann,
				Values: map[string]string{"card_last4": "4242"}, Basis: disclosure.BasisContract}, disclosure.RefusedField},
			{"whole category to a field-limited partner", disclosure.Request{Recipient: "brand-partners", Purpose: "order-fulfilment", Subject: ann,
				Categories: []string{"identity"}, Basis: disclosure.BasisContract}, disclosure.RefusedCategory},
			// A recipient without a list of fields: a whole category it is
			// not declared for (its purpose uses it), and a category it is
			// declared for that the purpose does not use.
			{"whole category not its own", disclosure.Request{Recipient: "submission-system", Purpose: "provide-service", Subject: ann,
				Categories: []string{"activity"}, Basis: disclosure.BasisContract}, disclosure.RefusedCategory},
			{"category its purpose does not use", disclosure.Request{Recipient: "support-staff", Purpose: "quality-training", Subject: ann,
				Values: map[string]string{"email": "ann@example.org"}, Basis: disclosure.BasisPurpose}, disclosure.RefusedCategory},
			{"unknown recipient", disclosure.Request{Recipient: "data-broker", Purpose: "order-fulfilment", Subject: ann,
				Values: map[string]string{"email": "a"}, Basis: disclosure.BasisContract}, disclosure.RefusedUnknownRecipient},
		}
		for _, c := range cases {
			_, err := e.d.Disclose(e.ctx, c.req)
			if !fault.Is(err, fault.PurposeDenied) {
				t.Fatalf("%s: %v, want purpose_denied", c.name, err)
			}
			if !e.audited("disclosure.refused", map[string]string{"recipient": c.req.Recipient, "reason": c.reason}) {
				t.Fatalf("%s: no audit entry disclosure.refused with reason %s", c.name, c.reason)
			}
		}
		if n := count(t, e, `SELECT COUNT(*) FROM disclosures`); n != 0 {
			t.Fatalf("%d disclosures recorded from refused requests", n)
		}
		if len(e.ep.requests()) != 0 {
			t.Fatal("a refused disclosure reached the partner")
		}
	})
}

// M12: on Mixi nothing is shared without consent or a legal reason: a
// disclosure on a contract, or on no basis, is refused and audited; on a
// legal request the register holds, decided, it is recorded.
func TestPromiseM12_NoSharingWithoutConsentOrLegalBasis(t *testing.T) {
	each(t, envOpts{policy: "mixi.yaml"}, func(t *testing.T, e *env) {
		kim := e.member("kim@example.org", "Kim")
		for _, b := range []disclosure.Basis{disclosure.BasisContract, "", disclosure.BasisPurpose, disclosure.BasisLegalRequest} {
			_, err := e.d.Disclose(e.ctx, disclosure.Request{Recipient: "authorities", Purpose: "legal-compliance", Subject: kim,
				Categories: []string{"identity"}, Basis: b, Actor: "staff:x"})
			if !fault.Is(err, fault.PurposeDenied) {
				t.Fatalf("basis %q: %v, want purpose_denied", b, err)
			}
			if !e.audited("disclosure.refused", map[string]string{"recipient": "authorities", "basis": string(b), "reason": disclosure.RefusedBasis}) {
				t.Fatalf("basis %q: the refusal is not audited", b)
			}
		}
		lr, err := e.d.RecordLegalRequest(e.ctx, "officer", disclosure.LegalInput{Kind: disclosure.KindCourtOrder, Jurisdiction: "JP",
			Authority: "Tokyo District Court", Subjects: []string{kim}, Categories: []string{"identity"}, Decision: disclosure.DecisionComplied,
			DecisionReason: "valid order", Notify: disclosure.NotifyNow})
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.d.DiscloseOnRequest(e.ctx, "officer", "privacy", lr.ID, kim, []string{"identity"})
		if err != nil {
			t.Fatalf("disclosure on a complied court order: %v", err)
		}
		if d.Basis != string(disclosure.BasisLegalRequest) || d.BasisRef != lr.ID {
			t.Fatalf("recorded basis %s %s", d.Basis, d.BasisRef)
		}
		// Categories the order did not ask for stay.
		if _, err := e.d.DiscloseOnRequest(e.ctx, "officer", "privacy", lr.ID, kim, []string{"content"}); !fault.Is(err, fault.PurposeDenied) {
			t.Fatalf("content, not asked for: %v", err)
		}
	})
	// The cases above are refused before the promise is asked (the
	// purpose is not a contract; only processors use a purpose's own
	// basis). An authority declared for a contract purpose is a
	// contradiction the policy check names; were such a policy in force
	// anyway, the authority would get nothing on that contract: the
	// promise refuses it at the disclosure too.
	contract := func(p *policy.Policy) {
		r := p.Recipient("authorities")
		r.Purposes = append(r.Purposes, "provide-service")
		problems := p.Check()
		if len(problems) != 1 || !strings.Contains(problems[0].Message, "no_sharing_without_consent") {
			t.Fatalf("the policy check of an authority receiving on a contract: %v, want the M12 contradiction", problems)
		}
	}
	each(t, envOpts{policy: "mixi.yaml", tweak: contract}, func(t *testing.T, e *env) {
		kim := e.member("kim@example.org", "Kim")
		_, err := e.d.Disclose(e.ctx, disclosure.Request{Recipient: "authorities", Purpose: "provide-service", Subject: kim,
			Values: map[string]string{"email": "kim@example.org"}, Basis: disclosure.BasisContract, Actor: "staff:x"})
		if !fault.Is(err, fault.PurposeDenied) {
			t.Fatalf("a contract disclosure to an authority: %v, want purpose_denied (M12)", err)
		}
		if !e.audited("disclosure.refused", map[string]string{"recipient": "authorities", "basis": "contract", "reason": disclosure.RefusedBasis}) {
			t.Fatal("the refusal is not audited")
		}
		if n := count(t, e, `SELECT COUNT(*) FROM disclosures`); n != 0 {
			t.Fatalf("%d disclosures recorded", n)
		}
	})
}

// J16: a subpoena is registered with its decision and a delayed
// notification; the member is mailed on the date (fake clock), not
// before, and not at the old date once the delay is extended; the
// transparency report counts it (M13).
func TestPromiseJ16_SubpoenaNotifiedOnItsDate(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Lee")
		start := e.clk.Now()
		lr, err := e.d.RecordLegalRequest(e.ctx, "officer", disclosure.LegalInput{Kind: disclosure.KindSubpoena, Jurisdiction: "US",
			Authority: "Grand jury, S.D.N.Y.", Subjects: []string{ann}, Categories: []string{"identity", "activity"},
			Deadline: start.Add(14 * 24 * time.Hour), Decision: disclosure.DecisionPartly, DecisionReason: "identity only",
			Notify: disclosure.NotifyDelay, NotifyAfter: start.Add(30 * 24 * time.Hour), NotifyReason: "non-disclosure order for 30 days"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.d.DiscloseOnRequest(e.ctx, "officer", "privacy", lr.ID, ann, []string{"identity"}); err != nil {
			t.Fatal(err)
		}
		mailed := func() int {
			n := 0
			list, err := e.svc.Outbox.List(e.ctx, mail.AsRecipient, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range list {
				if m.To == "ann@example.org" && m.Kind == "legal-request" {
					n++
					if !hasSub(m.Text, "subpoena") || !hasSub(m.Text, "Grand jury") {
						t.Fatalf("the notice does not say what was asked: %s", m.Text)
					}
				}
			}
			return n
		}
		e.run()
		e.clk.Advance(29 * 24 * time.Hour)
		e.run()
		if n := mailed(); n != 0 {
			t.Fatalf("mailed %d notices before the date", n)
		}
		e.clk.Advance(2 * 24 * time.Hour)
		e.run()
		if n := mailed(); n != 1 {
			t.Fatalf("mailed %d notices on the date, want 1", n)
		}
		got, _ := e.d.LegalRequest(e.ctx, lr.ID)
		if got.Notified[ann] == "" {
			t.Fatal("the register does not show the member told")
		}

		// A second subpoena, extended before its date: nothing at the
		// first date, the notice at the second.
		bob := e.member("bob@example.org", "Bob")
		lr2, err := e.d.RecordLegalRequest(e.ctx, "officer", disclosure.LegalInput{Kind: disclosure.KindSubpoena, Jurisdiction: "US",
			Authority: "FBI", Subjects: []string{bob}, Categories: []string{"identity"}, Decision: disclosure.DecisionRefused,
			DecisionReason: "overbroad", Notify: disclosure.NotifyDelay, NotifyAfter: e.clk.Now().Add(10 * 24 * time.Hour), NotifyReason: "gag order"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.d.SetNotification(e.ctx, "officer", lr2.ID, disclosure.NotifyDelay, e.clk.Now().Add(40*24*time.Hour), "gag order extended by the court"); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(11 * 24 * time.Hour)
		e.run()
		if got, _ := e.d.LegalRequest(e.ctx, lr2.ID); len(got.Notified) != 0 {
			t.Fatal("the member was told at the date the extension replaced")
		}
		e.clk.Advance(30 * 24 * time.Hour)
		e.run()
		if got, _ := e.d.LegalRequest(e.ctx, lr2.ID); got.Notified[bob] == "" {
			t.Fatal("the member was not told at the extended date")
		}

		rep, err := e.d.Transparency(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := rep.Periods[0]
		if p.Period != "2026-H1" || p.Requests != 2 {
			t.Fatalf("period %s counts %d requests, want 2026-H1 with 2", p.Period, p.Requests)
		}
		byDecision := map[string]int{}
		for _, r := range p.Rows {
			if r.Kind != disclosure.KindSubpoena || r.Jurisdiction != "US" {
				t.Fatalf("row %+v", r)
			}
			byDecision[r.Decision] += r.Requests
		}
		if byDecision[disclosure.DecisionPartly] != 1 || byDecision[disclosure.DecisionRefused] != 1 {
			t.Fatalf("by decision %v", byDecision)
		}
	})
}

// M13: the public report counts legal requests by kind, jurisdiction and
// decision per half-year, shows small account counts as a band, names no
// one, and an ended half-year stays as it was published.
func TestPromiseM13_TransparencyReport(t *testing.T) {
	each(t, envOpts{policy: "mixi.yaml"}, func(t *testing.T, e *env) {
		var ids []string
		for i := range 12 {
			ids = append(ids, e.member("m"+jsonInt(int64(i))+"@example.org", "M"))
		}
		rec := func(kind, jur, decision string, subs []string) string {
			t.Helper()
			lr, err := e.d.RecordLegalRequest(e.ctx, "officer", disclosure.LegalInput{Kind: kind, Jurisdiction: jur, Authority: "Authority X",
				Subjects: subs, Categories: []string{"identity"}, Decision: decision, DecisionReason: "r", Notify: disclosure.NotifyNever,
				NotifyReason: "emergency"})
			if err != nil {
				t.Fatal(err)
			}
			return lr.ID
		}
		rec(disclosure.KindCourtOrder, "JP", disclosure.DecisionComplied, ids[:1])
		rec(disclosure.KindCourtOrder, "JP", disclosure.DecisionComplied, ids[1:12])
		emergency := rec(disclosure.KindEmergency, "JP", disclosure.DecisionPending, ids[:2])
		if _, err := e.d.Decide(e.ctx, "officer", emergency, disclosure.DecisionRefused, "no emergency"); err != nil {
			t.Fatal(err)
		}
		rep, err := e.d.Transparency(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(rep)
		for _, id := range ids {
			if hasSub(string(raw), id) {
				t.Fatal("the public report names a subject")
			}
		}
		if hasSub(string(raw), "Authority X") {
			t.Fatal("the public report names the authority")
		}
		p := rep.Periods[0]
		want := []disclosure.Row{
			{Kind: "court-order", Jurisdiction: "JP", Decision: "complied", Requests: 2, Accounts: "10-19"},
			{Kind: "emergency", Jurisdiction: "JP", Decision: "refused", Requests: 1, Accounts: "1-9"},
		}
		if !slices.Equal(p.Rows, want) || p.Requests != 3 || p.Accounts != "10-19" || p.Final {
			t.Fatalf("period %+v, want rows %+v", p, want)
		}
		// The half-year ends: published as it was; later changes to the
		// register (a request dated back into it) leave it unchanged.
		e.clk.Set(time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC))
		rep, err = e.d.Transparency(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Periods) != 2 || rep.Periods[1].Period != "2026-H1" || !rep.Periods[1].Final || rep.Periods[1].Requests != 3 {
			t.Fatalf("periods %+v", rep.Periods)
		}
		// A decision changed after the half-year was published, and a
		// request of the new half-year, change nothing in it.
		if _, err := e.d.Decide(e.ctx, "officer", emergency, disclosure.DecisionComplied, "on reflection"); err != nil {
			t.Fatal(err)
		}
		rec(disclosure.KindOther, "JP", disclosure.DecisionPending, ids[:1])
		rep2, err := e.d.Transparency(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rep2.Periods[1].Rows, rep.Periods[1].Rows) || rep2.Periods[1].Requests != 3 {
			t.Fatalf("a published half-year changed: %+v", rep2.Periods[1])
		}
		if p := rep2.Periods[0]; p.Period != "2026-H2" || p.Requests != 1 || p.Rows[0].Kind != disclosure.KindOther {
			t.Fatalf("the current half-year: %+v", p)
		}
	})
}

func count(t *testing.T, e *env, q string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.QueryRowContext(e.ctx, q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) request(id string) rights.Request {
	e.t.Helper()
	r, err := e.svc.Rights.Get(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}
