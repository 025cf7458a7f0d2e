package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/support"
)

// formFile is a file of a multipart form.
type formFile struct {
	field, name string
	data        []byte
}

// multipartForm builds a multipart/form-data body: the text fields first,
// in order, as a browser sends a form whose inputs come before its file
// inputs, then the files.
func multipartForm(t *testing.T, fields [][2]string, files ...formFile) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		w, err := mw.CreateFormFile(f.field, f.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), mw.FormDataContentType()
}

// wavBytes is a tenth of a second of a 440 Hz tone, as a PCM WAV file.
func wavBytes() []byte {
	const rate, n = 8000, 800
	data := make([]byte, 2*n)
	for i := range n {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/rate))
		binary.LittleEndian.PutUint16(data[2*i:], uint16(v))
	}
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	binary.Write(&b, le, uint32(36+len(data)))
	b.WriteString("WAVEfmt ")
	// PCM, mono, 16 bits.
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(rate), uint32(2 * rate), uint16(2), uint16(16)} {
		binary.Write(&b, le, v)
	}
	b.WriteString("data")
	binary.Write(&b, le, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

// supportThread is what the support routes answer for a thread.
type supportThread struct {
	ID, Title, Status, Channel string
	Messages                   []struct {
		ID, Direction, Channel, Text string
		Files                        []struct {
			ID, Kind, Name, Mime string
			Size                 int64
		}
	}
}

// file finds a file of the thread by kind and name.
func (th supportThread) file(t *testing.T, kind, name string) string {
	t.Helper()
	for _, m := range th.Messages {
		for _, f := range m.Files {
			if f.Kind == kind && f.Name == name {
				return f.ID
			}
		}
	}
	t.Fatalf("no %s %q in the thread: %+v", kind, name, th)
	return ""
}

const supportAddress = "support@steward.test"

// deskListener starts the support desk's SMTP listener on a free port,
// wired to the desk as the app wires it, and returns its address.
func (e *env) deskListener(t *testing.T) string {
	t.Helper()
	desk := e.svc.Support
	l := mail.NewListener(mail.ListenerConfig{Domain: "steward.test"},
		func(_ context.Context, env mail.Envelope) error { return desk.Accepts(env.Rcpt[len(env.Rcpt)-1]) },
		func(ctx context.Context, env mail.Envelope, raw io.Reader) error {
			return desk.Deliver(ctx, env.Rcpt, raw, desk.MailLimits(""))
		})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go l.Serve(ln)
	t.Cleanup(func() { l.Close() })
	return ln.Addr().String()
}

// openOnPage opens a request as a member does in a browser: the
// multipart form of /account/support. It returns the new request's id.
func (e *env) openOnPage(t *testing.T, c *http.Client, title, text string, files ...formFile) string {
	t.Helper()
	body, ctype := multipartForm(t, [][2]string{{"title", title}, {"text", text}}, files...)
	r := e.do(c, "POST", "/account/support", body, "Content-Type", ctype, "Accept", "text/html")
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/account/support/r_") {
		t.Fatalf("open a request on the page: %d %q %s", r.StatusCode, loc, r.body)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(loc, "/account/support/"), "?")
	return id
}

var replyToRE = regexp.MustCompile(`support\+r_[a-z0-9]+\.[0-9a-f]+@steward\.test`)

// The support desk end to end over HTTP, with jmir.yaml on both engines:
// a member opens a request on the web with a file; support staff see it in
// the queue and answer from the console, and the answer is mailed from
// the request's reply address; the member replies by mail, with an
// attachment, through the desk's SMTP listener, and the reply joins the
// thread; staff attach a recorded call, which needs the time the caller
// was told of the recording; a quality reviewer reads the thread and the
// recording and is refused the requester's identity, the refusal
// audited; the member's portability export holds the thread and its files.
func TestPromiseJ4_J10_SupportDeskEndToEnd(t *testing.T) {
	storetest.Each(t, modules(), func(t *testing.T, db *store.DB) { supportEndToEnd(t, db) })
}

