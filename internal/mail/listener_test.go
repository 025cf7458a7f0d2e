package mail_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/smtp"
	"net/textproto"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"steward/internal/fault"
	"steward/internal/mail"
)

// desk is a support desk in miniature behind a listener: it takes mail
// for support@ and support+TOKEN@ of its domain, parses each message and
// keeps the result, as internal/support does.
type desk struct {
	t     *testing.T
	lim   mail.InboundLimits
	spool string

	mu       sync.Mutex
	got      []*mail.Inbound
	envs     []mail.Envelope
	errs     []error
	maxRead  int64
	deliverd int
}

func (d *desk) accept(_ context.Context, env mail.Envelope) error {
	rcpt := env.Rcpt[len(env.Rcpt)-1]
	local, domain, _ := strings.Cut(rcpt, "@")
	if domain != "desk.example" || (local != "support" && !strings.HasPrefix(local, "support+")) {
		return fault.New(fault.NotFound, "no such mailbox here")
	}
	return nil
}

func (d *desk) deliver(_ context.Context, env mail.Envelope, raw io.Reader) error {
	counted := &countingReader{r: raw}
	m, err := mail.ParseInbound(counted, d.lim, d.spool)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deliverd++
	d.maxRead = max(d.maxRead, counted.n)
	d.envs = append(d.envs, env)
	d.errs = append(d.errs, err)
	if err != nil {
		return err
	}
	d.t.Cleanup(func() { m.Close() })
	d.got = append(d.got, m)
	return nil
}

// seen is what the desk saw, read under its lock: the listener calls it
// on goroutines of its own.
type seen struct {
	got     []*mail.Inbound
	envs    []mail.Envelope
	errs    []error
	maxRead int64
	calls   int
}

func (d *desk) seen() seen {
	d.mu.Lock()
	defer d.mu.Unlock()
	return seen{d.got, d.envs, d.errs, d.maxRead, d.deliverd}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// serve starts a listener on 127.0.0.1:0 for the test's lifetime.
func serve(t *testing.T, cfg mail.ListenerConfig, accept func(context.Context, mail.Envelope) error, deliver func(context.Context, mail.Envelope, io.Reader) error) *mail.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Domain == "" {
		cfg.Domain = "mx.desk.example"
	}
	l := mail.NewListener(cfg, accept, deliver)
	done := make(chan error, 1)
	go func() { done <- l.Serve(ln) }()
	for l.Addr() == nil {
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return l
}

func newDesk(t *testing.T) *desk {
	return &desk{t: t, spool: t.TempDir()}
}

// send speaks SMTP with net/smtp and returns the reply code of the first
// command refused (0 when all went through) and its text.
func send(t *testing.T, addr, from string, to []string, body io.Reader) (int, string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	refused := func(err error) (int, string) {
		var te *textproto.Error
		if !errors.As(err, &te) {
			t.Fatalf("not an SMTP reply: %v", err)
		}
		return te.Code, te.Msg
	}
	if err := c.Hello("relay.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from); err != nil {
		return refused(err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return refused(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return refused(err)
	}
	if _, err := io.Copy(w, body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		return refused(err)
	}
	c.Quit()
	return 0, ""
}

func TestListenerDeliversPlainMessage(t *testing.T) {
	var logs bytes.Buffer
	d := newDesk(t)
	l := serve(t, mail.ListenerConfig{Log: slog.New(slog.NewTextHandler(&logs, nil))}, d.accept, d.deliver)
	if code, msg := send(t, l.Addr().String(), "ann@example.org", []string{"support+t0k3n@desk.example"}, strings.NewReader(msgPlain)); code != 0 {
		t.Fatalf("refused: %d %s", code, msg)
	}
	s := d.seen()
	if len(s.got) != 1 {
		t.Fatalf("%d messages delivered, want 1", len(s.got))
	}
	env := s.envs[0]
	if env.MailFrom != "ann@example.org" || strings.Join(env.Rcpt, ",") != "support+t0k3n@desk.example" || !strings.HasPrefix(env.RemoteAddr, "127.0.0.1:") {
		t.Errorf("envelope = %+v", env)
	}
	if m := s.got[0]; m.From != "ann@example.org" || m.Text != "Thank you, it works now. \nCafé €5" {
		t.Errorf("delivered From %q, Text %q", m.From, m.Text)
	}
	// The log says what happened, not who or what.
	log := logs.String()
	if !strings.Contains(log, "a***@example.org") || !strings.Contains(log, "code=250") {
		t.Errorf("log lacks the masked sender or the code:\n%s", log)
	}
	for _, secret := range []string{"ann@", "t0k3n", "Thank you", "Your request"} {
		if strings.Contains(log, secret) {
			t.Errorf("log holds %q:\n%s", secret, log)
		}
	}
}

// TestListenerRefusesUnknownRecipient: accept is asked at RCPT, so a
// recipient the desk does not own is refused with 550 before any data.
func TestListenerRefusesUnknownRecipient(t *testing.T) {
	d := newDesk(t)
	l := serve(t, mail.ListenerConfig{}, d.accept, d.deliver)
	code, msg := send(t, l.Addr().String(), "ann@example.org", []string{"support@desk.example", "root@desk.example"}, strings.NewReader(msgPlain))
	if code != 550 || !strings.Contains(msg, "no such mailbox here") {
		t.Fatalf("got %d %q, want 550 with the fault's message", code, msg)
	}
	if n := d.seen().calls; n != 0 {
		t.Errorf("deliver called %d times", n)
	}
	// The accepted recipient stays accepted in the same transaction.
	c, err := smtp.Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Mail("ann@example.org")
	if err := c.Rcpt("elsewhere@other.example"); err == nil {
		t.Error("a foreign recipient was accepted")
	}
	if err := c.Rcpt("support@desk.example"); err != nil {
		t.Fatalf("support@ refused: %v", err)
	}
	w, _ := c.Data()
	io.WriteString(w, msgAlternative)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.seen().envs[0].Rcpt, ","); got != "support@desk.example" {
		t.Errorf("envelope recipients %q", got)
	}
}

// bigMessage streams a message of about size bytes, base64 of zeros,
// without holding it.
func bigMessage(size int64) io.Reader {
	head := crlf(replyHeader + "Content-Type: multipart/mixed; boundary=mix\n\n--mix\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=big.bin\nContent-Transfer-Encoding: base64\n\n")
	line := strings.Repeat("A", 76) + "\r\n"
	return io.MultiReader(strings.NewReader(head), io.LimitReader(&repeatReader{line: line}, size), strings.NewReader(crlf("\n--mix--\n")))
}

// repeatReader repeats its line forever.
type repeatReader struct {
	line string
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.line[r.off:])
		n += k
		r.off = (r.off + k) % len(r.line)
	}
	return n, nil
}

