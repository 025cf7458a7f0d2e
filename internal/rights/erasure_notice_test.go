package rights_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/rights"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// TestErasureNoticeOpensBeforeKeysGo: the completion notice of an account
// erasure is sealed with the member's keys, so the keys must outlive it.
// While the mail server is down the notice waits in the outbox and the
// erasure waits with it, keys and all; once the server is back the notice
// is opened and delivered, and only then are the keys destroyed and the
// notice erased.
func TestErasureNoticeOpensBeforeKeysGo(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, "mixi.yaml", envOpts{smtp: true})
		ann := e.member("ann@example.org")
		e.seed(ann, "ANN")
		e.smtp.Stop()
		r := e.file(ann, rights.Filing{Type: rights.Erasure, Scope: "account"})
		e.run()
		if r = e.request(r.ID); r.Status == rights.StatusCompleted {
			t.Fatalf("the erasure completed while its notice could not leave")
		}
		live, err := e.door.LiveCategories(e.ctx, db, ann)
		if err != nil || !slices.Contains(live, "identity") || !slices.Contains(live, "communications") {
			t.Fatalf("keys while the notice waits: %v, %v; want identity and communications still live", live, err)
		}
		waiting := e.mailCount(ann, func(m mail.Stored) bool {
			return strings.Contains(m.Subject, "erased") && m.Status == mail.StatusQueued && m.Withheld == ""
		})
		if waiting != 1 {
			t.Fatalf("%d erasure notices waiting, readable, want 1", waiting)
		}

		e.smtp.Restart(t)
		e.clock.Advance(2 * time.Minute) // the delivery's backoff and the erasure's next look
		e.run()
		e.smtp.WaitFor(t, func(m mailtest.Received) bool {
			return mailtest.SentTo("ann@example.org")(m) && strings.Contains(m.Subject, "erased") && strings.Contains(m.Text, "Erased:")
		}, 5*time.Second)
		if r = e.request(r.ID); r.Status != rights.StatusCompleted {
			t.Fatalf("after the notice left: %s, want completed", r.Status)
		}
		if live, _ := e.door.LiveCategories(e.ctx, db, ann); slices.Contains(live, "identity") || slices.Contains(live, "communications") {
			t.Errorf("the keys that sealed the notice outlived the erasure: %v", live)
		}
		if n := e.count(`SELECT COUNT(*) FROM mail_outbox WHERE subject_id = $1`, ann); n != 0 {
			t.Errorf("%d messages of Ann's left in the outbox", n)
		}
	})
}
