package mail

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"steward/internal/fault"
	"steward/internal/jobs"
)

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

type tlsMode string

const (
	tlsOpportunistic tlsMode = "opportunistic" // STARTTLS when the server offers it
	tlsRequired      tlsMode = "required"      // STARTTLS or fail
	tlsNone          tlsMode = "none"          // plain SMTP, for local test servers
	tlsImplicit      tlsMode = "implicit"      // smtps: TLS from the first byte
)

// smtpConfig is a parsed STEWARD_SMTP_URL.
type smtpConfig struct {
	host       string
	port       int
	user, pass string
	tls        tlsMode
	auth       gomail.SMTPAuthType
	timeout    time.Duration
}

var authTypes = map[string]gomail.SMTPAuthType{
	"plain":         gomail.SMTPAuthPlain,
	"login":         gomail.SMTPAuthLogin,
	"cram-md5":      gomail.SMTPAuthCramMD5,
	"scram-sha-1":   gomail.SMTPAuthSCRAMSHA1,
	"scram-sha-256": gomail.SMTPAuthSCRAMSHA256,
	"xoauth2":       gomail.SMTPAuthXOAUTH2,
}

// parseSMTPURL reads smtp://[user:pass@]host[:port][?tls=…&auth=…] or
// smtps://…. Its errors never repeat the URL, which holds a password.
func parseSMTPURL(raw string) (smtpConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return smtpConfig{}, errors.New("mail: the SMTP URL is not a valid URL (smtp://user:pass@host:port)")
	}
	c := smtpConfig{host: u.Hostname(), timeout: 30 * time.Second}
	switch u.Scheme {
	case "smtp":
		c.port, c.tls = 587, tlsOpportunistic
	case "smtps":
		c.port, c.tls = 465, tlsImplicit
	default:
		return smtpConfig{}, errors.New("mail: the SMTP URL must start with smtp:// or smtps://")
	}
	if c.host == "" {
		return smtpConfig{}, errors.New("mail: the SMTP URL names no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return smtpConfig{}, errors.New("mail: the SMTP URL has an invalid port")
		}
		c.port = n
	}
	if u.Path != "" && u.Path != "/" {
		return smtpConfig{}, errors.New("mail: the SMTP URL must not have a path")
	}
	if u.User != nil {
		c.user = u.User.Username()
		c.pass, _ = u.User.Password()
	}
	for key, vals := range u.Query() {
		v := strings.ToLower(vals[len(vals)-1])
		switch key {
		case "tls":
			switch {
			case c.tls == tlsImplicit && v != "required" && v != "implicit":
				return smtpConfig{}, errors.New("mail: smtps:// always uses TLS; use smtp:// with tls=none for plain SMTP")
			case c.tls == tlsImplicit:
			case v == "" || v == "opportunistic":
				c.tls = tlsOpportunistic
			case v == "required" || v == "mandatory" || v == "starttls":
				c.tls = tlsRequired
			case v == "none" || v == "disable" || v == "off":
				c.tls = tlsNone
			default:
				return smtpConfig{}, fmt.Errorf("mail: SMTP URL: tls=%s is not one of required, opportunistic, none", v)
			}
		case "auth":
			t, ok := authTypes[v]
			if !ok {
				return smtpConfig{}, fmt.Errorf("mail: SMTP URL: auth=%s is not one of plain, login, cram-md5, scram-sha-1, scram-sha-256, xoauth2", v)
			}
			c.auth = t
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return smtpConfig{}, errors.New("mail: SMTP URL: timeout must be a duration such as 30s")
			}
			c.timeout = d
		default:
			return smtpConfig{}, fmt.Errorf("mail: SMTP URL: unknown parameter %q (known: tls, auth, timeout)", key)
		}
	}
	if c.auth != "" && c.user == "" {
		return smtpConfig{}, errors.New("mail: SMTP URL: auth needs a user name")
	}
	return c, nil
}

