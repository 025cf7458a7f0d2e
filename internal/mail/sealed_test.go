package mail_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

// distinctive is a message whose every personal value can be found by a
// byte scan.
func distinctive() mail.Message {
	return mail.Message{SubjectID: "sub_zelda", To: "zelda.quixotic@example.org", Subject: "Subject-Xylophone-7731",
		Text: "Text-Marmalade-4410 with a link https://site.example/verify?token=Tok3nPlanted99", HTML: "<p>Html-Quokka-2208</p>",
		Kind: "verification", Purpose: "security", Headers: map[string]string{"X-Ref": "Header-Pelican-5512"},
		Unsubscribe: &mail.Unsubscribe{URL: "https://site.example/unsub?token=UnsubTok3n77", Mailto: "unsub-Walrus@site.example"}}
}

var plantedValues = []string{"zelda.quixotic", "Xylophone", "Marmalade", "Tok3nPlanted99", "Quokka", "Pelican", "UnsubTok3n77", "Walrus"}

// TestOutboxStoresNoPlaintext: the outbox row of a message, queued and
// then sent, holds none of its address, subject line, bodies, headers or
// unsubscribe links (tokens included) in the clear, nor does its delivery
// job; the message still arrives whole over SMTP, and its recipient reads
// it back.
func TestOutboxStoresNoPlaintext(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		m := distinctive()
		id := e.enqueue(t, m)
		scan := func(when string) {
			t.Helper()
			for _, table := range []string{"mail_outbox", "jobs"} {
				raw := storetest.RowBytes(t, db, `SELECT * FROM `+table)
				for _, v := range plantedValues {
					if bytes.Contains(raw, []byte(v)) {
						t.Errorf("%s: %s holds %q in the clear", when, table, v)
					}
				}
			}
		}
		scan("queued")
		e.runDue(t, 1)
		got := srv.WaitFor(t, mailtest.SentTo(m.To), time.Second)
		if got.Subject != m.Subject || !strings.Contains(got.Text, "Marmalade") || !strings.Contains(got.HTML, "Quokka") ||
			got.Header.Get("X-Ref") != "Header-Pelican-5512" || !strings.Contains(got.Header.Get("List-Unsubscribe"), "UnsubTok3n77") {
			t.Fatalf("the message did not arrive whole: %q %q %q %v", got.Subject, got.Text, got.HTML, got.Header)
		}
		scan("sent")
		s := e.get(t, id)
		if s.Status != mail.StatusSent || s.To != m.To || s.Text != m.Text || s.Headers["X-Ref"] != "Header-Pelican-5512" ||
			s.Unsubscribe == nil || s.Unsubscribe.URL != m.Unsubscribe.URL || s.Unsubscribe.Mailto != "mailto:"+m.Unsubscribe.Mailto {
			t.Errorf("read back as %+v", s)
		}
		// The delivery record (Get) opens nothing.
		if r, err := e.outbox.Get(context.Background(), id); err != nil || r.To != "" || r.Text != "" || r.Status != mail.StatusSent {
			t.Errorf("Get = %+v, %v; want the delivery state only", r, err)
		}
	})
}