// TestListenerRefusesOversizeMessage: a message over MaxBytes (50 MiB by
// default) is refused with 552, streamed and spooled, never held: the
// callback is never given more than MaxBytes, and the heap does not grow
// by the message's size. A client that declares its size is refused at
// MAIL FROM, before sending a byte. (Not parallel: it reads the process's
// allocation counter.)
func TestListenerRefusesOversizeMessage(t *testing.T) {
	d := newDesk(t)
	l := serve(t, mail.ListenerConfig{}, d.accept, d.deliver)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	code, msg := send(t, l.Addr().String(), "ann@example.org", []string{"support@desk.example"}, bigMessage(55<<20))
	runtime.ReadMemStats(&after)
	if code != 552 {
		t.Fatalf("got %d %q, want 552", code, msg)
	}
	s := d.seen()
	if s.maxRead > 50<<20 {
		t.Errorf("deliver read %d bytes, more than the 50 MiB limit", s.maxRead)
	}
	if len(s.errs) != 1 || !fault.Is(s.errs[0], fault.TooLarge) {
		t.Errorf("ParseInbound said %v, want too_large", s.errs)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a 55 MiB message cost %d KiB of allocations, client included", alloc>>10)
	if alloc > 16<<20 {
		t.Errorf("a 55 MiB message allocated %d MiB: it is being held in memory", alloc>>20)
	}

	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc := textproto.NewConn(conn)
	tc.ReadResponse(220)
	tc.PrintfLine("EHLO relay.example")
	if _, msg, err := tc.ReadResponse(250); err != nil || !strings.Contains(msg, "SIZE 52428800") {
		t.Errorf("EHLO: %q, %v; want SIZE 52428800 advertised", msg, err)
	}
	tc.PrintfLine("MAIL FROM:<ann@example.org> SIZE=%d", 60<<20)
	if code, _, _ := tc.ReadResponse(250); code != 552 {
		t.Errorf("MAIL FROM with SIZE over the limit: %d, want 552", code)
	}
}

// TestListenerMapsErrors: the sender learns why a message was refused
// when it is at fault, with a permanent code, and nothing but "try later"
// otherwise.
func TestListenerMapsErrors(t *testing.T) {
	for _, c := range []struct {
		name    string
		deliver func(context.Context, mail.Envelope, io.Reader) error
		raw     string
		code    int
		msg     string
	}{
		{"malformed MIME", nil, msgBrokenBoundary, 554, "not valid MIME"},
		{"no From", nil, msgNoFrom, 554, "no From field"},
		{"zip of zips", nil, withFiles("a.zip", "application/zip", zipOf(t, zipEntry{"b.zip", zipOf(t, zipEntry{"c.txt", []byte("c")})})), 554, "zip of zips"},
		{"too deep", nil, nested(12), 554, "nested more than 8 levels"},
		{"too many attachments", nil, withFiles("1", "text/plain", []byte("1"), "2", "text/plain", []byte("2"), "3", "text/plain", []byte("3")), 552, "more than 2 attachments"},
		{"line too long", nil, crlf("From: a@example.org\n\n" + strings.Repeat("x", 3000) + "\n"), 554, "line longer than 2000 bytes"},
		{"forbidden", func(context.Context, mail.Envelope, io.Reader) error {
			return fault.New(fault.Forbidden, "this address does not take mail from you")
		}, msgPlain, 550, "does not take mail"},
		{"internal error", func(context.Context, mail.Envelope, io.Reader) error {
			return fmt.Errorf("support: insert: %w", errors.New("database at 10.0.0.5 refused"))
		}, msgPlain, 451, "try again later"},
		{"unavailable", func(context.Context, mail.Envelope, io.Reader) error {
			return fault.New(fault.Unavailable, "the database does not answer")
		}, msgPlain, 451, "try again later"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDesk(t)
			d.lim.MaxAttachments = 2
			deliver := c.deliver
			if deliver == nil {
				deliver = d.deliver
			}
			l := serve(t, mail.ListenerConfig{}, d.accept, deliver)
			code, msg := send(t, l.Addr().String(), "ann@example.org", []string{"support@desk.example"}, strings.NewReader(c.raw))
			if code != c.code || !strings.Contains(msg, c.msg) {
				t.Fatalf("got %d %q, want %d with %q", code, msg, c.code, c.msg)
			}
			if strings.Contains(msg, "10.0.0.5") || strings.Contains(msg, "database") {
				t.Errorf("the reply leaks internal detail: %q", msg)
			}
		})
	}
}