// String describes the server without credentials, for logs.
func (c smtpConfig) String() string {
	s := fmt.Sprintf("%s (tls %s", net.JoinHostPort(c.host, strconv.Itoa(c.port)), c.tls)
	if c.user != "" {
		s += ", with authentication"
	}
	return s + ")"
}

func (c smtpConfig) options() []gomail.Option {
	opts := []gomail.Option{gomail.WithPort(c.port), gomail.WithTimeout(c.timeout)}
	switch c.tls {
	case tlsImplicit:
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	case tlsRequired:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case tlsOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case tlsNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if c.user != "" {
		// Auto-discovery picks the strongest mechanism the server offers
		// and never sends a password in clear over an unencrypted link.
		auth := c.auth
		if auth == "" {
			auth = gomail.SMTPAuthAutoDiscover
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(c.user), gomail.WithPassword(c.pass))
	}
	return opts
}

// build turns a stored message into a go-mail message. Every value comes
// from validated, stored fields; none goes through a preformatted header.
func (o *Outbox) build(s Stored) (*gomail.Msg, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(o.from)
	if err := m.To(s.To); err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	m.Subject(s.Subject)
	m.SetMessageIDWithValue(strings.TrimSuffix(strings.TrimPrefix(s.MessageID, "<"), ">"))
	m.SetDateWithValue(s.CreatedAt)
	// RFC 3834: no vacation auto-replies to Steward's machine-made mail.
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	if s.ListID != "" {
		m.SetGenHeader(gomail.Header("List-Id"), listIDHeader(s.ListID))
	}
	if u := s.Unsubscribe; u != nil {
		var uris []string
		if u.URL != "" {
			uris = append(uris, "<"+u.URL+">")
		}
		if u.Mailto != "" {
			uris = append(uris, "<"+u.Mailto+">")
		}
		m.SetGenHeader(gomail.HeaderListUnsubscribe, strings.Join(uris, ", "))
		if strings.HasPrefix(u.URL, "https://") {
			m.SetGenHeader(gomail.HeaderListUnsubscribePost, "List-Unsubscribe=One-Click")
		}
	}
	names := make([]string, 0, len(s.Headers))
	for name := range s.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		m.SetGenHeader(gomail.Header(name), s.Headers[name])
	}
	if s.CampaignID != "" {
		m.SetGenHeader(gomail.HeaderPrecedence, "bulk")
	}
	m.SetBodyString(gomail.TypeTextPlain, s.Text)
	if s.HTML != "" {
		m.AddAlternativeString(gomail.TypeTextHTML, s.HTML)
	}
	return m, nil
}

