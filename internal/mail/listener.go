package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"github.com/emersion/go-smtp"

	"steward/internal/fault"
)

// The listener receives mail for the support desk over plain SMTP (with
// STARTTLS when given a certificate): the relay or MX in front of Steward
// passes members' mail to it. It authenticates nobody and relays nothing:
// it asks its owner at each RCPT whether the recipient is one it serves,
// and hands each message, bounded, to its owner's delivery callback, which
// decides. Its logs name a masked sender, sizes and reply codes, never an
// address in full nor a word of a message.

// ListenerConfig sets up a Listener. Zero fields take their defaults.
type ListenerConfig struct {
	Addr   string // host:port for ListenAndServe (default ":2525")
	Domain string // the name the listener greets with (default "localhost")
	// MaxBytes bounds a message as sent, refused beyond with 552
	// (default 50 MiB, the default of InboundLimits.MaxBytes).
	MaxBytes      int64
	MaxRecipients int // per message; beyond it 452 (default 20)
	// ReadTimeout bounds the wait for each command and, since the DATA
	// command's deadline covers what follows, for a whole message's
	// transfer (default 5 minutes); WriteTimeout each reply (default 1
	// minute).
	ReadTimeout, WriteTimeout time.Duration
	// TLS, when set, lets clients upgrade with STARTTLS.
	TLS *tls.Config
	Log *slog.Logger
	// MaxConnections bounds the sessions served at once (50 when zero):
	// more wait to be accepted, so a flood of connections cannot hold
	// every spool and descriptor.
	MaxConnections int
}

// Envelope is a message's SMTP envelope: what the sending server said,
// not what the message's header claims.
type Envelope struct {
	MailFrom   string   // the reverse path; "" for a bounce
	Rcpt       []string // the recipients accepted
	RemoteAddr string   // the sending server's address, host:port
}

// Listener is an SMTP server for inbound mail. Create it with
// NewListener, start it with ListenAndServe or Serve, stop it with Close
// or Shutdown.
type Listener struct {
	cfg     ListenerConfig
	accept  func(ctx context.Context, env Envelope) error
	deliver func(ctx context.Context, env Envelope, raw io.Reader) error
	log     *slog.Logger
	srv     *smtp.Server

	// life is the listener's own lifetime, not a request's: the callbacks'
	// contexts derive from it, and Close cancels it.
	life   context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	ln     net.Listener
	closed bool
}

// NewListener returns a listener that asks accept, at each RCPT, whether
// to take mail for the recipient (env.Rcpt ends with that recipient,
// after those already accepted; nil accept takes every recipient), and
// hands each message to deliver as a stream of at most cfg.MaxBytes
// bytes. deliver should read raw to its end (ParseInbound does) before it
// keeps anything: a message found too large there is refused with 552
// whatever deliver returned.
//
// An error from accept or deliver becomes the SMTP reply: a fault whose
// code blames the message or the recipient (invalid, too_large,
// unsupported, not_found, forbidden) a permanent 5xx with the fault's
// client-safe message, rate_limited a 451 with its message, anything
// else a 451 that tells the sender only to try again later.
func NewListener(cfg ListenerConfig, accept func(ctx context.Context, env Envelope) error, deliver func(ctx context.Context, env Envelope, raw io.Reader) error) *Listener {
	if deliver == nil {
		panic("mail: NewListener needs a deliver callback")
	}
	if cfg.Addr == "" {
		cfg.Addr = ":2525"
	}
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = defaultInboundBytes
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = 20
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Minute
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = 50
	}
	if accept == nil {
		accept = func(context.Context, Envelope) error { return nil }
	}
	l := &Listener{cfg: cfg, accept: accept, deliver: deliver, log: cfg.Log}
	l.life, l.cancel = context.WithCancel(context.Background())
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &inboundSession{l: l, remote: c.Conn().RemoteAddr().String()}, nil
	}))
	s.Addr = cfg.Addr
	s.Domain = cfg.Domain
	s.MaxMessageBytes = cfg.MaxBytes
	s.MaxRecipients = cfg.MaxRecipients
	s.ReadTimeout = cfg.ReadTimeout
	s.WriteTimeout = cfg.WriteTimeout
	s.TLSConfig = cfg.TLS
	s.ErrorLog = smtpErrorLog{cfg.Log}
	l.srv = s
	return l
}

// ListenAndServe listens on cfg.Addr and serves until Close.
func (l *Listener) ListenAndServe() error {
	ln, err := net.Listen("tcp", l.cfg.Addr)
	if err != nil {
		return fmt.Errorf("mail: listener: %w", err)
	}
	return l.Serve(ln)
}

// Serve serves SMTP on ln until Close, and then returns nil.
func (l *Listener) Serve(ln net.Listener) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	l.ln = ln
	l.mu.Unlock()
	l.log.Info("mail: listening for inbound mail", "addr", ln.Addr().String(), "starttls", l.cfg.TLS != nil)
	return l.srv.Serve(netutil.LimitListener(ln, l.cfg.MaxConnections))
}

// Addr is the address the listener serves on; nil before it started.
func (l *Listener) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

// Close stops listening and drops every connection at once; the
// callbacks' contexts are cancelled.
func (l *Listener) Close() error {
	if !l.markClosed() {
		return nil
	}
	l.cancel()
	if err := l.srv.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return fmt.Errorf("mail: listener: %w", err)
	}
	return nil
}