func supportEndToEnd(t *testing.T, db *store.DB) {
	ctx := context.Background()
	e := newEnv(t, db, envOptions{policyFile: "jmir.yaml", smtp: true, supportAddress: supportAddress})
	ann, _ := e.member("ann@example.org", "Ann Example")

	// J4: a member opens a request on the web, with a file.
	shot := pngBytes(t)
	id := e.openOnPage(t, ann, "Cannot submit my manuscript", "The upload button does nothing.", formFile{"files", "screen.png", shot})
	var th supportThread
	e.do(ann, "GET", "/api/v1/me/support/"+id, nil).json(t, &th)
	if th.Title != "Cannot submit my manuscript" || th.Status != "open" || len(th.Messages) != 1 {
		t.Fatalf("the member's thread: %+v", th)
	}
	r := e.do(ann, "GET", "/api/v1/me/support-files/"+th.file(t, "attachment", "screen.png"), nil)
	if r.StatusCode != http.StatusOK || !bytes.Equal(r.body, shot) || r.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("the member's own file: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if cd := r.Header.Get("Content-Disposition"); cd != `attachment; filename=screen.png` {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("a download is sent without nosniff and a sandbox: %v", r.Header)
	}

	// Support staff find it in the queue and answer from the console.
	desk, _ := e.staff("desk@example.org", "support")
	var q struct {
		Items []struct{ ID, Title, Status string }
	}
	e.do(desk, "GET", "/api/v1/admin/support?status=open", nil).json(t, &q)
	if len(q.Items) != 1 || q.Items[0].ID != id || q.Items[0].Title != "Cannot submit my manuscript" {
		t.Fatalf("the queue: %+v", q)
	}
	r = e.do(desk, "GET", "/admin/support", nil, "Accept", "text/html")
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), `href="/admin/support/`+id+`"`) {
		t.Fatalf("the queue page: %d %s", r.StatusCode, r.body)
	}
	r = e.do(desk, "GET", "/admin/support/"+id, nil, "Accept", "text/html")
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "ann@example.org") || !strings.Contains(string(r.body), "Ann Example") {
		t.Fatalf("support staff see the requester on the request's page: %d %s", r.StatusCode, r.body)
	}
	body, ctype := multipartForm(t, [][2]string{{"text", "Please send us a screenshot of the error."}})
	r = e.do(desk, "POST", "/admin/support/"+id+"/answers", body, "Content-Type", ctype, "Accept", "text/html")
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("answer from the console: %d %s", r.StatusCode, r.body)
	}
	e.runJobs(t)
	answer := e.smtp.WaitFor(t, func(m mailtest.Received) bool {
		return mailtest.SentTo("ann@example.org")(m) && strings.HasPrefix(m.Subject, "Re: Cannot submit my manuscript")
	}, 5*time.Second)
	replyTo := replyToRE.FindString(answer.Header.Get("Reply-To"))
	if replyTo == "" || !strings.Contains(answer.Text, "Please send us a screenshot") {
		t.Fatalf("the mailed answer: Reply-To %q, text %q", answer.Header.Get("Reply-To"), answer.Text)
	}

	// The member replies by mail, with an attachment, through the desk's
	// SMTP listener; the reply joins the thread.
	pdf := []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	raw := "From: Ann Example <ann@example.org>\r\nTo: " + replyTo + "\r\nSubject: Re: " + answer.Subject + "\r\n" +
		"Date: Mon, 30 Nov 2026 12:00:00 +0000\r\nMessage-ID: <reply-1@example.org>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHere is the error report you asked for.\r\n\r\n" +
		"On Mon, 30 Nov 2026, Support wrote:\r\n> Please send us a screenshot of the error.\r\n" +
		"--b1\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString(pdf) + "\r\n--b1--\r\n"
	listener := e.deskListener(t)
	e.clock.Advance(time.Minute) // the reply comes after the answer
	if err := smtp.SendMail(listener, nil, "ann@example.org", []string{replyTo}, []byte(raw)); err != nil {
		t.Fatalf("reply by mail: %v", err)
	}
	// Mail to an address the desk does not serve is refused at RCPT.
	if err := smtp.SendMail(listener, nil, "ann@example.org", []string{"nobody@steward.test"}, []byte(raw)); err == nil ||
		!strings.Contains(err.Error(), "550") {
		t.Errorf("mail to another address: %v, want 550", err)
	}
	e.do(ann, "GET", "/api/v1/me/support/"+id, nil).json(t, &th)
	last := th.Messages[len(th.Messages)-1]
	if len(th.Messages) != 3 || last.Channel != "mail" || last.Direction != "in" || last.Text != "Here is the error report you asked for." {
		t.Fatalf("the thread after the mailed reply: %+v", th)
	}
	r = e.do(ann, "GET", "/api/v1/me/support-files/"+th.file(t, "attachment", "report.pdf"), nil)
	if r.StatusCode != http.StatusOK || !bytes.Equal(r.body, pdf) || r.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("the mailed attachment: %d %s %q", r.StatusCode, r.Header.Get("Content-Type"), r.body)
	}

	// J10: a recorded call, only with the time the caller was told it is
	// recorded.
	wav := wavBytes()
	body, ctype = multipartForm(t, [][2]string{{"notes", "Walked through the upload form."}, {"notice_given_at", ""}},
		formFile{"recording", "call.wav", wav})
	r = e.do(desk, "POST", "/admin/support/"+id+"/recordings", body, "Content-Type", ctype, "Accept", "text/html")
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.body), "told the call is recorded") {
		t.Fatalf("a recording without the notice on the console: %d %s", r.StatusCode, r.body)
	}
	body, ctype = multipartForm(t, [][2]string{{"notes", "Walked through the upload form."}}, formFile{"recording", "call.wav", wav})
	assertProblem(t, e.do(desk, "POST", "/api/v1/admin/support/"+id+"/recordings", body, "Content-Type", ctype), http.StatusBadRequest, "invalid")
	notice := e.clock.Now().Add(-time.Hour).Format(time.RFC3339)
	body, ctype = multipartForm(t, [][2]string{{"notes", "Walked through the upload form."}, {"notice_given_at", notice}},
		formFile{"recording", "call.wav", wav})
	r = e.do(desk, "POST", "/api/v1/admin/support/"+id+"/recordings", body, "Content-Type", ctype)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("attach a recording: %d %s", r.StatusCode, r.body)
	}
	r.json(t, &th)
	recID := th.file(t, "recording", "call.wav")

	// A quality reviewer reads the thread and listens to the recording,
	// and is refused who the requester is.
	qa, _ := e.staff("qa@example.org", "quality")
	qaID := annID(t, e, qa)
	var qt supportThread
	r = e.do(qa, "GET", "/api/v1/admin/support/"+id, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("the reviewer reads the thread: %d %s", r.StatusCode, r.body)
	}
	r.json(t, &qt)
	if qt.file(t, "recording", "call.wav") != recID || len(qt.Messages) != 4 {
		t.Errorf("the reviewer's thread: %+v", qt)
	}
	if strings.Contains(string(r.body), "ann@example.org") || strings.Contains(string(r.body), "Ann Example") {
		t.Errorf("the reviewer's thread names the requester: %s", r.body)
	}
	r = e.do(qa, "GET", "/api/v1/admin/support-files/"+recID, nil)
	if r.StatusCode != http.StatusOK || !bytes.Equal(r.body, wav) || r.Header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("the reviewer downloads the recording: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	assertProblem(t, e.do(qa, "GET", "/api/v1/admin/support/"+id+"/requester", nil), http.StatusForbidden, "purpose_denied")
	entries, err := e.audit.List(ctx, 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	denied := false
	for _, en := range entries {
		if en.Action == "guard.denied" && en.Actor == "staff:"+qaID && en.Detail["purpose"] == "quality-training" {
			denied = true
		}
	}
	if !denied {
		t.Errorf("the reviewer's refused read of the requester is not in the audit log")
	}
	r = e.do(qa, "GET", "/admin/support/"+id, nil, "Accept", "text/html")
	page := string(r.body)
	if r.StatusCode != http.StatusOK || !strings.Contains(page, `href="/admin/support/files/`+recID+`"`) {
		t.Fatalf("the reviewer's page: %d %s", r.StatusCode, page)
	}
	if strings.Contains(page, "ann@example.org") || strings.Contains(page, "Ann Example") || strings.Contains(page, "/answers") {
		t.Errorf("the reviewer's page names the requester or offers to answer: %s", page)
	}
	if r := e.do(qa, "GET", "/admin/support/files/"+recID, nil); r.StatusCode != http.StatusOK || !bytes.Equal(r.body, wav) {
		t.Errorf("the reviewer's page download: %d", r.StatusCode)
	}
	var who support.Person
	e.do(desk, "GET", "/api/v1/admin/support/"+id+"/requester", nil).json(t, &who)
	if who.Email != "ann@example.org" || who.Name != "Ann Example" {
		t.Errorf("support staff read the requester as %+v", who)
	}

	// The member's portability export holds the thread and its files.
	var port requestView
	e.do(ann, "POST", "/api/v1/me/requests", map[string]any{"type": "portability", "password": testPassword}).json(t, &port)
	e.runJobs(t)
	e.do(ann, "GET", "/api/v1/me/requests/"+port.ID, nil).json(t, &port)
	if port.Status != "completed" || port.Download == "" {
		t.Fatalf("portability: %+v", port)
	}
	z := unzipBytes(t, e.do(ann, "GET", port.Download, nil).body)
	found := map[string]bool{}
	for name, data := range z {
		for _, want := range []string{"Cannot submit my manuscript", "The upload button does nothing.", "Here is the error report you asked for.",
			"Please send us a screenshot of the error."} {
			if strings.Contains(string(data), want) {
				found[want] = true
			}
		}
		switch {
		case strings.HasPrefix(name, "files/") && strings.HasSuffix(name, "screen.png"):
			found["screen.png"] = bytes.Equal(data, shot)
		case strings.HasPrefix(name, "files/") && strings.HasSuffix(name, "report.pdf"):
			found["report.pdf"] = bytes.Equal(data, pdf)
		case strings.HasPrefix(name, "files/") && strings.HasSuffix(name, "call.wav"):
			found["call.wav"] = bytes.Equal(data, wav)
		}
	}
	for _, want := range []string{"Cannot submit my manuscript", "The upload button does nothing.", "Here is the error report you asked for.",
		"Please send us a screenshot of the error.", "screen.png", "report.pdf", "call.wav"} {
		if !found[want] {
			t.Errorf("the export lacks %q: %v", want, mapKeys(z))
		}
	}
}

// What people write is shown as text on every page of the desk: a script
// in a title or a message is escaped, never run.
func TestSupportThreadEscapesHTML(t *testing.T) {
	e := sqliteEnv(t, envOptions{policyFile: "jmir.yaml"})
	ann, _ := e.member("ann@example.org", "Ann")
	id := e.openOnPage(t, ann, `<img src=x onerror=alert(1)>`, "Look: <script>alert('x')</script>\nsecond line")
	desk, _ := e.staff("desk@example.org", "support")
	for _, c := range []struct {
		client *http.Client
		path   string
		thread bool
	}{{ann, "/account/support/" + id, true}, {ann, "/account/support", false}, {desk, "/admin/support/" + id, true}, {desk, "/admin/support", false}} {
		r := e.do(c.client, "GET", c.path, nil, "Accept", "text/html")
		page := string(r.body)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", c.path, r.StatusCode, page)
		}
		if strings.Contains(page, "<script>alert") || strings.Contains(page, "<img src=x") {
			t.Errorf("%s shows markup the member wrote: %s", c.path, page)
		}
		if !strings.Contains(page, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Errorf("%s does not show the title as text: %s", c.path, page)
		}
		if c.thread && !strings.Contains(page, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;") {
			t.Errorf("%s does not show the message as text: %s", c.path, page)
		}
	}
}

