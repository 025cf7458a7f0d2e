package disclosure_test

import (
	"database/sql"
	"encoding/json"
	"net/netip"
	"slices"
	"steward/internal/app/services/servicestest"
	"steward/internal/identity"
	"testing"

	"steward/internal/disclosure"
	"steward/internal/policy"
	"steward/internal/rights"
)

// Art. 19: a completed rectification and a restriction reach the
// recipients that received the affected categories, each by its own
// reference; a recipient without an endpoint (an authority) is listed for
// staff to tell by hand, and staff record that they did; a recipient that
// received nothing of the subject is not told.
func TestArt19_RectificationRestrictionAndByHand(t *testing.T) {
	each(t, envOpts{tweak: func(p *policy.Policy) {
		// Names are corrected on request here, so the correction is a
		// reviewed rights request.
		id := p.Category("identity")
		id.SelfEditable = slices.DeleteFunc(id.SelfEditable, func(f string) bool { return f == "name" })
	}}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Lee")
		bob := e.member("bob@example.org", "Bob")
		e.purchase(ann, map[string]string{"name": "Ann Lee"})
		e.purchase(bob, map[string]string{"name": "Bob"})
		lr, err := e.d.RecordLegalRequest(e.ctx, "officer", disclosure.LegalInput{Kind: disclosure.KindSubpoena, Jurisdiction: "US",
			Authority: "Court", Subjects: []string{ann}, Categories: []string{"identity"}, Decision: disclosure.DecisionComplied,
			DecisionReason: "valid", Notify: disclosure.NotifyNow})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.d.DiscloseOnRequest(e.ctx, "officer", "privacy", lr.ID, ann, []string{"identity"}); err != nil {
			t.Fatal(err)
		}
		e.run()
		before := len(e.ep.requests())

		rq, err := e.svc.Rights.File(e.ctx, rights.Requester{SubjectID: ann}, rights.Filing{Type: rights.Rectification,
			Corrections: map[string]string{"name": "Ann Brown"}, Reason: "I married"})
		if err != nil {
			t.Fatal(err)
		}
		staff := "officer"
		if _, err := e.svc.Rights.Approve(e.ctx, staff, rq.ID, "ok"); err != nil {
			t.Fatal(err)
		}
		e.run()
		told, err := e.d.Told(e.ctx, rq.ID)
		if err != nil {
			t.Fatal(err)
		}
		byRecipient := map[string]disclosure.Delivery{}
		for _, d := range told {
			byRecipient[d.Recipient] = d
		}
		if len(told) != 2 || byRecipient["brand-partners"].Status != disclosure.StatusDelivered || byRecipient["authorities"].Status != disclosure.StatusManual {
			t.Fatalf("told of the correction: %+v, want the partner (delivered) and the authority (by hand)", told)
		}
		got := e.ep.requests()
		if len(got) != before+1 {
			t.Fatalf("the partner got %d new requests, want the correction only", len(got)-before)
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				Subject    string   `json:"subject"`
				Categories []string `json:"categories"`
			} `json:"data"`
		}
		if err := json.Unmarshal(got[len(got)-1].Body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != "subject.rectified" || ev.Data.Subject != e.d.Reference("brand-partners", ann) || !slices.Equal(ev.Data.Categories, []string{"identity"}) {
			t.Fatalf("correction event %+v", ev)
		}
		if hasSub(string(got[len(got)-1].Body), "Ann Brown") {
			t.Fatal("the event carries the corrected value: the recipient asks for it through a disclosure")
		}
		// Staff tell the authority by hand and record it.
		d, err := e.d.MarkTold(e.ctx, "officer", byRecipient["authorities"].ID)
		if err != nil || d.Status != disclosure.StatusAcknowledged || d.HandledBy != "staff:officer" {
			t.Fatalf("told by hand: %+v %v", d, err)
		}
		if _, err := e.d.MarkTold(e.ctx, "officer", byRecipient["brand-partners"].ID); err == nil {
			t.Fatal("a webhook delivery marked as told by hand")
		}

		// Bob's restriction reaches the partner only, for Bob.
		rs, err := e.svc.Rights.File(e.ctx, rights.Requester{SubjectID: bob}, rights.Filing{Type: rights.Restriction})
		if err != nil {
			t.Fatal(err)
		}
		e.run()
		told, _ = e.d.Told(e.ctx, rs.ID)
		if len(told) != 1 || told[0].Recipient != "brand-partners" || told[0].Event != "subject.restricted" {
			t.Fatalf("told of the restriction: %+v", told)
		}
		var res struct {
			Told []rights.Told `json:"recipients_told"`
		}
		if err := json.Unmarshal(e.request(rs.ID).Result, &res); err != nil || len(res.Told) != 1 {
			t.Fatalf("the completed restriction does not show who was told: %s", e.request(rs.ID).Result)
		}
	})
}

