// Package mailtest runs an in-process SMTP server for tests: it listens on
// 127.0.0.1, accepts every message, and keeps each one with its envelope,
// raw bytes, parsed header and decoded text and HTML parts, so end-to-end
// tests can read the real mail Steward sent (and follow its links).
//
//	srv := mailtest.Start(t)
//	... start Steward with --smtp-url srv.URL() ...
//	m := srv.WaitFor(t, mailtest.SentTo("ann@example.org"), 5*time.Second)
//	link := m.Link("http://127.0.0.1")
package mailtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message the server accepted.
type Received struct {
	From    string   // envelope sender (MAIL FROM)
	To      []string // envelope recipients (RCPT TO)
	Header  mail.Header
	Subject string // decoded from RFC 2047 encoded words
	Text    string // the text/plain part, transfer-decoded, with LF line ends
	HTML    string // the text/html part, transfer-decoded, with LF line ends
	Raw     []byte // the message as received (RFC 5322)
	At      time.Time
}

// Link returns the first http(s) URL in the text part (or else the HTML
// part) that starts with prefix, or "" when there is none.
func (r Received) Link(prefix string) string {
	for _, body := range []string{r.Text, r.HTML} {
		for _, u := range urlRE.FindAllString(body, -1) {
			u = strings.TrimRight(u, ".,;:)")
			if strings.HasPrefix(u, prefix) {
				if body == r.HTML {
					u = strings.ReplaceAll(u, "&amp;", "&")
				}
				return u
			}
		}
	}
	return ""
}

var urlRE = regexp.MustCompile(`https?://[^\s"'<>]+`)

// SentTo matches messages with addr among their envelope recipients.
func SentTo(addr string) func(Received) bool {
	return func(r Received) bool {
		for _, to := range r.To {
			if strings.EqualFold(to, addr) {
				return true
			}
		}
		return false
	}
}

// Server is a running test SMTP server.
type Server struct {
	addr       string
	user, pass string

	mu       sync.Mutex
	srv      *smtp.Server
	ln       net.Listener
	msgs     []Received
	changed  chan struct{}
	failure  *smtp.SMTPError
	rejects  map[string]*smtp.SMTPError // by lower-cased recipient
	sessions int
	hold     *hold
}

// hold is a pending HoldNth.
type hold struct {
	match func(Received) bool
	left  int
	d     time.Duration
	ch    chan Received
}

// HoldNth makes the n-th message accepted from now on that matches wait d
// before the server answers its DATA: the message counts as received
// (Messages lists it) but the sender has not heard so yet — the window in
// which a sender that dies sends the message again. The channel gets the
// message when the wait starts.
func (s *Server) HoldNth(match func(Received) bool, n int, d time.Duration) <-chan Received {
	ch := make(chan Received, 1)
	s.mu.Lock()
	s.hold = &hold{match: match, left: n, d: d, ch: ch}
	s.mu.Unlock()
	return ch
}

// held reports how long to wait before answering r (0: at once).
func (s *Server) held(r Received) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hold
	if h == nil || !h.match(r) {
		return 0
	}
	if h.left--; h.left > 0 {
		return 0
	}
	s.hold = nil
	h.ch <- r
	return h.d
}

// Start runs a server on 127.0.0.1 on a free port until the test ends.
func Start(t testing.TB) *Server {
	return start(t, "", "")
}

// StartWithAuth runs a server that requires AUTH PLAIN with user and pass;
// its URL carries them.
func StartWithAuth(t testing.TB, user, pass string) *Server {
	return start(t, user, pass)
}

func start(t testing.TB, user, pass string) *Server {
	t.Helper()
	s := &Server{user: user, pass: pass, changed: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) serve(ln net.Listener) {
	srv := smtp.NewServer(backend{s})
	srv.Domain = "mailtest.localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 32 << 20
	srv.MaxRecipients = 100
	srv.AllowInsecureAuth = true
	srv.ErrorLog = discard{}
	s.mu.Lock()
	s.srv, s.ln = srv, ln
	s.mu.Unlock()
	go srv.Serve(ln)
}

// URL is the server's address as a Steward SMTP URL (plain SMTP, no TLS).
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.addr, RawQuery: "tls=none"}
	if s.user != "" {
		// PLAIN over a plain connection, which SMTP clients allow only to
		// the loopback address this server listens on.
		u.User = url.UserPassword(s.user, s.pass)
		u.RawQuery += "&auth=plain"
	}
	return u.String()
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Messages returns the messages received so far, oldest first.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Reset forgets the messages received so far.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = nil
}

