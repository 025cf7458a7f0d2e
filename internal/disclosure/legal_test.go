package disclosure_test

import (
	"strings"
	"testing"
	"time"

	"steward/internal/disclosure"
	"steward/internal/fault"
	"steward/internal/mail"
)

// Two notify jobs for one request that both read its subject untold (two
// workers on PostgreSQL, or a job run again after a crash before it was
// marked done) mail the notice once: the telling is claimed before the
// mail is queued, in the same transaction.
func TestLegalNoticeMailedOnce(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Lee")
		lr, err := e.d.RecordLegalRequest(e.ctx, "officer", disclosure.LegalInput{Kind: disclosure.KindCourtOrder, Jurisdiction: "CA",
			Authority: "Ontario Superior Court", Subjects: []string{ann}, Categories: []string{"identity"},
			Decision: disclosure.DecisionRefused, DecisionReason: "overbroad", Notify: disclosure.NotifyNow})
		if err != nil {
			t.Fatal(err)
		}
		if len(lr.Notified) != 0 {
			t.Fatalf("told before the job ran: %v", lr.Notified)
		}
		for range 2 {
			if err := e.d.NotifyAsRead(e.ctx, lr); err != nil {
				t.Fatal(err)
			}
		}
		e.run()
		list, err := e.svc.Outbox.List(e.ctx, mail.AsRecipient, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range list {
			if m.To == "ann@example.org" && m.Kind == "legal-request" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("the notice was mailed %d times, want 1", n)
		}
		if got, _ := e.d.LegalRequest(e.ctx, lr.ID); got.Notified[ann] == "" {
			t.Fatal("the register does not show the member told")
		}
	})
}

// A legal request whose authority recipient the policy no longer declares
// (recorded under an earlier policy) refuses a disclosure on it with a
// conflict naming the recipient, instead of failing.
func TestDiscloseOnRequestWhoseRecipientIsGone(t *testing.T) {
	each(t, envOpts{}, func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Lee")
		lr, err := e.d.RecordLegalRequest(e.ctx, "officer", disclosure.LegalInput{Kind: disclosure.KindSubpoena, Jurisdiction: "US",
			Authority: "FBI", Subjects: []string{ann}, Categories: []string{"identity"}, Decision: disclosure.DecisionComplied,
			DecisionReason: "valid", Notify: disclosure.NotifyDelay, NotifyAfter: e.clk.Now().Add(30 * 24 * time.Hour), NotifyReason: "gag order"})
		if err != nil {
			t.Fatal(err)
		}
		// As if recorded under a policy whose authority was since renamed.
		if _, err := e.db.ExecContext(e.ctx, `UPDATE legal_requests SET recipient_id = 'old-authorities' WHERE id = $1`, lr.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.d.DiscloseOnRequest(e.ctx, "officer", "privacy", lr.ID, ann, []string{"identity"})
		if !fault.Is(err, fault.Conflict) || !strings.Contains(err.Error(), "old-authorities") || !strings.Contains(err.Error(), "no longer declares") {
			t.Fatalf("disclosure on a request whose recipient is gone: %v, want a conflict naming it", err)
		}
		if ds, err := e.d.Log(e.ctx, disclosure.Filter{Subject: ann}); err != nil || len(ds) != 0 {
			t.Fatalf("disclosures recorded: %v, %v", ds, err)
		}
	})
}