// J21 (re-proved): the access report names the recipients that actually
// received the data, each disclosure with its date, purpose and basis,
// and no partner that received nothing.
func TestPromiseJ21_AccessReportNamesActualRecipients(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Lee")
		bob := e.member("bob@example.org", "Bob")
		cover := e.report(ann)
		if len(cover.Disclosures) != 0 || slices.ContainsFunc(cover.Recipients, func(r rights.CoverRecipient) bool { return r.ID == "brand-partners" }) {
			t.Fatalf("before any disclosure the report lists %+v", cover.Recipients)
		}
		e.purchase(bob, map[string]string{"email": "bob@example.org"})
		cover = e.report(ann)
		if len(cover.Disclosures) != 0 {
			t.Fatalf("Bob's disclosure is in Ann's report: %+v", cover.Disclosures)
		}
		e.clk.Advance(48 * 3600e9)
		e.purchase(ann, map[string]string{"email": "ann@example.org"})
		cover = e.report(ann)
		if len(cover.Disclosures) != 1 || cover.Disclosures[0].Basis != "contract" || !cover.Disclosures[0].At.Equal(e.clk.Now()) {
			t.Fatalf("disclosures %+v", cover.Disclosures)
		}
		for _, r := range cover.Recipients {
			if r.Basis == "declared" && r.Role != "processor" {
				t.Fatalf("%s is listed as declared though it is no processor and received nothing", r.ID)
			}
		}
	})
}

// J27 (re-proved): the access report states the countries data is stored
// and processed in, and every recipient outside the EEA it names is in a
// declared transfer.
func TestPromiseJ27_TransfersInAccessReport(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Lee")
		e.purchase(ann, map[string]string{"email": "ann@example.org"})
		cover := e.report(ann)
		countries := map[string]rights.CoverTransfer{}
		for _, tr := range cover.Transfers {
			countries[tr.Country] = tr
		}
		if !countries["US"].Stores || !countries["CA"].Stores || !countries["IN"].Processes || !countries["US"].Processes {
			t.Fatalf("transfers %+v, want stored in US and CA, processed in IN and US", cover.Transfers)
		}
		for _, r := range cover.Recipients {
			if r.Country == "ZZ" {
				continue
			}
			if _, ok := countries[r.Country]; !ok {
				t.Fatalf("recipient %s is in %s, which no transfer declares", r.ID, r.Country)
			}
		}
	})
}

// A correction the subject makes themself reaches the recipients of the
// field's category, through the hook identity calls in its transaction.
func TestArt19_SelfServiceCorrection(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Lee")
		e.purchase(ann, map[string]string{"name": "Ann Lee"})
		var told []disclosure.Told
		err := e.db.InTx(e.ctx, func(tx *sql.Tx) error {
			var err error
			if _, err = e.d.PropagateCorrection(e.ctx, tx, ann, []string{"page"}); err != nil {
				return err
			}
			told, err = e.d.PropagateCorrection(e.ctx, tx, ann, []string{"name"})
			return err
		})
		if err != nil || len(told) != 1 || told[0].Recipient != "brand-partners" || told[0].Status != disclosure.StatusPending {
			t.Fatalf("told %+v, %v", told, err)
		}
		e.run()
		got := e.ep.requests()
		if !hasSub(string(got[len(got)-1].Body), "subject.rectified") {
			t.Fatalf("last event %s", got[len(got)-1].Body)
		}
	})
}

// A member's own profile edit, through identity's real update, reaches
// the recipient that received the field: the hook is wired.
func TestArt19_ProfileEditReachesRecipients(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Lee")
		e.purchase(ann, map[string]string{"name": "Ann Lee"})
		e.run()
		before := len(e.ep.requests())
		_, token, err := e.svc.Identity.Login(e.ctx, "ann@example.org", servicestest.Password, identity.Meta{IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "test"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.svc.Identity.Authenticate(e.ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Identity.UpdateProfile(e.ctx, p, map[string]string{"name": "Ann Lee-Park"}, ""); err != nil {
			t.Fatal(err)
		}
		e.run()
		got := e.ep.requests()
		if len(got) != before+1 || !hasSub(string(got[len(got)-1].Body), "subject.rectified") {
			t.Fatalf("after the member corrected their name the partner got %d more events", len(got)-before)
		}
	})
}