// TestListenerWithGoMail: a message built and sent by a real mail
// library (multipart/alternative inside multipart/mixed, an attachment)
// arrives whole.
func TestListenerWithGoMail(t *testing.T) {
	d := newDesk(t)
	l := serve(t, mail.ListenerConfig{}, d.accept, d.deliver)
	m := gomail.NewMsg()
	m.From("Ann <ann@example.org>")
	m.To("support+t0k3n@desk.example")
	m.Subject("Grüße aus Köln")
	m.SetBodyString(gomail.TypeTextPlain, "Plain body, ünïcödé.")
	m.AddAlternativeString(gomail.TypeTextHTML, "<p>HTML body<script>x()</script></p>")
	if err := m.AttachReader("scan.png", bytes.NewReader(pngBytes(t))); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(l.Addr().String())
	p, _ := strconv.Atoi(port)
	c, err := gomail.NewClient(host, gomail.WithPort(p), gomail.WithTLSPolicy(gomail.NoTLS), gomail.WithHELO("relay.example"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DialAndSend(m); err != nil {
		t.Fatal(err)
	}
	s := d.seen()
	if len(s.got) != 1 {
		t.Fatalf("%d delivered: %v", len(s.got), s.errs)
	}
	got := s.got[0]
	if got.Subject != "Grüße aus Köln" || got.Text != "Plain body, ünïcödé." {
		t.Errorf("Subject %q, Text %q", got.Subject, got.Text)
	}
	if len(got.Attachments) != 1 || got.Attachments[0].Name != "scan.png" || got.Attachments[0].ContentType != "image/png" {
		t.Errorf("attachments %+v", got.Attachments)
	}
}

// TestListenerSTARTTLS: given a certificate, the listener offers
// STARTTLS and takes mail over it.
func TestListenerSTARTTLS(t *testing.T) {
	d := newDesk(t)
	l := serve(t, mail.ListenerConfig{TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}}, d.accept, d.deliver)
	c, err := smtp.Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Hello("relay.example")
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered: the listener authenticates nobody")
	}
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.TLSConnectionState(); !ok {
		t.Fatal("not on TLS")
	}
	c.Mail("ann@example.org")
	if err := c.Rcpt("support@desk.example"); err != nil {
		t.Fatal(err)
	}
	w, _ := c.Data()
	io.WriteString(w, msgPlain)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(d.seen().got); n != 1 {
		t.Fatalf("%d delivered", n)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.desk.example"},
		DNSNames: []string{"mx.desk.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestListenerCloseStopsServing: after Close nothing connects, and a
// second Close is harmless.
func TestListenerCloseStopsServing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := mail.NewListener(mail.ListenerConfig{}, nil, func(context.Context, mail.Envelope, io.Reader) error { return nil })
	if l.Addr() != nil {
		t.Error("Addr before Serve")
	}
	done := make(chan error, 1)
	go func() { done <- l.Serve(ln) }()
	for l.Addr() == nil {
		time.Sleep(time.Millisecond)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve returned %v after Close", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still accepting connections after Close")
	}
}

// TestListenerBoundsConnections: past MaxConnections, a new connection
// waits for its greeting until one of the sessions ends.
func TestListenerBoundsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := mail.NewListener(mail.ListenerConfig{MaxConnections: 1}, nil, func(context.Context, mail.Envelope, io.Reader) error { return nil })
	go l.Serve(ln)
	t.Cleanup(func() { l.Close() })
	greeting := func(c net.Conn, wait time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(wait))
		b := make([]byte, 64)
		n, _ := c.Read(b)
		return n > 0 && strings.HasPrefix(string(b[:n]), "220")
	}
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if !greeting(first, 2*time.Second) {
		t.Fatal("no greeting for the first connection")
	}
	second, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if greeting(second, 300*time.Millisecond) {
		t.Fatal("a second session was served past MaxConnections 1")
	}
	first.Close()
	if !greeting(second, 3*time.Second) {
		t.Error("the waiting connection was not served once the first ended")
	}
}