// Someone without an account asks on the public form: the answer is the
// same for any address; the link mailed to the address shows a button
// (opening it changes nothing) and its POST releases the request into the
// staff queue. A forged link is not found.
func TestSupportPublicFormConfirm(t *testing.T) {
	e := sqliteEnv(t, envOptions{policyFile: "jmir.yaml", smtp: true, supportAddress: supportAddress})
	e.member("known@example.org", "Known")
	r1 := e.do(nil, "POST", "/api/v1/support", map[string]string{"email": "guest@example.org", "title": "Invoice question", "text": "Where is my invoice?"})
	r2 := e.do(nil, "POST", "/api/v1/support", map[string]string{"email": "known@example.org", "title": "Other question", "text": "Hello"})
	if r1.StatusCode != http.StatusAccepted || string(r1.body) != string(r2.body) {
		t.Fatalf("public requests: %d %s / %d %s", r1.StatusCode, r1.body, r2.StatusCode, r2.body)
	}
	desk, _ := e.staff("desk@example.org", "support")
	queue := func() string { return string(e.do(desk, "GET", "/api/v1/admin/support", nil).body) }
	if strings.Contains(queue(), "Invoice question") {
		t.Fatalf("a request shows before its address was confirmed")
	}
	e.runJobs(t)
	m := e.smtp.WaitFor(t, mailtest.SentTo("guest@example.org"), 5*time.Second)
	link := m.Link("http://steward.test/support/confirm?token=")
	if link == "" {
		t.Fatalf("no confirm link in %q", m.Text)
	}
	r := e.do(nil, "GET", strings.TrimPrefix(link, "http://steward.test"), nil, "Accept", "text/html")
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), `<button type="submit">Send my request</button>`) {
		t.Fatalf("GET of the confirm link: %d %s", r.StatusCode, r.body)
	}
	if strings.Contains(queue(), "Invoice question") {
		t.Fatalf("opening the link released the request")
	}
	u, _ := url.Parse(link)
	r = e.do(nil, "POST", "/support/confirm", url.Values{"token": {u.Query().Get("token")}}, "Accept", "text/html")
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "reached our support team") {
		t.Fatalf("POST confirm: %d %s", r.StatusCode, r.body)
	}
	if !strings.Contains(queue(), "Invoice question") {
		t.Errorf("the confirmed request is not in the queue: %s", queue())
	}
	r = e.do(nil, "POST", "/support/confirm", url.Values{"token": {"forged"}}, "Accept", "text/html")
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("a forged link: %d", r.StatusCode)
	}
	// The page form: the same promise, as a page.
	r = e.do(nil, "POST", "/support", url.Values{"email": {"page@example.org"}, "title": {"Hi"}, "text": {"A question"}}, "Accept", "text/html")
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "Check your inbox") {
		t.Errorf("the page form: %d %s", r.StatusCode, r.body)
	}
	r = e.do(nil, "POST", "/support", url.Values{"email": {"not an address"}, "title": {"Hi"}, "text": {"A question"}}, "Accept", "text/html")
	if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), `value="A question"`) && !strings.Contains(string(r.body), ">A question</textarea>") {
		t.Errorf("a bad address on the page form: %d %s", r.StatusCode, r.body)
	}
}

