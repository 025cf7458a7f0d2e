package newsletter_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"steward/internal/consent"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/newsletter"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestPromiseJ24_ObjectionStopsMailAlreadyQueued: three subscribers get a
// first campaign; a second campaign's batch has put everyone's mail in the
// outbox; before the outbox delivers it, one subscriber objects to direct
// marketing through the rights engine, as a signed-in member does, and
// another unsubscribes with the one-click link. Nothing of the second
// campaign reaches either of them at the SMTP server: the outbox re-checks
// at delivery time and marks their mail suppressed, and the campaign's
// per-recipient record says why.
func TestPromiseJ24_ObjectionStopsMailAlreadyQueued(t *testing.T) {
	storetest.Each(t, allMods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		// Campaign batches run on e.runner; delivery on its own runner, so
		// the test can act between queueing and sending.
		var delivery *jobs.Runner
		var outbox *mail.Outbox
		e := newEnv(t, db, "jmir.yaml", false, func(d *newsletter.Deps) {
			delivery = jobs.NewRunner(db, d.Clock, nil)
			var err error
			outbox, err = mail.NewOutbox(db, d.Clock, delivery, d.Door, mail.Config{SMTPURL: srv.URL(), From: "Steward <steward@example.org>"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			d.Outbox = outbox
		})
		rs := e.rightsOn(t, outbox)
		list := e.policy.Newsletters[0].ID
		e.confirmDirect(t, list, "keep@example.org")
		obj := e.confirmDirect(t, list, "object@example.org")
		leave := e.confirmDirect(t, list, "leave@example.org")

		// A first campaign reaches all three.
		if _, err := e.svc.CreateCampaign(ctx, "s_staff", list, newsletter.CampaignInput{Subject: "Welcome", Text: "Hello."}); err != nil {
			t.Fatal(err)
		}
		e.run(t)
		if _, err := delivery.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		for _, addr := range []string{"keep@example.org", "object@example.org", "leave@example.org"} {
			srv.WaitFor(t, func(m mailtest.Received) bool { return m.Subject == "Welcome" && mailtest.SentTo(addr)(m) }, 5*time.Second)
		}
		srv.Reset()

		camp, err := e.svc.CreateCampaign(ctx, "s_staff", list, newsletter.CampaignInput{Subject: "Offers", Text: "Read this."})
		if err != nil {
			t.Fatal(err)
		}
		e.run(t) // the batch: three messages queued in the outbox
		var queued int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mail_outbox WHERE campaign_id = $1 AND status = 'queued'`, camp.ID).Scan(&queued)
		if queued != 3 || len(srv.Messages()) != 0 {
			t.Fatalf("after the batch: %d queued, %d delivered; want 3 and 0", queued, len(srv.Messages()))
		}

		// The objection, filed with the rights engine, and a one-click
		// unsubscription, both after the mail was queued.
		objectToDirectMarketing(t, rs, obj)
		tok, err := e.svc.UnsubscribeLink(leave, list)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Unsubscribe(ctx, tokenOf(t, tok), consent.Evidence{}); err != nil {
			t.Fatal(err)
		}

		if _, err := delivery.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		srv.WaitFor(t, mailtest.SentTo("keep@example.org"), 5*time.Second)
		for _, m := range srv.Messages() {
			if m.Subject != "Offers" {
				continue // the rights engine's own mail about the objection
			}
			if to := m.To[0]; to != "keep@example.org" {
				t.Errorf("the campaign reached %s, who objected or unsubscribed after it was queued", to)
			}
		}
		for _, c := range []struct{ subject, reason string }{{obj, "marketing suppressed"}, {leave, "unsubscribed"}} {
			var status, lastError, sendStatus, sendReason string
			if err := db.QueryRowContext(ctx, `SELECT status, last_error FROM mail_outbox WHERE campaign_id = $1 AND subject_id = $2`, camp.ID, c.subject).
				Scan(&status, &lastError); err != nil {
				t.Fatal(err)
			}
			if status != mail.StatusSuppressed || lastError != c.reason {
				t.Errorf("outbox row of %s: %s (%q), want suppressed (%q)", c.subject, status, lastError, c.reason)
			}
			if err := db.QueryRowContext(ctx, `SELECT status, reason FROM newsletter_sends WHERE campaign_id = $1 AND subject_id = $2`, camp.ID, c.subject).
				Scan(&sendStatus, &sendReason); err != nil {
				t.Fatal(err)
			}
			if sendStatus != "skipped" || !strings.HasPrefix(sendReason, "at delivery: ") || !strings.HasSuffix(sendReason, c.reason) {
				t.Errorf("campaign record of %s: %s (%q), want skipped at delivery", c.subject, sendStatus, sendReason)
			}
		}
		got, _ := e.svc.Campaign(ctx, camp.ID)
		if got.Queued != 1 || got.Skipped != 2 {
			t.Errorf("campaign counts: queued %d, skipped %d; want 1 and 2", got.Queued, got.Skipped)
		}
		var left int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE kind = $1`, mail.JobKind).Scan(&left)
		if left != 0 {
			t.Errorf("%d delivery jobs left", left)
		}
	})
}
