package mail_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/door/doortest"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func mods() []store.Migrations {
	return append(doortest.Migrations(), jobs.Migrations(), mail.Migrations())
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

type env struct {
	db       *store.DB
	clk      *clock.Fake
	runner   *jobs.Runner
	door     *door.Door
	subjects *subject.Store
	outbox   *mail.Outbox
}

func newEnv(t *testing.T, db *store.DB, cfg mail.Config, log *slog.Logger) env {
	t.Helper()
	clk := clock.NewFake(t0)
	r := jobs.NewRunner(db, clk, log)
	if cfg.From == "" {
		cfg.From = "Example Site <privacy@site.example>"
	}
	subjects := subject.NewStore(db, clk)
	d := doortest.New(t, db, clk, nil, subjects)
	o, err := mail.NewOutbox(db, clk, r, d, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return env{db, clk, r, d, subjects, o}
}

// seed records the subjects of ms that are not yet known, as a sign-up
// would (with their consent to marketing when the mail is for it), and
// returns ms. The tests name subjects ("sub_anne") so that they read; the
// rows are written here because subject.Store makes its own ids.
func seed(t *testing.T, db *store.DB, ms ...mail.Message) []mail.Message {
	t.Helper()
	ctx := context.Background()
	subjects := subject.NewStore(db, clock.Real{})
	for _, m := range ms {
		if m.SubjectID == "" {
			continue
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO subjects (id, kind, source, policy_version, created_at) VALUES ($1, 'member', 'test', 1, $2)
			ON CONFLICT (id) DO NOTHING`, m.SubjectID, t0); err != nil {
			t.Fatal(err)
		}
		if m.Purpose == "marketing" {
			if err := subjects.SetConsent(ctx, db, m.SubjectID, "marketing", true); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ms
}

func (e env) runDue(t *testing.T, want int) {
	t.Helper()
	n, err := e.runner.RunDue(context.Background())
	if err != nil {
		t.Fatalf("RunDue: %v", err)
	}
	if n != want {
		t.Fatalf("RunDue ran %d jobs, want %d", n, want)
	}
}

// get returns a message opened as its recipient reads it.
func (e env) get(t *testing.T, id string) mail.Stored {
	t.Helper()
	s, err := e.outbox.Open(context.Background(), mail.AsRecipient, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e env) enqueue(t *testing.T, m mail.Message) string {
	t.Helper()
	seed(t, e.db, m)
	id, err := e.outbox.Enqueue(context.Background(), e.db, m)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return id
}

func basic(to string) mail.Message {
	return mail.Message{SubjectID: "sub_" + strings.Split(to, "@")[0], To: to, Subject: "Hello", Text: "Hello there.", Kind: "notice",
		Purpose: "security"}
}

func TestDeliverOverSMTP(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		srv := mailtest.Start(t)
		var logs bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, log)
		if !e.outbox.Configured() {
			t.Fatal("Configured() = false with an SMTP URL")
		}
		text := "Bonjour Anne,\n\nConfirm your address: https://site.example/verify?token=abc\n\n-- \nSteward"
		html := "<p>Bonjour Anne,</p>\n<p><a href=\"https://site.example/verify?token=abc&amp;x=1\">Confirm</a></p>"
		id := e.enqueue(t, mail.Message{
			SubjectID: "sub_anne", To: "anne.secret@example.org", Subject: "Bienvenue à Steward ✓ — confirm",
			Text: text, HTML: html, Kind: "verification", Purpose: "security",
			Headers:     map[string]string{"X-Steward-Ref": "ref-42", "in-reply-to": "<abc@site.example>"},
			ListID:      "Site updates <updates.site.example>",
			Unsubscribe: &mail.Unsubscribe{URL: "https://site.example/newsletters/unsubscribe?token=t1", Mailto: "unsubscribe@site.example"},
			ReplyTo:     "support+r_1.abc@site.example",
		})
		if s := e.get(t, id); s.Status != mail.StatusQueued || s.Attempts != 0 {
			t.Fatalf("before delivery: status %s, %d attempts; want queued, 0", s.Status, s.Attempts)
		}
		e.runDue(t, 1)
		msgs := srv.Messages()
		if len(msgs) != 1 {
			t.Fatalf("server got %d messages, want 1", len(msgs))
		}
		got := msgs[0]
		stored := e.get(t, id)
		checks := []struct{ name, got, want string }{
			{"envelope from", got.From, "privacy@site.example"},
			{"envelope to", strings.Join(got.To, ","), "anne.secret@example.org"},
			{"From", got.Header.Get("From"), `"Example Site" <privacy@site.example>`},
			{"To", got.Header.Get("To"), "<anne.secret@example.org>"},
			{"Subject", got.Subject, "Bienvenue à Steward ✓ — confirm"},
			{"Message-ID", got.Header.Get("Message-Id"), stored.MessageID},
			{"List-Id", got.Header.Get("List-Id"), `"Site updates" <updates.site.example>`},
			{"List-Unsubscribe", got.Header.Get("List-Unsubscribe"), "<https://site.example/newsletters/unsubscribe?token=t1>, <mailto:unsubscribe@site.example>"},
			{"List-Unsubscribe-Post", got.Header.Get("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click"},
			{"X-Steward-Ref", got.Header.Get("X-Steward-Ref"), "ref-42"},
			{"In-Reply-To", got.Header.Get("In-Reply-To"), "<abc@site.example>"},
			{"Reply-To", got.Header.Get("Reply-To"), "<support+r_1.abc@site.example>"},
			{"Auto-Submitted", got.Header.Get("Auto-Submitted"), "auto-generated"},
			{"Precedence", got.Header.Get("Precedence"), ""},
			{"User-Agent", got.Header.Get("User-Agent") + got.Header.Get("X-Mailer"), ""},
			{"text part", strings.TrimRight(got.Text, "\n"), text},
			{"html part", strings.TrimRight(got.HTML, "\n"), html},
			{"link", got.Link("https://site.example/verify"), "https://site.example/verify?token=abc"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
			}
		}
		if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
			t.Errorf("Content-Type = %q, want multipart/alternative", ct)
		}
		if date, err := got.Header.Date(); err != nil || !date.Equal(stored.CreatedAt.Truncate(time.Second)) {
			t.Errorf("Date = %v (%v), want %v", date, err, stored.CreatedAt)
		}
		if stored.Status != mail.StatusSent || stored.SentAt == nil || !stored.SentAt.Equal(t0) || stored.Attempts != 1 || stored.LastError != "" {
			t.Errorf("stored after delivery = %+v; want sent at %v after 1 attempt", stored, t0)
		}
		// Delivered once: nothing left to run, nothing sent again.
		e.runDue(t, 0)
		if n := len(srv.Messages()); n != 1 {
			t.Errorf("server got %d messages after a second run, want 1", n)
		}
		for _, secret := range []string{"anne.secret", "Bienvenue", "Bonjour", "token=abc"} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("logs contain %q:\n%s", secret, logs.String())
			}
		}
		if !strings.Contains(logs.String(), id) {
			t.Errorf("logs do not name the outbox id:\n%s", logs.String())
		}
	})
}

func TestListUnsubscribeHeadersPerRFC8058(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		const https = "https://site.example/newsletters/unsubscribe?token=eyJ.sig-_~%2F"
		cases := []struct {
			name       string
			unsub      *mail.Unsubscribe
			headers    map[string]string
			wantLU     string
			wantPost   bool
			wantListID string
		}{
			{"https and mailto", &mail.Unsubscribe{URL: https, Mailto: "mailto:unsub@site.example?subject=unsubscribe"}, nil,
				"<" + https + ">, <mailto:unsub@site.example?subject=unsubscribe>", true, ""},
			{"https only", &mail.Unsubscribe{URL: https}, nil, "<" + https + ">", true, ""},
			{"http is announced without one-click", &mail.Unsubscribe{URL: "http://127.0.0.1:8080/newsletters/unsubscribe?token=t"}, nil,
				"<http://127.0.0.1:8080/newsletters/unsubscribe?token=t>", false, ""},
			{"mailto only", &mail.Unsubscribe{Mailto: "unsub@site.example"}, nil, "<mailto:unsub@site.example>", false, ""},
			{"given as headers", nil, map[string]string{"List-Unsubscribe": "<" + https + ">", "List-Id": "updates.site.example"},
				"<" + https + ">", true, "<updates.site.example>"},
			{"none", nil, nil, "", false, ""},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				to := fmt.Sprintf("r%d@example.org", i)
				m := basic(to)
				m.Unsubscribe, m.Headers, m.Kind, m.CampaignID = c.unsub, c.headers, "campaign", "spring-2026"
				e.enqueue(t, m)
				e.runDue(t, 1)
				got := srv.WaitFor(t, mailtest.SentTo(to), time.Second)
				lu := got.Header["List-Unsubscribe"]
				post := got.Header["List-Unsubscribe-Post"]
				if c.wantLU == "" {
					if len(lu) != 0 || len(post) != 0 {
						t.Fatalf("List-Unsubscribe %q, -Post %q; want neither", lu, post)
					}
					return
				}
				if len(lu) != 1 || lu[0] != c.wantLU {
					t.Errorf("List-Unsubscribe = %q, want exactly [%q]", lu, c.wantLU)
				}
				if c.wantPost && (len(post) != 1 || post[0] != "List-Unsubscribe=One-Click") {
					t.Errorf("List-Unsubscribe-Post = %q, want exactly [List-Unsubscribe=One-Click]", post)
				}
				if !c.wantPost && len(post) != 0 {
					t.Errorf("List-Unsubscribe-Post = %q without an https URL; RFC 8058 needs one", post)
				}
				if got.Header.Get("List-Id") != c.wantListID {
					t.Errorf("List-Id = %q, want %q", got.Header.Get("List-Id"), c.wantListID)
				}
				if got.Header.Get("Precedence") != "bulk" {
					t.Errorf("campaign mail without Precedence: bulk")
				}
			})
		}
	})
}

func TestInjectionAndBadInputRefused(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		cases := []struct {
			name  string
			field string
			edit  func(m *mail.Message)
		}{
			{"CRLF in to", "to", func(m *mail.Message) { m.To = "a@example.org\r\nBcc: victim@example.org" }},
			{"LF in to", "to", func(m *mail.Message) { m.To = "a@example.org\nBcc: v@example.org" }},
			{"display name in to", "to", func(m *mail.Message) { m.To = "Eve <eve@example.org>" }},
			{"two addresses", "to", func(m *mail.Message) { m.To = "a@example.org, b@example.org" }},
			{"not an address", "to", func(m *mail.Message) { m.To = "not-an-address" }},
			{"CRLF in subject", "subject", func(m *mail.Message) { m.Subject = "Hi\r\nBcc: victim@example.org" }},
			{"LF in subject", "subject", func(m *mail.Message) { m.Subject = "Hi\nthere" }},
			{"CR in subject", "subject", func(m *mail.Message) { m.Subject = "Hi\rthere" }},
			{"NUL in subject", "subject", func(m *mail.Message) { m.Subject = "Hi\x00" }},
			{"line separator in subject", "subject", func(m *mail.Message) { m.Subject = "Hi\u2028Bcc: x@example.org" }},
			{"invalid UTF-8 subject", "subject", func(m *mail.Message) { m.Subject = "Hi \xff" }},
			{"subject over 998 bytes", "subject", func(m *mail.Message) { m.Subject = strings.Repeat("é", 500) }},
			{"empty subject", "subject", func(m *mail.Message) { m.Subject = " " }},
			{"no text", "text", func(m *mail.Message) { m.Text = "" }},
			{"NUL in text", "text", func(m *mail.Message) { m.Text = "a\x00b" }},
			{"CRLF in header value", "headers.X-Ref", func(m *mail.Message) { m.Headers = map[string]string{"X-Ref": "a\r\nBcc: v@example.org"} }},
			{"colon in header name", "headers", func(m *mail.Message) { m.Headers = map[string]string{"X-Ref: a\r\nBcc": "v"} }},
			{"Bcc header", "headers.Bcc", func(m *mail.Message) { m.Headers = map[string]string{"Bcc": "v@example.org"} }},
			{"Reply-To header", "headers.Reply-To", func(m *mail.Message) { m.Headers = map[string]string{"Reply-To": "v@example.org"} }},
			{"two reply-to addresses", "reply_to", func(m *mail.Message) { m.ReplyTo = "a@example.org, b@example.org" }},
			{"CRLF in reply-to", "reply_to", func(m *mail.Message) { m.ReplyTo = "a@example.org\r\nBcc: v@example.org" }},
			{"Content-Type header", "headers.Content-Type", func(m *mail.Message) { m.Headers = map[string]string{"content-type": "text/html"} }},
			{"header twice", "headers.X-Ref", func(m *mail.Message) { m.Headers = map[string]string{"X-Ref": "a", "x-ref": "b"} }},
			{"List-Unsubscribe twice", "headers.List-Unsubscribe", func(m *mail.Message) {
				m.Unsubscribe = &mail.Unsubscribe{URL: "https://a.example/u"}
				m.Headers = map[string]string{"List-Unsubscribe": "<https://b.example/u>"}
			}},
			{"closing bracket in unsubscribe URL", "unsubscribe.url", func(m *mail.Message) {
				m.Unsubscribe = &mail.Unsubscribe{URL: "https://a.example/u>, <https://evil.example/"}
			}},
			{"CRLF in unsubscribe URL", "unsubscribe.url", func(m *mail.Message) {
				m.Unsubscribe = &mail.Unsubscribe{URL: "https://a.example/u\r\nBcc: v@example.org"}
			}},
			{"javascript unsubscribe URL", "unsubscribe.url", func(m *mail.Message) { m.Unsubscribe = &mail.Unsubscribe{URL: "javascript:alert(1)"} }},
			{"bad mailto", "unsubscribe.mailto", func(m *mail.Message) { m.Unsubscribe = &mail.Unsubscribe{Mailto: "mailto:nobody"} }},
			{"empty unsubscribe", "unsubscribe", func(m *mail.Message) { m.Unsubscribe = &mail.Unsubscribe{} }},
			{"CRLF in list id", "list_id", func(m *mail.Message) { m.ListID = "a.example\r\nBcc: v@example.org" }},
			{"bad list id", "list_id", func(m *mail.Message) { m.ListID = "no-dot" }},
			{"no subject id", "subject_id", func(m *mail.Message) { m.SubjectID = "" }},
			{"bad kind", "kind", func(m *mail.Message) { m.Kind = "Bad Kind" }},
			{"bad campaign", "campaign_id", func(m *mail.Message) { m.CampaignID = "a b" }},
			{"no purpose", "purpose", func(m *mail.Message) { m.Purpose = "" }},
			{"purpose the policy does not declare", "purpose", func(m *mail.Message) { m.Purpose = "astrology" }},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				m := basic("ok@example.org")
				c.edit(&m)
				_, err := e.outbox.Enqueue(context.Background(), db, m)
				if !fault.Is(err, fault.Invalid) || fault.FieldOf(err) != c.field {
					t.Fatalf("Enqueue error = %v (field %q), want invalid on field %q", err, fault.FieldOf(err), c.field)
				}
			})
		}
		list, err := e.outbox.List(context.Background(), mail.AsRecipient, 10)
		if err != nil || len(list) != 0 {
			t.Fatalf("refused messages were stored: %d, %v", len(list), err)
		}
		var jobsN int
		db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM jobs`).Scan(&jobsN)
		if jobsN != 0 {
			t.Fatalf("refused messages enqueued %d jobs", jobsN)
		}
		// The limits themselves are accepted.
		m := basic("edge@example.org")
		m.Subject = strings.Repeat("é", 499) // 998 bytes
		e.enqueue(t, m)
		e.runDue(t, 1)
		if got := srv.WaitFor(t, mailtest.SentTo("edge@example.org"), time.Second); got.Subject != m.Subject {
			t.Fatalf("998-byte subject arrived as %q", got.Subject)
		}
	})
}