// Bad input is refused with a problem and stores nothing: a title too
// long, an empty text, a body of another type, a file over the limit, too
// many files, a recording that is not audio or has no notice; another
// member's request is not found; a quality reviewer cannot write.
func TestSupportBadInput(t *testing.T) {
	e := sqliteEnv(t, envOptions{policyFile: "jmir.yaml", supportLimits: support.Limits{MaxFile: 64 << 10, MaxFiles: 2}})
	ctx := context.Background()
	ann, _ := e.member("ann@example.org", "Ann")
	bob, _ := e.member("bob@example.org", "Bob")
	p := assertProblem(t, e.do(ann, "POST", "/api/v1/me/support", map[string]string{"title": strings.Repeat("t", 201), "text": "x"}),
		http.StatusUnprocessableEntity, "invalid")
	if p.Field != "title" {
		t.Errorf("a long title: field %q", p.Field)
	}
	p = assertProblem(t, e.do(ann, "POST", "/api/v1/me/support", map[string]string{"title": "t", "text": "  "}), http.StatusUnprocessableEntity, "invalid")
	if p.Field != "text" {
		t.Errorf("an empty text: field %q", p.Field)
	}
	assertProblem(t, e.do(ann, "POST", "/api/v1/me/support", map[string]string{"title": "t", "text": "x", "priority": "high"}), http.StatusBadRequest, "invalid")
	assertProblem(t, e.do(ann, "POST", "/api/v1/me/support", "title=t&text=x", "Content-Type", "text/plain"), http.StatusUnsupportedMediaType, "unsupported")
	big := make([]byte, 100<<10)
	copy(big, pngBytes(t))
	body, ctype := multipartForm(t, [][2]string{{"title", "t"}, {"text", "x"}}, formFile{"files", "big.png", big})
	assertProblem(t, e.do(ann, "POST", "/api/v1/me/support", body, "Content-Type", ctype), http.StatusRequestEntityTooLarge, "too_large")
	small := pngBytes(t)
	body, ctype = multipartForm(t, [][2]string{{"title", "t"}, {"text", "x"}},
		formFile{"files", "a.png", small}, formFile{"files", "b.png", small}, formFile{"files", "c.png", small})
	assertProblem(t, e.do(ann, "POST", "/api/v1/me/support", body, "Content-Type", ctype), http.StatusUnprocessableEntity, "invalid")
	body, ctype = multipartForm(t, [][2]string{{"title", "t"}, {"text", "x"}}, formFile{"attachment", "a.png", small})
	assertProblem(t, e.do(ann, "POST", "/api/v1/me/support", body, "Content-Type", ctype), http.StatusBadRequest, "invalid")
	keys, _ := e.svc.Blobs.List(ctx, "support/")
	var n int
	e.db.QueryRow(`SELECT COUNT(*) FROM support_requests`).Scan(&n)
	if len(keys) != 0 || n != 0 {
		t.Fatalf("refused requests left %d files and %d requests", len(keys), n)
	}

	// The forms' text is held to the general body limit, however it is
	// sent: these routes skip that limit for their files only.
	huge := strings.Repeat("x", 2<<20)
	body, ctype = multipartForm(t, [][2]string{{"title", "t"}, {"text", huge}})
	assertProblem(t, e.do(ann, "POST", "/api/v1/me/support", body, "Content-Type", ctype), http.StatusRequestEntityTooLarge, "too_large")
	assertProblem(t, e.do(ann, "POST", "/api/v1/me/support", map[string]string{"title": "t", "text": huge}), http.StatusRequestEntityTooLarge, "too_large")
	r := e.do(ann, "POST", "/account/support", url.Values{"title": {"t"}, "text": {huge}}, "Accept", "text/html")
	if r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a huge urlencoded form: %d", r.StatusCode)
	}

	// On the page, a refusal draws the form again with what was typed.
	body, ctype = multipartForm(t, [][2]string{{"title", strings.Repeat("t", 201)}, {"text", "kept text"}})
	r = e.do(ann, "POST", "/account/support", body, "Content-Type", ctype, "Accept", "text/html")
	if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), ">kept text</textarea>") ||
		!strings.Contains(string(r.body), `class="field-error"`) {
		t.Errorf("the page form refused: %d %s", r.StatusCode, r.body)
	}

	// A browser sends a file input left empty as a part without a name
	// or content: it is no file.
	id := e.openOnPage(t, ann, "Mine", "only mine", formFile{"files", "mine.png", small}, formFile{"files", "", nil})
	var th supportThread
	e.do(ann, "GET", "/api/v1/me/support/"+id, nil).json(t, &th)
	fileID := th.file(t, "attachment", "mine.png")
	if n := len(th.Messages[0].Files); n != 1 {
		t.Errorf("the request holds %d files, want 1", n)
	}
	assertProblem(t, e.do(bob, "GET", "/api/v1/me/support/"+id, nil), http.StatusNotFound, "not_found")
	assertProblem(t, e.do(bob, "POST", "/api/v1/me/support/"+id+"/messages", map[string]string{"text": "hi"}), http.StatusNotFound, "not_found")
	assertProblem(t, e.do(bob, "GET", "/api/v1/me/support-files/"+fileID, nil), http.StatusNotFound, "not_found")
	if r := e.do(bob, "GET", "/account/support/"+id, nil, "Accept", "text/html"); r.StatusCode != http.StatusNotFound {
		t.Errorf("another member's request page: %d", r.StatusCode)
	}

	desk, _ := e.staff("desk@example.org", "support")
	notice := e.clock.Now().Add(-time.Minute).Format("2006-01-02T15:04")
	body, ctype = multipartForm(t, [][2]string{{"notice_given_at", notice}}, formFile{"recording", "call.wav", small})
	assertProblem(t, e.do(desk, "POST", "/api/v1/admin/support/"+id+"/recordings", body, "Content-Type", ctype), http.StatusUnsupportedMediaType, "unsupported")
	body, ctype = multipartForm(t, [][2]string{{"notice_given_at", "yesterday"}}, formFile{"recording", "call.wav", wavBytes()})
	assertProblem(t, e.do(desk, "POST", "/api/v1/admin/support/"+id+"/recordings", body, "Content-Type", ctype), http.StatusBadRequest, "invalid")
	body, ctype = multipartForm(t, [][2]string{{"notice_given_at", e.clock.Now().Add(time.Hour).Format(time.RFC3339)}}, formFile{"recording", "call.wav", wavBytes()})
	assertProblem(t, e.do(desk, "POST", "/api/v1/admin/support/"+id+"/recordings", body, "Content-Type", ctype), http.StatusUnprocessableEntity, "invalid")
	body, ctype = multipartForm(t, [][2]string{{"notice_given_at", notice}})
	assertProblem(t, e.do(desk, "POST", "/api/v1/admin/support/"+id+"/recordings", body, "Content-Type", ctype), http.StatusBadRequest, "invalid")
	body, ctype = multipartForm(t, [][2]string{{"notice_given_at", notice}}, formFile{"recording", "a.wav", wavBytes()}, formFile{"recording", "b.wav", wavBytes()})
	assertProblem(t, e.do(desk, "POST", "/api/v1/admin/support/"+id+"/recordings", body, "Content-Type", ctype), http.StatusBadRequest, "invalid")
	body, ctype = multipartForm(t, [][2]string{{"notice_given_at", notice}}, formFile{"recording", "call.wav", wavBytes()})
	if r := e.do(desk, "POST", "/api/v1/admin/support/"+id+"/recordings", body, "Content-Type", ctype); r.StatusCode != http.StatusCreated {
		t.Errorf("a recording with a datetime-local notice: %d %s", r.StatusCode, r.body)
	}
	assertProblem(t, e.do(desk, "POST", "/api/v1/admin/support/"+id+"/status", map[string]string{"status": "gone"}), http.StatusUnprocessableEntity, "invalid")
	assertProblem(t, e.do(desk, "GET", "/api/v1/admin/support?limit=lots", nil), http.StatusBadRequest, "invalid")
	assertProblem(t, e.do(desk, "GET", "/api/v1/admin/support?after=nonsense", nil), http.StatusUnprocessableEntity, "invalid")
	assertProblem(t, e.do(desk, "GET", "/api/v1/admin/support/r_nosuchrequest", nil), http.StatusNotFound, "not_found")

	qa, _ := e.staff("qa@example.org", "quality")
	assertProblem(t, e.do(qa, "POST", "/api/v1/admin/support/"+id+"/answers", map[string]string{"text": "hi"}), http.StatusForbidden, "forbidden")
	assertProblem(t, e.do(qa, "POST", "/api/v1/admin/support/"+id+"/status", map[string]string{"status": "closed"}), http.StatusForbidden, "forbidden")
	assertProblem(t, e.do(ann, "GET", "/api/v1/admin/support", nil), http.StatusForbidden, "forbidden")
}