// Shutdown stops listening and waits, until ctx ends, for the sessions
// under way to finish.
func (l *Listener) Shutdown(ctx context.Context) error {
	if !l.markClosed() {
		return nil
	}
	defer l.cancel()
	if err := l.srv.Shutdown(ctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return fmt.Errorf("mail: listener: %w", err)
	}
	return nil
}

func (l *Listener) markClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.closed = true
	return true
}

// inboundSession is one SMTP connection. Its envelope is guarded: with
// BDAT, go-smtp runs Data in a goroutine of its own while the connection
// may reset.
type inboundSession struct {
	l      *Listener
	remote string
	mu     sync.Mutex
	env    Envelope
}

func (s *inboundSession) envelope() Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	env := s.env
	env.Rcpt = slices.Clone(env.Rcpt)
	env.RemoteAddr = s.remote
	return env
}

func (s *inboundSession) Reset() {
	s.mu.Lock()
	s.env = Envelope{}
	s.mu.Unlock()
}

func (s *inboundSession) Logout() error { return nil }

func (s *inboundSession) Mail(from string, _ *smtp.MailOptions) error {
	s.mu.Lock()
	s.env = Envelope{MailFrom: from}
	s.mu.Unlock()
	return nil
}

func (s *inboundSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	env := s.envelope()
	env.Rcpt = append(env.Rcpt, to)
	ctx, cancel := context.WithCancel(s.l.life)
	err := s.l.accept(ctx, env)
	cancel()
	if err != nil {
		reply := smtpReply(err, true)
		s.l.log.Info("mail: inbound recipient refused", append([]any{"from", maskMailbox(env.MailFrom), "code", reply.Code}, why(err)...)...)
		return reply
	}
	s.mu.Lock()
	s.env.Rcpt = append(s.env.Rcpt, to)
	s.mu.Unlock()
	return nil
}

func (s *inboundSession) Data(r io.Reader) error {
	start := time.Now()
	env := s.envelope()
	in := &smtpData{r: r, max: s.l.cfg.MaxBytes}
	ctx, cancel := context.WithCancel(s.l.life)
	err := s.l.deliver(ctx, env, in)
	cancel()
	if err == nil {
		// What deliver left unread still counts against the limit.
		io.Copy(io.Discard, in)
	}
	var reply *smtp.SMTPError
	switch {
	case in.tooLarge:
		reply = smtp.ErrDataTooLarge
	case errors.Is(in.err, smtp.ErrTooLongLine):
		reply = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: fmt.Sprintf("The message has a line longer than %d bytes", s.l.srv.MaxLineLength)}
		err = in.err
	case in.err != nil:
		reply = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "The message was cut off, please try again later"}
		err = in.err
	case err != nil:
		reply = smtpReply(err, false)
	}
	code := 250
	if reply != nil {
		code = reply.Code
	}
	attrs := []any{"from", maskMailbox(env.MailFrom), "rcpts", len(env.Rcpt), "bytes", in.n, "code", code, "ms", time.Since(start).Milliseconds()}
	if err != nil {
		s.l.log.Info("mail: inbound message refused", append(attrs, why(err)...)...)
		return reply
	}
	s.l.log.Info("mail: inbound message accepted", attrs...)
	return nil
}

// smtpData counts what deliver reads and remembers why the stream ended
// early: go-smtp stops it at MaxBytes, which deliver sees as a
// fault.TooLarge (ParseInbound passes it on), or the client went away.
type smtpData struct {
	r        io.Reader
	max      int64
	n        int64
	tooLarge bool
	err      error
}

func (d *smtpData) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.n += int64(n)
	if err != nil && err != io.EOF {
		if errors.Is(err, smtp.ErrDataTooLarge) {
			d.tooLarge = true
			err = fault.New(fault.TooLarge, "the message is larger than %s", sizeText(d.max))
		} else if d.err == nil {
			d.err = err
		}
	}
	return n, err
}

// why names the cause of a refusal for the log: a fault by its code
// alone (its message may quote what the sender wrote), anything else in
// full, since it is ours to fix.
func why(err error) []any {
	if c := fault.CodeOf(err); c != fault.Internal {
		return []any{"fault", string(c)}
	}
	return []any{"err", err}
}

// smtpReply turns a callback's error into the reply the sending server
// gets: permanent when the message or recipient is at fault, so that it
// bounces at once with the reason; temporary, with no detail, otherwise.
func smtpReply(err error, rcpt bool) *smtp.SMTPError {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	msg := replyText(fault.MessageOf(err))
	switch fault.CodeOf(err) {
	case fault.TooLarge:
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: msg}
	case fault.Invalid:
		if rcpt {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: msg}
		}
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: msg}
	case fault.Unsupported:
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 1}, Message: msg}
	case fault.NotFound:
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: msg}
	case fault.Forbidden, fault.PurposeDenied:
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: msg}
	case fault.RateLimited:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: msg}
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, please try again later"}
}

// replyText keeps an SMTP reply one line of printable ASCII.
func replyText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// maskMailbox shows enough of an address to tell senders apart in a log,
// never the whole of it: "a***@example.org".
func maskMailbox(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		if addr == "" {
			return "<>"
		}
		return "***"
	}
	r := []rune(local)
	return string(r[0]) + "***@" + strings.ToLower(domain)
}

// smtpErrorLog sends go-smtp's own complaints (a panic, a failed accept)
// to the listener's log.
type smtpErrorLog struct{ log *slog.Logger }

func (e smtpErrorLog) Printf(format string, v ...any) {
	e.log.Error("mail: smtp listener", "detail", fmt.Sprintf(format, v...))
}

func (e smtpErrorLog) Println(v ...any) {
	e.log.Error("mail: smtp listener", "detail", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