func TestHeldWithoutSMTP(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, mail.Config{}, quiet())
		if e.outbox.Configured() {
			t.Fatal("Configured() = true without an SMTP URL")
		}
		first := basic("first@example.org")
		first.HTML = "<p>Hi</p>"
		a := e.enqueue(t, first)
		e.clk.Advance(time.Minute)
		b := e.enqueue(t, basic("second@example.org"))
		e.runDue(t, 0)
		list, err := e.outbox.List(ctx, mail.AsRecipient, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != b || list[1].ID != a {
			t.Fatalf("List = %d messages, want the two newest first", len(list))
		}
		for _, s := range list {
			if s.Status != mail.StatusHeld || s.SentAt != nil {
				t.Errorf("%s: status %s, want held", s.ID, s.Status)
			}
		}
		if list[1].To != "first@example.org" || list[1].HTML != "<p>Hi</p>" || list[1].Text != "Hello there." || !list[1].CreatedAt.Equal(t0) {
			t.Errorf("held message not readable as stored: %+v", list[1])
		}
		mine, err := e.outbox.ForSubject(ctx, db, "sub_second", 10)
		if err != nil || len(mine) != 1 || mine[0].ID != b {
			t.Errorf("ForSubject = %+v, %v; want the second message", mine, err)
		}
		if _, err := e.outbox.Get(ctx, "nope"); !fault.Is(err, fault.NotFound) {
			t.Errorf("Get(unknown) = %v, want not_found", err)
		}
		var n int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs`).Scan(&n)
		if n != 0 {
			t.Errorf("held mail enqueued %d delivery jobs", n)
		}
	})
}

func TestSMTPDownIsRetriedWithBackoff(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		srv.Stop()
		id := e.enqueue(t, basic("down@example.org"))
		e.runDue(t, 1)
		s := e.get(t, id)
		if s.Status != mail.StatusQueued || s.Attempts != 1 || s.LastError == "" {
			t.Fatalf("after a refused connection: %+v; want queued with the error", s)
		}
		if strings.Contains(s.LastError, "down@") || strings.Contains(s.LastError, "127.0.0.1") {
			t.Errorf("last_error %q names the recipient or an address", s.LastError)
		}
		e.runDue(t, 0) // backing off
		srv.Restart(t)
		e.clk.Advance(jobs.DefaultBackoffBase)
		e.runDue(t, 1)
		if s := e.get(t, id); s.Status != mail.StatusSent || s.Attempts != 2 {
			t.Fatalf("after the server came back: status %s after %d attempts, want sent after 2", s.Status, s.Attempts)
		}
		// A temporary 4xx answer is retried the same way.
		srv.Fail(451, "try again later")
		id2 := e.enqueue(t, basic("busy@example.org"))
		e.runDue(t, 1)
		if s := e.get(t, id2); s.Status != mail.StatusQueued || !strings.Contains(s.LastError, "451") {
			t.Fatalf("after a 451: %+v; want queued with the code", s)
		}
		srv.Fail(0, "")
		e.clk.Advance(jobs.DefaultBackoffBase)
		e.runDue(t, 1)
		if s := e.get(t, id2); s.Status != mail.StatusSent {
			t.Fatalf("after the 451 cleared: %s, want sent", s.Status)
		}
		if n := len(srv.Messages()); n != 2 {
			t.Fatalf("server got %d messages, want 2", n)
		}
	})
}

func TestPermanentFailureAndGivingUp(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		srv.Fail(550, "no such user: gone@example.org")
		id := e.enqueue(t, basic("gone@example.org"))
		e.runDue(t, 1)
		s := e.get(t, id)
		if s.Status != mail.StatusFailed || !strings.Contains(s.LastError, "550") || strings.Contains(s.LastError, "gone@") {
			t.Fatalf("after a 550: %+v; want failed with the code and without the address", s)
		}
		e.clk.Advance(24 * time.Hour)
		e.runDue(t, 0) // no retry of a permanent failure
		srv.Fail(0, "")
		srv.Stop()
		id2 := e.enqueue(t, basic("never@example.org"))
		for range 12 {
			e.runDue(t, 1)
			e.clk.Advance(jobs.DefaultBackoffMax)
		}
		e.runDue(t, 0)
		if s := e.get(t, id2); s.Status != mail.StatusFailed || s.Attempts != 12 || !strings.Contains(s.LastError, "gave up after 12 attempts") {
			t.Fatalf("after 12 refused attempts: %+v; want failed", s)
		}
	})
}

func TestCampaignMailWaitsForTransactionalMail(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		for i := range 3 {
			m := basic(fmt.Sprintf("bulk%d@example.org", i))
			m.Kind, m.CampaignID = "campaign", "c1"
			e.enqueue(t, m)
		}
		e.clk.Advance(time.Second)
		e.enqueue(t, basic("reset@example.org"))
		e.runDue(t, 4)
		if got := srv.Messages()[0].To[0]; got != "reset@example.org" {
			t.Fatalf("first delivered to %s, want the transactional mail first", got)
		}
	})
}

func TestEnqueueInCallersTransaction(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		boom := errors.New("sign-up failed")
		seed(t, db, basic("rolled@example.org"), basic("kept@example.org"))
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := e.outbox.Enqueue(ctx, tx, basic("rolled@example.org")); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		var id string
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			var err error
			id, err = e.outbox.Enqueue(ctx, tx, basic("kept@example.org"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		e.runDue(t, 1)
		msgs := srv.Messages()
		if len(msgs) != 1 || msgs[0].To[0] != "kept@example.org" {
			t.Fatalf("server got %d messages, want only the committed one", len(msgs))
		}
		if e.get(t, id).Status != mail.StatusSent {
			t.Fatal("committed message not sent")
		}
	})
}

func TestSentMessageIsNeverSentAgain(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		id := e.enqueue(t, basic("once@example.org"))
		e.runDue(t, 1)
		// A stray second delivery job for the same message.
		if _, err := e.runner.Enqueue(ctx, db, mail.JobKind, map[string]string{"id": id}, jobs.Options{}); err != nil {
			t.Fatal(err)
		}
		e.runDue(t, 1)
		if n := len(srv.Messages()); n != 1 {
			t.Fatalf("server got %d messages, want 1", n)
		}
		if s := e.get(t, id); s.Attempts != 1 {
			t.Fatalf("attempts = %d, want 1", s.Attempts)
		}
	})
}

func TestClaimedMessageIsNotSentByAnotherAttempt(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		id := e.enqueue(t, basic("claimed@example.org"))
		// Another process claimed it and is (or was, before it crashed)
		// talking to the SMTP server, whatever became of its job lease.
		if _, err := db.ExecContext(ctx, `UPDATE mail_outbox SET claim_owner = 'other', claim_until = $1 WHERE id = $2`, t0.Add(10*time.Minute), id); err != nil {
			t.Fatal(err)
		}
		e.runDue(t, 1)
		if n := len(srv.Messages()); n != 0 {
			t.Fatalf("a claimed message was sent by a second attempt")
		}
		if s := e.get(t, id); s.Status != mail.StatusQueued {
			t.Fatalf("status %s, want queued", s.Status)
		}
		e.clk.Advance(11 * time.Minute) // the claim lapsed: its holder is gone
		e.runDue(t, 1)
		if s := e.get(t, id); s.Status != mail.StatusSent || len(srv.Messages()) != 1 {
			t.Fatalf("after the claim lapsed: %s, %d sent; want sent once", s.Status, len(srv.Messages()))
		}
	})
}

// twoHandles opens two connection pools to one fresh database per engine,
// as two Steward processes would.
func twoHandles(t *testing.T, fn func(t *testing.T, a, b *store.DB)) {
	ctx := context.Background()
	open := func(t *testing.T, url, dir string) *store.DB {
		db, err := store.Open(ctx, url, dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	run := func(t *testing.T, url, dir string) {
		a, b := open(t, url, dir), open(t, url, dir)
		if _, err := a.Migrate(ctx, mods()); err != nil {
			t.Fatal(err)
		}
		fn(t, a, b)
	}
	t.Run("sqlite", func(t *testing.T) { run(t, "", t.TempDir()) })
	t.Run("postgres", func(t *testing.T) { run(t, storetest.PostgresURL(t), "") })
}

func TestTwoRunnersDeliverEachMessageOnce(t *testing.T) {
	t.Parallel()
	twoHandles(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		var outboxes []*mail.Outbox
		var runners []*jobs.Runner
		for _, db := range []*store.DB{a, b} {
			r := jobs.NewRunner(db, clock.Real{}, quiet())
			r.SetPollInterval(5 * time.Millisecond)
			d := doortest.New(t, db, clock.Real{}, nil, nil)
			o, err := mail.NewOutbox(db, clock.Real{}, r, d, mail.Config{SMTPURL: srv.URL(), From: "s@site.example"}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			outboxes, runners = append(outboxes, o), append(runners, r)
		}
		const total = 40
		for i := range total {
			m := seed(t, a, basic(fmt.Sprintf("m%d@example.org", i)))[0]
			if _, err := outboxes[i%2].Enqueue(ctx, a, m); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range runners {
			r.Start(ctx, 4)
		}
		deadline := time.Now().Add(60 * time.Second)
		for len(srv.Messages()) < total && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		for _, r := range runners {
			if err := r.Stop(ctx); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]int{}
		for _, m := range srv.Messages() {
			seen[m.To[0]]++
		}
		for to, n := range seen {
			if n != 1 {
				t.Errorf("%s got %d copies", to, n)
			}
		}
		if len(seen) != total {
			t.Fatalf("%d recipients got mail, want %d", len(seen), total)
		}
		var sent int
		a.QueryRowContext(ctx, `SELECT COUNT(*) FROM mail_outbox WHERE status = 'sent' AND attempts = 1`).Scan(&sent)
		if sent != total {
			t.Fatalf("%d messages recorded sent after one attempt, want %d", sent, total)
		}
	})
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL(), RatePerSecond: 20}, quiet())
		for i := range 30 {
			e.enqueue(t, basic(fmt.Sprintf("r%d@example.org", i)))
		}
		start := time.Now()
		e.runDue(t, 30)
		// A burst of 20, then 10 more at 20 per second.
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Fatalf("30 messages at 20/s took %v, want at least 0.4 s", d)
		}
	})
}

func TestSMTPAuthentication(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		srv := mailtest.StartWithAuth(t, "relay-user", "s3cret pass")
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		id := e.enqueue(t, basic("auth@example.org"))
		e.runDue(t, 1)
		if s := e.get(t, id); s.Status != mail.StatusSent {
			t.Fatalf("with credentials: %s (%s), want sent", s.Status, s.LastError)
		}
		bad := strings.Replace(srv.URL(), "s3cret", "wrong", 1)
		e2 := newEnv(t, db, mail.Config{SMTPURL: bad}, quiet())
		id2 := e2.enqueue(t, basic("noauth@example.org"))
		e2.runDue(t, 1)
		s := e2.get(t, id2)
		if s.Status != mail.StatusQueued || s.LastError == "" || strings.Contains(s.LastError, "wrong") {
			t.Fatalf("with a wrong password: %+v; want queued for retry, password not in the error", s)
		}
	})
}

func TestPurge(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		old := e.enqueue(t, basic("old@example.org"))
		e.runDue(t, 1)
		srv.Stop()
		pending := e.enqueue(t, basic("pending@example.org"))
		e.clk.Advance(48 * time.Hour)
		n, err := e.outbox.Purge(ctx, db, e.clk.Now().Add(-24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("Purge = %d, %v; want 1", n, err)
		}
		if _, err := e.outbox.Get(ctx, old); !fault.Is(err, fault.NotFound) {
			t.Errorf("sent message survived purge: %v", err)
		}
		e.get(t, pending)
	})
}

func TestNewOutboxRefusesBadConfig(t *testing.T) {
	t.Parallel()
	db := storetest.SQLite(t, mods())
	r := jobs.NewRunner(db, clock.Real{}, quiet())
	d := doortest.New(t, db, clock.Real{}, nil, nil)
	if _, err := mail.NewOutbox(db, clock.Real{}, r, nil, mail.Config{}, quiet()); err == nil {
		t.Errorf("NewOutbox without a door accepted")
	}
	for _, cfg := range []mail.Config{
		{SMTPURL: "http://host"},
		{SMTPURL: "smtp://user:hunter2@host?tls=maybe"},
		{SMTPURL: "smtp://user:hunter2@host?bogus=1"},
		{SMTPURL: "smtps://user:hunter2@host?tls=none"},
		{SMTPURL: "smtp://host:99999"},
		{SMTPURL: "smtp://host", From: "Eve <eve@example.org>\r\nBcc: x@example.org"},
		{SMTPURL: "smtp://host", From: "not an address"},
		{SMTPURL: "smtp://host", RatePerSecond: -1},
	} {
		_, err := mail.NewOutbox(db, clock.Real{}, r, d, cfg, quiet())
		if err == nil {
			t.Errorf("NewOutbox(%q, from %q) accepted", cfg.SMTPURL, cfg.From)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q shows the password", err)
		}
	}
}

func TestRegistryCoversLiveSchema(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		reg, err := registry.New(policy.Tables(), subject.Tables(), door.Tables(), audit.Tables(), jobs.Tables(), mail.Tables())
		if err != nil {
			t.Fatal(err)
		}
		cols, err := db.Columns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		live := make([]registry.LiveColumn, len(cols))
		for i, c := range cols {
			live[i] = registry.LiveColumn{Table: c.Table, Name: c.Name}
		}
		if problems := reg.Undeclared(live, "schema_migrations"); len(problems) > 0 {
			t.Fatalf("registry does not match the schema:\n%s", strings.Join(problems, "\n"))
		}
		outbox, _ := reg.Table("mail_outbox")
		if to, _ := outbox.Column("to_addr_sealed"); to.Field != "email" || !to.Sensitive || !outbox.Personal() {
			t.Fatalf("outbox address not declared as sealed personal email")
		}
	})
}

// The received message parses with the standard library too: no header
// line is broken or duplicated by the values Steward put in.
func TestHeadersParseCleanly(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		srv := mailtest.Start(t)
		e := newEnv(t, db, mail.Config{SMTPURL: srv.URL()}, quiet())
		m := basic("clean@example.org")
		m.Subject = "Ünïcödé subject with \"quotes\", commas, and =?utf-8?q?fake?= words " + strings.Repeat("long ", 30)
		m.ListID = "Tëst list <t.site.example>"
		m.Headers = map[string]string{"X-Note": "a: b; c=d, =?x?= " + strings.Repeat("w ", 100)}
		e.enqueue(t, m)
		e.runDue(t, 1)
		got := srv.WaitFor(t, mailtest.SentTo("clean@example.org"), time.Second)
		parsed, err := netmail.ReadMessage(bytes.NewReader(got.Raw))
		if err != nil {
			t.Fatal(err)
		}
		if got.Subject != m.Subject {
			t.Errorf("Subject = %q, want %q", got.Subject, m.Subject)
		}
		if n := len(parsed.Header["Bcc"]) + len(parsed.Header["Cc"]); n != 0 {
			t.Errorf("unexpected recipients headers")
		}
		if v := parsed.Header.Get("X-Note"); strings.Join(strings.Fields(v), " ") != strings.Join(strings.Fields(m.Headers["X-Note"]), " ") {
			t.Errorf("X-Note = %q", v)
		}
		dec, err := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("List-Id"))
		if err != nil || dec != "Tëst list <t.site.example>" {
			t.Errorf("List-Id decodes to %q (%v)", dec, err)
		}
		for _, line := range strings.Split(string(got.Raw), "\r\n") {
			if len(line) > 998 {
				t.Errorf("line of %d bytes", len(line))
			}
		}
	})
}