// The staff desk's writes and the queue's pages: staff open a request for
// a caller, assign and close it, and page through the queue with the
// cursor each page gives.
func TestSupportStaffDesk(t *testing.T) {
	e := sqliteEnv(t, envOptions{policyFile: "jmir.yaml"})
	desk, _ := e.staff("desk@example.org", "support")
	deskID := annID(t, e, desk)
	var ids []string
	for i := range 3 {
		var opened struct{ ID string }
		r := e.do(desk, "POST", "/api/v1/admin/support/phone", map[string]string{"email": fmt.Sprintf("caller%d@example.org", i),
			"title": fmt.Sprintf("Call %d", i), "notes": "Asked about access."})
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("open by phone: %d %s", r.StatusCode, r.body)
		}
		r.json(t, &opened)
		ids = append(ids, opened.ID)
	}
	var seen []string
	next := ""
	for range 5 {
		var page struct {
			Items []struct{ ID string }
			Next  string
		}
		e.do(desk, "GET", "/api/v1/admin/support?limit=2&after="+url.QueryEscape(next), nil).json(t, &page)
		for _, it := range page.Items {
			seen = append(seen, it.ID)
		}
		if next = page.Next; next == "" {
			break
		}
	}
	if strings.Join(seen, ",") != strings.Join(ids, ",") {
		t.Errorf("paged queue = %v, want %v (the longest waiting first)", seen, ids)
	}
	r := e.do(desk, "GET", "/admin/support?limit=2", nil, "Accept", "text/html")
	if !strings.Contains(string(r.body), `<a href="/admin/support?after=`) {
		t.Errorf("the queue page has no next-page link: %s", r.body)
	}
	if r := e.do(desk, "POST", "/admin/support/"+ids[0]+"/assign", url.Values{"assignee": {"me"}}, "Accept", "text/html"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("assign to me: %d %s", r.StatusCode, r.body)
	}
	if r := e.do(desk, "POST", "/admin/support/"+ids[0]+"/status", url.Values{"status": {"closed"}}, "Accept", "text/html"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("close: %d %s", r.StatusCode, r.body)
	}
	var th struct{ Status, Assignee string }
	e.do(desk, "GET", "/api/v1/admin/support/"+ids[0], nil).json(t, &th)
	if th.Status != "closed" || th.Assignee != deskID {
		t.Errorf("after assign and close: %+v", th)
	}
	if r := e.do(desk, "POST", "/api/v1/admin/support/"+ids[1]+"/assign", map[string]string{"assignee": deskID}); r.StatusCode != http.StatusNoContent {
		t.Errorf("assign by the API: %d %s", r.StatusCode, r.body)
	}
	var q struct{ Items []struct{ ID string } }
	e.do(desk, "GET", "/api/v1/admin/support?assignee=none", nil).json(t, &q)
	if len(q.Items) != 1 || q.Items[0].ID != ids[2] {
		t.Errorf("unassigned open requests: %+v", q)
	}
	p := assertProblem(t, e.do(desk, "POST", "/api/v1/admin/support/phone", map[string]string{"email": "x@example.org", "title": "t", "notes": ""}),
		http.StatusUnprocessableEntity, "invalid")
	if p.Field != "notes" {
		t.Errorf("a phone request without notes: field %q, want notes", p.Field)
	}
	r = e.do(desk, "POST", "/admin/support/phone", url.Values{"email": {"x@example.org"}, "title": {""}, "notes": {"n"}}, "Accept", "text/html")
	if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), `value="x@example.org"`) {
		t.Errorf("a phone request without a title on the page: %d %s", r.StatusCode, r.body)
	}
	// The console links the desk for its roles.
	qa, _ := e.staff("qa@example.org", "quality")
	if r := e.do(qa, "GET", "/admin", nil, "Accept", "text/html"); !strings.Contains(string(r.body), `href="/admin/support"`) {
		t.Errorf("the console does not link the desk for a quality reviewer")
	}
}
