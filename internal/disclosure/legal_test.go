package disclosure_test

import (
	"testing"

	"steward/internal/disclosure"
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
