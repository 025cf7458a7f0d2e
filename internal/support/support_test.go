package support_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"steward/internal/app/services"
	"steward/internal/app/services/servicestest"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/mail"
	"steward/internal/registry"
	"steward/internal/rights"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/support"
)

const deskAddress = "help@journal.example"

type env struct {
	t   testing.TB
	ctx context.Context
	db  *store.DB
	svc *services.Services
	s   *support.Service
	clk *clock.Fake
	log *bytes.Buffer
}

func newEnv(t testing.TB, db *store.DB, policyFile string) *env {
	t.Helper()
	var logs bytes.Buffer
	svc, clk := servicestest.Build(t, db, servicestest.Example(t, policyFile), services.Config{SupportAddress: deskAddress},
		slog.New(slog.NewTextHandler(&logs, nil)))
	return &env{t: t, ctx: context.Background(), db: db, svc: svc, s: svc.Support, clk: clk, log: &logs}
}

func each(t *testing.T, policyFile string, fn func(t *testing.T, e *env)) {
	storetest.Each(t, schema.Migrations(), func(t *testing.T, db *store.DB) { fn(t, newEnv(t, db, policyFile)) })
}

func (e *env) member(email, name string) string {
	e.t.Helper()
	return servicestest.Member(e.t, e.svc, email, name)
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRowContext(e.ctx, query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// mailed returns the last message queued to an address.
func (e *env) mailed(to string) mail.Stored {
	e.t.Helper()
	list, err := e.svc.Outbox.List(e.ctx, mail.AsRecipient, 200)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range list {
		if m.To == to {
			return m
		}
	}
	e.t.Fatalf("nothing mailed to %s", to)
	return mail.Stored{}
}

// stored is every byte of the package's rows and files: what a copy of
// the database and the blob store would hold.
func (e *env) stored() []byte {
	e.t.Helper()
	var all []byte
	for _, t := range support.Tables() {
		all = append(all, storetest.RowBytes(e.t, e.db, `SELECT * FROM `+t.Name)...)
	}
	keys, err := e.svc.Blobs.List(e.ctx, "support/")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, k := range keys {
		rc, err := e.svc.Blobs.Get(e.ctx, k)
		if err != nil {
			e.t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		all = append(all, b...)
	}
	return all
}

func table(t testing.TB, name string) registry.Table {
	for _, tb := range support.Tables() {
		if tb.Name == name {
			return tb
		}
	}
	t.Fatalf("no table %s", name)
	return registry.Table{}
}

// wav is a short real WAV file (silence).
func wav(t testing.TB) []byte {
	var b bytes.Buffer
	data := make([]byte, 8000)
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+len(data)))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(8000), uint16(1), uint16(8)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

// message builds a mail with a text part and, when attach is set, a file.
func message(from, to, subject, text string, attach []byte) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%d@mail.example>\r\nDate: Tue, 10 Mar 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n",
		from, to, subject, time.Now().UnixNano())
	if attach == nil {
		fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", text)
		return []byte(b.String())
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=BOUNDARY\r\n\r\n--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(text + "\r\n--BOUNDARY\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	b.WriteString(base64.StdEncoding.EncodeToString(attach) + "\r\n--BOUNDARY--\r\n")
	return []byte(b.String())
}

func (e *env) deliver(to string, raw []byte) error {
	e.clk.Advance(time.Second)
	return e.s.Deliver(e.ctx, []string{to}, bytes.NewReader(raw), e.s.MailLimits(""))
}

var supportStaff = support.Staff{ID: "staffsupport1", Role: "support"}
var qualityStaff = support.Staff{ID: "staffquality1", Role: "quality"}

// TestPromiseJ4_SupportRecordsArePersonalDataWithRetention: a request, its
// exchanges in both directions and its files are the requester's personal
// data: sealed at rest (no planted word in any row or file), in their
// export with the files, erasable one request at a time (rows, files and
// keys go together), and each table's category has the retention the
// policy gives support records.
func TestPromiseJ4_SupportRecordsArePersonalDataWithRetention(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Example")
		th, err := e.s.Open(e.ctx, ann, "Planted-title-5c1e", "Planted-text-9a2b: my invoice is wrong",
			[]support.Upload{{Name: "../../etc/invoice.txt", Body: strings.NewReader("Planted-file-77d0")}})
		if err != nil {
			t.Fatal(err)
		}
		if th.Status != support.StatusOpen || len(th.Messages) != 1 || len(th.Messages[0].Files) != 1 || th.Messages[0].Files[0].Name != "invoice.txt" {
			t.Fatalf("opened: %+v", th)
		}
		e.clk.Advance(time.Minute)
		th, err = e.s.Answer(e.ctx, supportStaff, th.ID, "Planted-answer-3e4f: fixed", nil)
		if err != nil {
			t.Fatal(err)
		}
		if th.Status != support.StatusAnswered || len(th.Messages) != 2 || th.Messages[1].Direction != "out" {
			t.Fatalf("answered: %+v", th)
		}
		m := e.mailed("ann@example.org")
		if m.Headers["Reply-To"] != e.s.ReplyAddress(th.ID) || !strings.HasPrefix(m.Headers["Reply-To"], "help+") || !strings.Contains(m.Text, "Planted-answer-3e4f") {
			t.Errorf("answer mail: reply-to %q, text %q", m.Headers["Reply-To"], m.Text)
		}
		all := e.stored()
		for _, planted := range []string{"Planted-title-5c1e", "Planted-text-9a2b", "Planted-file-77d0", "Planted-answer-3e4f", "invoice.txt"} {
			if bytes.Contains(all, []byte(planted)) {
				t.Errorf("%q is stored in plaintext", planted)
			}
		}
		// The export: every table with its values opened, and the file.
		h := e.s.Holder()
		var exported []byte
		for _, name := range []string{"support_requests", "support_messages", "support_files"} {
			rows, err := h.Export(e.ctx, e.db, table(t, name), []string{ann})
			if err != nil {
				t.Fatal(err)
			}
			exported = fmt.Appendf(exported, "%v", rows)
		}
		for _, want := range []string{"Planted-title-5c1e", "Planted-text-9a2b", "Planted-answer-3e4f", "invoice.txt"} {
			if !bytes.Contains(exported, []byte(want)) {
				t.Errorf("export lacks %q: %s", want, exported)
			}
		}
		files, err := h.Files(e.ctx, ann)
		if err != nil || len(files) != 1 {
			t.Fatalf("files: %+v, %v", files, err)
		}
		rc, err := files[0].Open()
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(rc); string(b) != "Planted-file-77d0" {
			t.Errorf("exported file holds %q", b)
		}
		rc.Close()
		// Retention: the policy gives each table's category one.
		for _, tb := range support.Tables() {
			for _, c := range tb.Categories(e.svc.Policy.Policy.CategoryOfField) {
				if r, ok := e.svc.Policy.Policy.Retention(c); !ok || !r.IsSet() {
					t.Errorf("%s holds %s, which has no retention", tb.Name, c)
				}
			}
		}
		// Erasing the support category through the rights engine — its
		// real order of tables, each in its own transaction — takes every
		// row, file and key of Ann's requests, and nothing of Bob's.
		bob := e.member("bob@example.org", "Bob")
		bobs, err := e.s.Open(e.ctx, bob, "Bob's", "Bob's question",
			[]support.Upload{{Name: "b.txt", Body: strings.NewReader("bob file")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.Open(e.ctx, ann, "Second", "another question", nil); err != nil {
			t.Fatal(err)
		}
		r, err := e.svc.Rights.File(e.ctx, rights.Requester{SubjectID: ann, SessionID: "s", Reauthenticate: rights.Reauthenticated},
			rights.Filing{Type: rights.Erasure, Scope: "category", Categories: []string{e.svc.Policy.Policy.CategoryOfField(support.FieldMessage)}})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := e.svc.Jobs.RunDue(e.ctx); err != nil {
				t.Fatal(err)
			}
		}
		if r, err = e.svc.Rights.Get(e.ctx, r.ID); err != nil || r.Status != "completed" {
			t.Fatalf("the erasure: %+v, %v", r, err)
		}
		for _, table := range []string{"support_requests", "support_messages", "support_files"} {
			if n := e.count(`SELECT COUNT(*) FROM `+table+` WHERE subject_id = $1`, ann); n != 0 {
				t.Errorf("%d of Ann's rows left in %s", n, table)
			}
			if n := e.count(`SELECT COUNT(*) FROM `+table+` WHERE subject_id = $1`, bob); n == 0 {
				t.Errorf("Bob's rows in %s went too", table)
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM item_keys WHERE subject_id = $1 AND destroyed_at IS NULL`, ann); n != 0 {
			t.Errorf("%d of Ann's request keys live", n)
		}
		if keys, _ := e.svc.Blobs.List(e.ctx, "support/"+strings.ToLower(ann)+"/"); len(keys) != 0 {
			t.Errorf("Ann's files after the erasure: %v", keys)
		}
		if got, err := e.s.ThreadFor(e.ctx, bob, bobs.ID); err != nil || len(got.Messages[0].Files) != 1 {
			t.Errorf("Bob's request: %+v, %v", got, err)
		}
	})
}

// TestPromiseJ10_QualityReviewerReadsRecordingsAndNothingElse: a recorded
// call is kept only with the time the caller was told; a quality reviewer
// (whose only purpose is quality-training) reads the exchanges and the
// recording, and is refused — and the refusal audited — the requester's
// name and address; a role whose purposes do not reach support records
// reads nothing.
func TestPromiseJ10_QualityReviewerReadsRecordingsAndNothingElse(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann Example")
		th, err := e.s.Open(e.ctx, ann, "Call about my order", "I will call you", nil)
		if err != nil {
			t.Fatal(err)
		}
		rec := support.Recording{Notes: "called about the order", Upload: support.Upload{Name: "call.wav", Body: bytes.NewReader(wav(t))}}
		if _, err := e.s.AddRecording(e.ctx, supportStaff, th.ID, rec); !fault.Is(err, fault.Invalid) {
			t.Fatalf("a recording without the caller's notice: %v, want refused", err)
		}
		rec.NoticeGivenAt = e.clk.Now().Add(-5 * time.Minute)
		rec.Body = strings.NewReader("not audio at all, just text")
		if _, err := e.s.AddRecording(e.ctx, supportStaff, th.ID, rec); !fault.Is(err, fault.Unsupported) {
			t.Fatalf("a recording that is not audio: %v, want refused", err)
		}
		rec.Body = bytes.NewReader(wav(t))
		if _, err := e.s.AddRecording(e.ctx, supportStaff, th.ID, rec); err != nil {
			t.Fatal(err)
		}
		got, err := e.s.StaffThread(e.ctx, qualityStaff, th.ID)
		if err != nil {
			t.Fatal(err)
		}
		var recording support.File
		for _, m := range got.Messages {
			for _, f := range m.Files {
				if f.Kind == support.FileRecording {
					recording = f
				}
			}
		}
		if recording.ID == "" || recording.Mime != "audio/wav" || !recording.NoticeAt.Equal(rec.NoticeGivenAt.UTC()) {
			t.Fatalf("the reviewer's thread: %+v", got)
		}
		rc, _, err := e.s.OpenFile(e.ctx, support.Reader{Staff: &qualityStaff}, recording.ID)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(rc); !bytes.Equal(b, wav(t)) {
			t.Error("the recording the reviewer hears is not the one recorded")
		}
		rc.Close()
		_, err = e.s.Requester(e.ctx, qualityStaff, th.ID)
		den, ok := door.IsDenied(err)
		if !ok || den.Purpose != "quality-training" {
			t.Fatalf("the reviewer asked for the requester: %v, want a denial for quality-training", err)
		}
		if n := e.count(`SELECT COUNT(*) FROM audit_log WHERE action = 'guard.denied' AND subject_id = $1 AND detail LIKE '%quality-training%'`, ann); n == 0 {
			t.Error("the reviewer's refusal is not in the audit log")
		}
		p, err := e.s.Requester(e.ctx, supportStaff, th.ID)
		if err != nil || p.Email != "ann@example.org" || p.Name != "Ann Example" {
			t.Errorf("support staff read the requester: %+v, %v", p, err)
		}
		// An analyst's purposes do not reach support records at all.
		if _, err := e.s.StaffThread(e.ctx, support.Staff{ID: "an1", Role: "analyst"}, th.ID); !fault.Is(err, fault.PurposeDenied) {
			t.Errorf("an analyst read a support thread: %v", err)
		}
		if n := e.count(`SELECT COUNT(*) FROM audit_log WHERE action = 'support.read' AND subject_id = $1 AND actor = $2`, ann, "staff:"+qualityStaff.ID); n != 1 {
			t.Errorf("%d audited reads by the reviewer, want 1", n)
		}
	})
}

// TestPromiseM6_RequestsAreKeptOnRecord: Mixi keeps a record of the
// requests people send (by mail, from a member) with the answers, readable
// by its support staff for the purpose their role holds; it keeps no
// recordings, which its policy does not declare.
func TestPromiseM6_RequestsAreKeptOnRecord(t *testing.T) {
	each(t, "mixi.yaml", func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		// Without the relay's word for the sender's domain, a From header
		// alone opens nothing in Ann's name: it waits for her link.
		if err := e.deliver(deskAddress, message("Ann <ann@example.org>", deskAddress, "Forged?", "From anyone", nil)); err != nil {
			t.Fatal(err)
		}
		if mine, _ := e.s.Mine(e.ctx, ann); len(mine) != 0 {
			t.Fatalf("an unauthenticated mail opened %d requests in Ann's name", len(mine))
		}
		vouched := "Authentication-Results: mx.test; dmarc=pass header.from=example.org; spf=pass; dkim=pass\r\n" +
			string(message("Ann <ann@example.org>", deskAddress, "A suggestion", "Please add dark mode.", nil))
		e.clk.Advance(time.Second)
		if err := e.s.Deliver(e.ctx, []string{deskAddress}, strings.NewReader(vouched), e.s.MailLimits("mx.test")); err != nil {
			t.Fatal(err)
		}
		mine, err := e.s.Mine(e.ctx, ann)
		if err != nil || len(mine) != 1 || mine[0].Title != "A suggestion" || mine[0].Channel != support.ChannelMail {
			t.Fatalf("Ann's requests: %+v, %v", mine, err)
		}
		got, err := e.s.StaffThread(e.ctx, supportStaff, mine[0].ID)
		if err != nil || got.Messages[0].Text != "Please add dark mode." {
			t.Fatalf("staff thread: %+v, %v", got, err)
		}
		rec := support.Recording{NoticeGivenAt: e.clk.Now(), Upload: support.Upload{Name: "c.wav", Body: bytes.NewReader(wav(t))}}
		if _, err := e.s.AddRecording(e.ctx, supportStaff, mine[0].ID, rec); !fault.Is(err, fault.Invalid) {
			t.Errorf("a recording under a policy that declares none: %v", err)
		}
	})
}

// TestMailThreadsOnlyFromTheRequester: a reply to a request's address joins
// the request with its attachment and without the quoted mail; a forged
// sender, a reply address of another request, a forged signature, broken
// MIME and HTML with script are each refused or cleaned, audited, and
// nothing is half-stored.
func TestMailThreadsOnlyFromTheRequester(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		bob := e.member("bob@example.org", "Bob")
		th, err := e.s.Open(e.ctx, ann, "Login trouble", "I cannot log in", nil)
		if err != nil {
			t.Fatal(err)
		}
		bobs, err := e.s.Open(e.ctx, bob, "Bob's", "Bob's question", nil)
		if err != nil {
			t.Fatal(err)
		}
		reply := e.s.ReplyAddress(th.ID)
		if err := e.deliver(reply, message("ann@example.org", reply, "Re: Login trouble", "Here is the log.\r\n\r\nOn Tue, Support wrote:\r\n> what happens?", []byte("log line 1"))); err != nil {
			t.Fatal(err)
		}
		got, err := e.s.ThreadFor(e.ctx, ann, th.ID)
		if err != nil || len(got.Messages) != 2 || got.Messages[1].Text != "Here is the log." || got.Messages[1].Channel != support.ChannelMail ||
			len(got.Messages[1].Files) != 1 {
			t.Fatalf("thread after the reply: %+v, %v", got, err)
		}
		before := e.count(`SELECT COUNT(*) FROM support_messages`)
		refusals := e.count(`SELECT COUNT(*) FROM audit_log WHERE action = 'support.mail_refused'`)
		bad := []struct {
			name string
			to   string
			raw  []byte
		}{
			{"forged sender with a valid reply address", reply, message("mallory@evil.example", reply, "Re", "let me in", nil)},
			{"the requester of another request", e.s.ReplyAddress(bobs.ID), message("ann@example.org", e.s.ReplyAddress(bobs.ID), "Re", "peek", nil)},
			{"a forged signature", strings.Replace(reply, ".", ".0", 1), message("ann@example.org", strings.Replace(reply, ".", ".0", 1), "Re", "x", nil)},
			{"broken MIME", reply, []byte("From: ann@example.org\r\nTo: " + reply + "\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nunterminated")},
			{"no sender", reply, []byte("To: " + reply + "\r\nSubject: x\r\n\r\nhello\r\n")},
		}
		for _, c := range bad {
			err := e.deliver(c.to, c.raw)
			if c := fault.CodeOf(err); c == fault.Internal {
				t.Errorf("%s: %v, want a refusal with a reason", c, err)
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM support_messages`); n != before {
			t.Errorf("refused mail stored %d exchanges", n-before)
		}
		if n := e.count(`SELECT COUNT(*) FROM audit_log WHERE action = 'support.mail_refused'`) - refusals; n != len(bad) {
			t.Errorf("%d refusals audited, want %d", n, len(bad))
		}
		html := "From: ann@example.org\r\nTo: " + reply + "\r\nSubject: Re\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello <b>there</b></p><script>steal()</script>\r\n"
		if err := e.deliver(reply, []byte(html)); err != nil {
			t.Fatal(err)
		}
		got, _ = e.s.ThreadFor(e.ctx, ann, th.ID)
		last := got.Messages[len(got.Messages)-1].Text
		if strings.Contains(last, "steal") || strings.Contains(last, "<") || !strings.Contains(last, "Hello there") {
			t.Errorf("HTML mail kept as %q", last)
		}
		if strings.Contains(e.log.String(), "ann@example.org") {
			t.Error("a sender's address is in the log")
		}
	})
}

// TestStrangersAreHeldUntilTheyConfirm: mail or a web request from an
// address the desk does not know is held sealed, under a key of its own;
// the link mailed to the address releases it into a request; what nobody
// confirms is gone after its time, key and file included.
func TestStrangersAreHeldUntilTheyConfirm(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		raw := message("Carol <carol@example.net>", deskAddress, "Planted-held-6b2d", "Planted-held-body-1a9c", []byte("Planted-held-file"))
		if err := e.deliver(deskAddress, raw); err != nil {
			t.Fatal(err)
		}
		if n := e.count(`SELECT COUNT(*) FROM support_requests`); n != 0 {
			t.Fatalf("a stranger's mail opened %d requests before they confirmed", n)
		}
		all := e.stored()
		for _, planted := range []string{"Planted-held-6b2d", "Planted-held-body-1a9c", "Planted-held-file", "carol@example.net"} {
			if bytes.Contains(all, []byte(planted)) {
				t.Errorf("%q is held in plaintext", planted)
			}
		}
		m := e.mailed("carol@example.net")
		i := strings.Index(m.Text, "/support/confirm?token=")
		if i < 0 {
			t.Fatalf("no confirmation link in %q", m.Text)
		}
		token := strings.Fields(m.Text[i+len("/support/confirm?token="):])[0]
		if _, err := e.s.Confirm(e.ctx, token+"x"); !fault.Is(err, fault.NotFound) {
			t.Errorf("a forged link: %v", err)
		}
		// Two confirmations at once (a double click) release it once.
		owners := make(chan string, 2)
		for range 2 {
			go func() {
				o, err := e.s.Confirm(e.ctx, token)
				if err != nil && !fault.Is(err, fault.NotFound) {
					t.Error(err)
				}
				owners <- o
			}()
		}
		owner := <-owners
		if o := <-owners; owner == "" {
			owner = o
		}
		mine, err := e.s.Mine(e.ctx, owner)
		if err != nil || len(mine) != 1 || mine[0].Title != "Planted-held-6b2d" {
			t.Fatalf("released: %+v, %v", mine, err)
		}
		th, _ := e.s.ThreadFor(e.ctx, owner, mine[0].ID)
		if len(th.Messages) != 1 || len(th.Messages[0].Files) != 1 {
			t.Errorf("released thread: %+v", th)
		}
		if n := e.count(`SELECT COUNT(*) FROM support_quarantine`); n != 0 {
			t.Errorf("%d held rows after the release", n)
		}
		if _, err := e.s.Confirm(e.ctx, token); !fault.Is(err, fault.NotFound) {
			t.Errorf("a used link: %v", err)
		}
		// Carol is known now: her next mail, vouched for by the relay,
		// opens a request at once.
		again := "Authentication-Results: mx.test; dmarc=pass header.from=example.net\r\n" + string(message("carol@example.net", deskAddress, "Again", "more", nil))
		if err := e.s.Deliver(e.ctx, []string{deskAddress}, strings.NewReader(again), e.s.MailLimits("mx.test")); err != nil {
			t.Fatal(err)
		}
		if mine, _ := e.s.Mine(e.ctx, owner); len(mine) != 2 {
			t.Errorf("a known sender's mail: %d requests", len(mine))
		}
		// A web request from someone not signed in, never confirmed.
		if err := e.s.Submit(e.ctx, "dave@example.net", "Help", "please", netip.Addr{}); err != nil {
			t.Fatal(err)
		}
		if err := e.s.Submit(e.ctx, "dave@example.net", "Help again", "please!", netip.Addr{}); err != nil {
			t.Fatal(err)
		}
		if n := e.count(`SELECT COUNT(*) FROM support_quarantine WHERE mailed_at IS NOT NULL`); n != 1 {
			t.Errorf("%d confirmation mails for two requests within the hour, want 1", n)
		}
		// The public form is limited per client network.
		client := netip.MustParseAddr("198.51.100.9")
		var limited error
		for i := range 6 {
			limited = e.s.Submit(e.ctx, fmt.Sprintf("flood%d@example.net", i), "Spam", "spam", client)
		}
		if !fault.Is(limited, fault.RateLimited) {
			t.Errorf("the sixth request from one network in a minute: %v, want rate limited", limited)
		}
		e.clk.Advance(8 * 24 * time.Hour)
		n, err := e.s.Prune(e.ctx)
		if err != nil || n != 7 {
			t.Fatalf("prune: %d, %v", n, err)
		}
		if n := e.count(`SELECT COUNT(*) FROM item_keys WHERE subject_id = '~quarantine' AND destroyed_at IS NULL`); n != 0 {
			t.Errorf("%d held keys live after the prune", n)
		}
		if keys, _ := e.svc.Blobs.List(e.ctx, "support/quarantine/"); len(keys) != 0 {
			t.Errorf("held files after the prune: %v", keys)
		}
	})
}

// TestBadInputLosesNothing: requests with bad input are refused with a
// clear error, and nothing of them is stored.
func TestBadInputLosesNothing(t *testing.T) {
	each(t, "jmir.yaml", func(t *testing.T, e *env) {
		ann := e.member("ann@example.org", "Ann")
		cases := []struct {
			name, title, text string
		}{
			{"empty title", " ", "x"},
			{"title too long", strings.Repeat("t", 500), "x"},
			{"two-line title", "a\nb", "x"},
			{"empty text", "t", ""},
			{"control characters", "t", "a\x00b"},
			{"invalid UTF-8", "t", "a\xffb"},
		}
		for _, c := range cases {
			if _, err := e.s.Open(e.ctx, ann, c.title, c.text, nil); !fault.Is(err, fault.Invalid) {
				t.Errorf("%s: %v", c.name, err)
			}
		}
		big := support.Upload{Name: "big.bin", Body: io.LimitReader(zeros{}, 26<<20)}
		if _, err := e.s.Open(e.ctx, ann, "t", "x", []support.Upload{{Name: "a.txt", Body: strings.NewReader("a")}, big}); !fault.Is(err, fault.TooLarge) {
			t.Errorf("a file over the limit: %v", err)
		}
		if _, err := e.s.Open(e.ctx, ann, "t", "x", []support.Upload{{Name: "logs.zip", Body: bytes.NewReader(zipOfZips(t))}}); fault.CodeOf(err) == fault.Internal || err == nil {
			t.Errorf("a zip of zips: %v, want refused", err)
		}
		if n := e.count(`SELECT COUNT(*) FROM support_requests`); n != 0 {
			t.Errorf("%d requests stored from bad input", n)
		}
		if keys, _ := e.svc.Blobs.List(e.ctx, "support/"); len(keys) != 0 {
			t.Errorf("files stored from bad input: %v", keys)
		}
		th, err := e.s.Open(e.ctx, ann, "t", "x", nil)
		if err != nil {
			t.Fatal(err)
		}
		bob := e.member("bob@example.org", "Bob")
		if _, err := e.s.ThreadFor(e.ctx, bob, th.ID); !fault.Is(err, fault.NotFound) {
			t.Errorf("another member's request: %v", err)
		}
		if _, err := e.s.Reply(e.ctx, bob, th.ID, "mine now", nil); !fault.Is(err, fault.NotFound) {
			t.Errorf("a reply to another member's request: %v", err)
		}
	})
}

// zipOfZips is a zip archive holding another zip archive.
func zipOfZips(t testing.TB) []byte {
	var inner, outer bytes.Buffer
	zw := zip.NewWriter(&inner)
	w, _ := zw.Create("a.txt")
	w.Write([]byte("hello"))
	zw.Close()
	zw = zip.NewWriter(&outer)
	w, _ = zw.Create("inner.zip")
	w.Write(inner.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return outer.Bytes()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