// TestDoorSuppressesAtDelivery: mail queued for a purpose the member
// objects to, or withdraws consent from, before it goes out is suppressed
// at delivery by the door with the guard's reason, audited, never sent;
// mail of the same member for a purpose still allowed goes out.
func TestDoorSuppressesAtDelivery(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		news := campaignMsg(1, "c1")
		news.Kind = "notice" // no BeforeSend check: the door alone decides
		objected := e.enqueue(t, news)
		withdrawn := e.enqueue(t, campaignMsg(2, "c1"))
		account := basic("reader1@example.org")
		account.SubjectID = news.SubjectID
		security := e.enqueue(t, account)
		if err := e.subjects.SetObjection(ctx, db, news.SubjectID, "marketing", true); err != nil {
			t.Fatal(err)
		}
		if err := e.subjects.SetConsent(ctx, db, "sub_2", "marketing", false); err != nil {
			t.Fatal(err)
		}
		e.runDue(t, 3)
		if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].Subject != "Hello" {
			t.Fatalf("server got %d messages, want only the account mail", len(msgs))
		}
		for id, reason := range map[string]string{objected: "objection in force", withdrawn: "consent missing"} {
			if r, _ := e.outbox.Get(ctx, id); r.Status != mail.StatusSuppressed || r.LastError != reason || r.SentAt != nil {
				t.Errorf("%s: %+v, want suppressed: %s", id, r, reason)
			}
		}
		if r, _ := e.outbox.Get(ctx, security); r.Status != mail.StatusSent {
			t.Errorf("the account mail: %s, want sent", r.Status)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM jobs`); n != 0 {
			t.Errorf("%d jobs left: a suppression completes its job", n)
		}
		entries, err := audit.New(db, e.clk).List(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		denied := 0
		for _, en := range entries {
			if en.Action == "guard.denied" && en.Detail["purpose"] == "marketing" && en.Actor == "system" {
				denied++
			}
		}
		if denied != 2 {
			t.Errorf("%d denials of marketing audited, want 2", denied)
		}
	})
}

// TestErasedMembersMailIsDropped: a message whose member was erased
// (their keys destroyed) while it waited is dropped, not retried, and the
// rest of its batch still goes out; mail for an erased member is refused
// when queued, and nothing of it is stored.
func TestErasedMembersMailIsDropped(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		single := e.enqueue(t, basic("gone@example.org"))
		ids, err := e.outbox.EnqueueBatch(ctx, db, seed(t, db, campaignMsg(1, "c"), campaignMsg(2, "c"), campaignMsg(3, "c")))
		if err != nil {
			t.Fatal(err)
		}
		for _, sub := range []string{"sub_gone", "sub_2"} {
			if _, err := e.door.ShredAll(ctx, db, sub); err != nil {
				t.Fatal(err)
			}
		}
		e.runDue(t, 2)
		got := map[string]bool{}
		for _, m := range srv.Messages() {
			got[m.To[0]] = true
		}
		if len(got) != 2 || !got["reader1@example.org"] || !got["reader3@example.org"] {
			t.Fatalf("delivered to %v, want reader1 and reader3 only", got)
		}
		for _, id := range []string{single, ids[1]} {
			if _, err := e.outbox.Get(ctx, id); !fault.Is(err, fault.NotFound) {
				t.Errorf("%s: %v, want dropped", id, err)
			}
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM jobs`); n != 0 {
			t.Errorf("%d jobs left: a dropped message is not retried", n)
		}
		before := countRows(t, db, `SELECT COUNT(*) FROM mail_outbox`)
		if _, err := e.outbox.Enqueue(ctx, db, basic("gone@example.org")); !errors.Is(err, door.ErrShredded) {
			t.Errorf("Enqueue for an erased member = %v, want ErrShredded", err)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM mail_outbox`); n != before {
			t.Errorf("mail for an erased member was stored")
		}
	})
}

// TestMailAfterErasingMailHistory: a member who erased the mail Steward
// sent them (the key of the mail's category only) still gets new mail,
// under a new key; the old ciphertext stays unreadable, and the message
// still queued under it fails for good instead of being sent or retried.
func TestMailAfterErasingMailHistory(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		old := e.enqueue(t, basic("ann@example.org"))
		cat, err := e.door.CategoryOf("mail")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.door.Shred(ctx, db, "sub_ann", cat); err != nil {
			t.Fatal(err)
		}
		fresh := e.enqueue(t, basic("ann@example.org"))
		e.runDue(t, 2)
		if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].To[0] != "ann@example.org" {
			t.Fatalf("server got %d messages, want the new one", len(msgs))
		}
		if r, err := e.outbox.Get(ctx, old); err != nil || r.Status != mail.StatusFailed {
			t.Errorf("the mail sealed under the destroyed key: %+v, %v; want failed", r, err)
		}
		if s := e.get(t, old); s.Withheld == "" || s.Text != "" {
			t.Errorf("the mail sealed under the destroyed key reads as %+v", s)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM jobs`); n != 0 {
			t.Errorf("%d jobs left", n)
		}
		if s := e.get(t, fresh); s.Status != mail.StatusSent {
			t.Errorf("the new mail: %s, want sent", s.Status)
		}
	})
}