// deliver is the mail.deliver job: it sends one outbox message.
func (o *Outbox) deliver(ctx context.Context, j jobs.Job) error {
	var p deliverPayload
	if err := j.Decode(&p); err != nil {
		return err
	}
	log := o.log.With("outbox", p.ID, "attempt", j.Attempt)
	now := o.clock.Now()
	claim := o.jobs.Owner() + "/" + j.ID + "/" + strconv.Itoa(j.Attempt)
	// The conditional claim: only a queued message not held by another
	// attempt is sent, whatever happened to job leases.
	res, err := o.db.ExecContext(ctx, `UPDATE mail_outbox SET attempts = attempts + 1, claim_owner = $2, claim_until = $3
		WHERE id = $1 AND status = 'queued' AND (claim_until IS NULL OR claim_until < $4)`,
		p.ID, claim, now.Add(o.sendClaim), now)
	if err != nil {
		return fmt.Errorf("mail: claim message: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		s, err := o.Get(ctx, o.db, p.ID)
		switch {
		case fault.Is(err, fault.NotFound):
			return nil // erased meanwhile
		case err != nil:
			return err
		case s.Status == StatusQueued:
			return errors.New("mail: message is being sent by another attempt")
		}
		log.Debug("mail: nothing to deliver", "status", s.Status)
		return nil // sent or failed already
	}
	s, err := o.Get(ctx, o.db, p.ID)
	if err != nil {
		return fmt.Errorf("mail: load message: %w", err)
	}
	msg, err := o.build(s)
	if err != nil {
		return o.finish(ctx, j, s, claim, StatusFailed, "mail: cannot build message: "+jobs.ErrorText(err), log)
	}
	if o.limiter != nil {
		if err := o.limiter.Wait(ctx); err != nil {
			o.release(ctx, s.ID, claim, "")
			return fmt.Errorf("mail: rate limit: %w", err)
		}
	}
	client, err := gomail.NewClient(o.smtp.host, o.smtp.options()...)
	if err != nil {
		o.release(ctx, s.ID, claim, "")
		return jobs.Permanent(fmt.Errorf("mail: SMTP client: %w", err))
	}
	sendErr := client.DialAndSendWithContext(ctx, msg)
	if sendErr == nil {
		return o.finish(ctx, j, s, claim, StatusSent, "", log)
	}
	text, permanent := describeSendError(sendErr)
	if permanent {
		return o.finish(ctx, j, s, claim, StatusFailed, text, log)
	}
	if j.LastAttempt() {
		return o.finish(ctx, j, s, claim, StatusFailed, text+" (gave up after "+strconv.Itoa(j.Attempt)+" attempts)", log)
	}
	o.release(ctx, s.ID, claim, text)
	log.Info("mail: delivery failed, will retry", "err", text)
	return errors.New(text)
}

// finish records the outcome of an attempt and completes its job in the
// same transaction. A message marked sent stays sent even when the job's
// lease was lost meanwhile: the mail went out.
func (o *Outbox) finish(ctx context.Context, j jobs.Job, s Stored, claim, status, lastError string, log *slog.Logger) error {
	// The SMTP server has answered; record it even if the job's context
	// was cancelled meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := o.clock.Now()
	var sentAt any
	if status == StatusSent {
		sentAt = now
	}
	err := o.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE mail_outbox SET status = $2, sent_at = $3, last_error = $4, claim_owner = NULL, claim_until = NULL
			WHERE id = $1 AND status = 'queued' AND claim_owner = $5`, s.ID, status, sentAt, lastError, claim); err != nil {
			return err
		}
		if err := o.jobs.Complete(ctx, tx, j); err != nil && !errors.Is(err, jobs.ErrLeaseLost) {
			return err
		}
		return nil
	})
	if err != nil {
		if status == StatusSent {
			// The mail went out but is not recorded: the retry will send it
			// again. Nothing else can be done once the server accepted it.
			log.Warn("mail: sent but not recorded; it may be sent twice", "err", err)
		}
		return fmt.Errorf("mail: record %s: %w", status, err)
	}
	if status == StatusSent {
		log.Info("mail: sent", "kind", s.Kind)
	} else {
		log.Warn("mail: delivery failed for good", "kind", s.Kind, "err", lastError)
	}
	return nil
}

// release gives a message back after a failed attempt, so the next one may
// claim it at once.
func (o *Outbox) release(ctx context.Context, id, claim, lastError string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := o.db.ExecContext(ctx, `UPDATE mail_outbox SET claim_owner = NULL, claim_until = NULL, last_error = $3
		WHERE id = $1 AND claim_owner = $2`, id, claim, lastError); err != nil {
		o.log.Warn("mail: release message failed", "outbox", id, "err", err)
	}
}

// describeSendError classifies a delivery error: permanent for an SMTP 5xx
// reply, temporary otherwise (4xx, network, TLS, authentication, which an
// operator can fix). The text keeps the SMTP stage and codes but never the
// server's free text or the recipient, which may echo the address.
func describeSendError(err error) (string, bool) {
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		text := "smtp: " + se.Reason.String()
		if code != 0 {
			text += ": " + strconv.Itoa(code)
			if esc := se.EnhancedStatusCode(); esc != "" {
				text += " " + esc
			}
		}
		return text, code >= 500 && code < 600
	}
	return "smtp: " + jobs.ErrorText(err), false
}