// WaitFor returns the first received message that match accepts, waiting
// up to timeout for it; it fails the test when none arrives.
func (s *Server) WaitFor(t testing.TB, match func(Received) bool, timeout time.Duration) Received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for _, m := range s.msgs {
			if match(m) {
				s.mu.Unlock()
				return m
			}
		}
		changed := s.changed
		subjects := make([]string, len(s.msgs))
		for i, m := range s.msgs {
			subjects[i] = fmt.Sprintf("%q to %v", m.Subject, m.To)
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("mailtest: no matching message within %v; received %d: %s", timeout, len(subjects), strings.Join(subjects, "; "))
			return Received{}
		}
	}
}

// Fail makes the server answer every MAIL command with code and message
// (a 4xx code is a temporary failure, 5xx a permanent one) until Fail(0, "")
// restores normal service.
func (s *Server) Fail(code int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		s.failure = nil
		return
	}
	enh := smtp.EnhancedCode{code / 100, 0, 0}
	s.failure = &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: message}
}

// Reject makes the server answer RCPT TO addr with code and message (4xx
// temporary, 5xx permanent) until Reject(addr, 0, "") lifts it; other
// recipients are served as usual.
func (s *Server) Reject(addr string, code int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejects == nil {
		s.rejects = map[string]*smtp.SMTPError{}
	}
	addr = strings.ToLower(addr)
	if code == 0 {
		delete(s.rejects, addr)
		return
	}
	s.rejects[addr] = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1}, Message: message}
}

// Sessions returns how many SMTP sessions (connections) the server has
// accepted, so tests can see connections being reused.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Stop closes the server: connections are refused, as when a relay is
// down. Received messages are kept; Restart brings it back.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		// Serve may not have registered the listener yet: close it here.
		ln.Close()
		srv.Close()
	}
}

// Restart listens again on the same address after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the old socket may linger for a moment
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("mailtest: listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *Server) add(r Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, r)
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) currentFailure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failure == nil {
		return nil
	}
	return s.failure
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.s.mu.Lock()
	b.s.sessions++
	b.s.mu.Unlock()
	return &session{s: b.s, authed: b.s.user == ""}, nil
}

type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

func (x *session) AuthMechanisms() []string {
	if x.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	if x.s.user == "" {
		return nil, smtp.ErrAuthUnsupported
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != x.s.user || pass != x.s.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		x.authed = true
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if !x.authed {
		return smtp.ErrAuthRequired
	}
	if err := x.s.currentFailure(); err != nil {
		return err
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !x.authed {
		return smtp.ErrAuthRequired
	}
	x.s.mu.Lock()
	reject := x.s.rejects[strings.ToLower(to)]
	x.s.mu.Unlock()
	if reject != nil {
		return reject
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	rec, err := Parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "mailtest: unparsable message: " + err.Error()}
	}
	rec.From, rec.To, rec.At = x.from, append([]string(nil), x.to...), time.Now()
	x.s.add(rec)
	if d := x.s.held(rec); d > 0 {
		time.Sleep(d)
	}
	return nil
}

func (x *session) Reset() { x.from, x.to = "", nil }

func (x *session) Logout() error { return nil }

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}

// Parse reads a raw RFC 5322 message into a Received (without envelope):
// header, decoded subject, and the text and HTML parts of a single-part or
// (nested) multipart body, transfer-decoded.
func Parse(raw []byte) (Received, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Received{}, err
	}
	rec := Received{Header: msg.Header, Raw: raw}
	dec := new(mime.WordDecoder)
	if rec.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return Received{}, fmt.Errorf("subject: %w", err)
	}
	err = walk(&rec, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	return rec, err
}

func walk(rec *Received, contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walk(rec, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	data, err := decode(encoding, body)
	if err != nil {
		return err
	}
	// Line ends are CRLF on the wire; tests compare with Go strings.
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	switch {
	case mt == "text/plain" && rec.Text == "":
		rec.Text = text
	case mt == "text/html" && rec.HTML == "":
		rec.HTML = text
	}
	return nil
}

func decode(encoding string, r io.Reader) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return io.ReadAll(quotedprintable.NewReader(r))
	case "base64":
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		clean := strings.Map(func(c rune) rune {
			if c == '\r' || c == '\n' || c == ' ' || c == '\t' {
				return -1
			}
			return c
		}, string(b))
		return base64.StdEncoding.DecodeString(clean)
	default:
		return io.ReadAll(r)
	}
}