// TestEnqueueRefusedByTheDoor: mail for a purpose the policy does not let
// reach the member now (marketing without consent) is refused when queued
// with the door's denial, and nothing is stored; in a bulk send the
// recipient is skipped with the reason and the others are queued.
func TestEnqueueRefusedByTheDoor(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, mail.Config{}, quiet())
		ms := seed(t, db, campaignMsg(1, "c"), campaignMsg(2, "c"))
		if err := e.subjects.SetConsent(ctx, db, "sub_2", "marketing", false); err != nil {
			t.Fatal(err)
		}
		_, err := e.outbox.Enqueue(ctx, db, ms[1])
		if den, ok := door.IsDenied(err); !ok || den.Reason.String() != "consent missing" {
			t.Fatalf("Enqueue without consent = %v, want the door's denial", err)
		}
		if _, err := e.outbox.EnqueueBatch(ctx, db, ms); !fault.Is(err, fault.PurposeDenied) || !strings.Contains(err.Error(), "2 of 2") {
			t.Errorf("EnqueueBatch = %v, want the denial of message 2 of 2", err)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM mail_outbox`); n != 0 {
			t.Fatalf("%d refused messages stored", n)
		}
		ids, err := e.outbox.EnqueueUsable(ctx, db, ms)
		if err != nil || ids[0] == "" || ids[1] != "" {
			t.Fatalf("EnqueueUsable = %q, %v; want the second left out", ids, err)
		}
	})
}

// TestStaffReadsThroughTheDoor: a staff role opens a message whose
// purpose it holds (admin, account mail) and sees a message whose purpose
// it lacks (admin, an answer to a privacy request) withheld, with the
// refusal audited; the list shows both, the withheld one without its
// address or subject line.
func TestStaffReadsThroughTheDoor(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, mail.Config{}, quiet())
		account := e.enqueue(t, basic("ann@example.org"))
		answer := basic("ann@example.org")
		answer.Subject, answer.Kind, answer.Purpose = "Your privacy request", "rights-request", "subject-request"
		request := e.enqueue(t, answer)
		admin := mail.AsStaff("staff_1", "admin")

		s, err := e.outbox.Open(ctx, admin, account)
		if err != nil || s.Withheld != "" || s.To != "ann@example.org" || s.Text != "Hello there." {
			t.Fatalf("admin opening account mail: %+v, %v", s, err)
		}
		s, err = e.outbox.Open(ctx, admin, request)
		if err != nil || s.Withheld != "the staff role may not use this purpose" || s.To != "" || s.Subject != "" || s.Text != "" {
			t.Fatalf("admin opening an answer to a privacy request: %+v, %v; want it withheld", s, err)
		}
		if s.Status != mail.StatusHeld || s.Kind != "rights-request" {
			t.Errorf("a withheld message keeps its delivery record: %+v", s)
		}
		if s, err := e.outbox.Open(ctx, mail.AsStaff("staff_2", "privacy"), request); err != nil || s.Withheld != "" || s.Subject != "Your privacy request" {
			t.Errorf("privacy staff opening it: %+v, %v", s, err)
		}
		list, err := e.outbox.List(ctx, admin, 10)
		if err != nil || len(list) != 2 {
			t.Fatalf("List = %d, %v", len(list), err)
		}
		for _, m := range list {
			if (m.ID == request) != (m.Withheld != "") || (m.Withheld != "" && m.To != "") {
				t.Errorf("listed as %+v", m)
			}
		}
		if err := e.door.Close(ctx); err != nil { // the list's refusals are counted per minute
			t.Fatal(err)
		}
		entries, err := audit.New(db, e.clk).List(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var one, counted bool
		for _, en := range entries {
			if en.Action != "guard.denied" || en.Actor != "staff:staff_1" || en.Detail["purpose"] != "subject-request" {
				continue
			}
			if en.Subject == "sub_ann" && en.Detail["count"] == "" {
				one = true
			} else if en.Detail["count"] != "" {
				counted = true
			}
		}
		if !one || !counted {
			t.Errorf("refusals audited: the opened message %v, the list %v; want both", one, counted)
		}
	})
}

// TestResealMovesPlaintext: messages an earlier release stored in
// plaintext are sealed by Reseal and their plaintext columns emptied; the
// queued one is still delivered whole and reads back; a second run finds
// nothing; a message of an erased member, or of no known subject, is
// deleted rather than sealed again.
func TestResealMovesPlaintext(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		seed(t, db, mail.Message{SubjectID: "sub_zelda"}, mail.Message{SubjectID: "sub_erased"})
		legacy := func(id, subject, headers string) {
			t.Helper()
			if _, err := db.ExecContext(ctx, `INSERT INTO mail_outbox (id, subject_id, kind, purpose, to_addr, subject, body_text, body_html, headers,
				list_id, unsubscribe_url, unsubscribe_mailto, campaign_id, message_id, status, attempts, last_error, created_at)
				VALUES ($1, $2, 'verification', 'security', 'zelda.quixotic@example.org', 'Subject-Xylophone-7731',
				'Text-Marmalade-4410 https://site.example/verify?token=Tok3nPlanted99', '<p>Html-Quokka-2208</p>', $3, '',
				'https://site.example/unsub?token=UnsubTok3n77', 'mailto:unsub-Walrus@site.example', '', $4, 'queued', 0, '', $5)`,
				id, subject, headers, "<"+id+"@site.example>", t0); err != nil {
				t.Fatal(err)
			}
		}
		legacy("m1", "sub_zelda", `{"X-Ref":"Header-Pelican-5512"}`)
		legacy("m2", "sub_zelda", `{}`)
		legacy("m3", "sub_erased", `null`)
		legacy("m4", "sub_nobody", `{}`)
		for _, field := range []string{"email", "mail"} {
			cat, err := e.door.CategoryOf(field)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.door.Shred(ctx, db, "sub_erased", cat); err != nil {
				t.Fatal(err)
			}
		}
		n, err := e.outbox.Reseal(ctx)
		if err != nil || n != 4 {
			t.Fatalf("Reseal = %d, %v; want the four messages", n, err)
		}
		raw := storetest.RowBytes(t, db, `SELECT * FROM mail_outbox`)
		for _, v := range plantedValues {
			if bytes.Contains(raw, []byte(v)) {
				t.Errorf("the outbox still holds %q in the clear", v)
			}
		}
		if left := countRows(t, db, `SELECT COUNT(*) FROM mail_outbox WHERE to_addr <> '' OR subject <> '' OR body_text <> '' OR body_html <> ''
			OR headers <> '' OR unsubscribe_url <> '' OR unsubscribe_mailto <> ''`); left != 0 {
			t.Errorf("%d messages keep plaintext", left)
		}
		for _, id := range []string{"m3", "m4"} {
			if _, err := e.outbox.Get(ctx, id); !fault.Is(err, fault.NotFound) {
				t.Errorf("%s: %v, want deleted", id, err)
			}
		}
		s := e.get(t, "m1")
		if s.To != "zelda.quixotic@example.org" || s.Subject != "Subject-Xylophone-7731" || s.Headers["X-Ref"] != "Header-Pelican-5512" ||
			s.Unsubscribe == nil || s.Unsubscribe.Mailto != "mailto:unsub-Walrus@site.example" {
			t.Errorf("re-sealed message reads as %+v", s)
		}
		if s := e.get(t, "m2"); s.Headers != nil || s.Text == "" {
			t.Errorf("re-sealed message without headers reads as %+v", s)
		}
		if n, err := e.outbox.Reseal(ctx); err != nil || n != 0 {
			t.Errorf("second Reseal = %d, %v", n, err)
		}
		if _, err := e.runner.Enqueue(ctx, db, mail.JobKind, map[string]string{"id": "m1"}, jobs.Options{}); err != nil {
			t.Fatal(err)
		}
		e.runDue(t, 1)
		got := srv.WaitFor(t, mailtest.SentTo("zelda.quixotic@example.org"), time.Second)
		if got.Subject != "Subject-Xylophone-7731" || got.Header.Get("X-Ref") != "Header-Pelican-5512" {
			t.Errorf("the re-sealed message arrived as %q %v", got.Subject, got.Header)
		}
	})
}
