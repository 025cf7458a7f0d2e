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
	"github.com/wneessen/go-mail/smtp"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/store"
)

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// newRowID returns an outbox id: 32 hex digits like newID, the first 12
// the creation time in milliseconds, the rest random. Ids that grow with
// time land at the right edge of the primary-key index, so a campaign's
// thousands of inserts touch a few pages instead of one page each all over
// the index (fewer pages read, dirtied and written per commit).
func newRowID(now time.Time) string {
	var b [16]byte
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err)
	}
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
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
		if name == "Reply-To" { // one address, checked when it was queued
			if err := m.ReplyTo(s.Headers[name]); err != nil {
				return nil, fmt.Errorf("reply-to: %w", err)
			}
			continue
		}
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

// deliver is the mail.deliver job: it sends one outbox message, or every
// message of one batch that is still queued.
func (o *Outbox) deliver(ctx context.Context, j jobs.Job) error {
	var p deliverPayload
	if err := j.Decode(&p); err != nil {
		return err
	}
	d := &delivery{o: o, j: j, claim: o.jobs.Owner() + "/" + j.ID + "/" + strconv.Itoa(j.Attempt)}
	defer d.hangUp()
	if p.Batch == "" {
		switch out, err := d.one(ctx, p.ID, true); out {
		case outBusy:
			return jobs.RetryAfter(errors.New("mail: message is being sent by another attempt"), d.o.untilFree(ctx, p.ID))
		case outGaveUp:
			return nil // recorded as failed, with its job
		default:
			return err
		}
	}
	return d.batch(ctx, p)
}

// delivery is one run of a mail.deliver job: the claim it sends under and
// the SMTP session its messages share.
type delivery struct {
	o     *Outbox
	j     jobs.Job
	claim string

	client *gomail.Client
	conn   *smtp.Client // open session, or nil
}

// outcome is what became of one message in a run.
type outcome int

const (
	outDone   outcome = iota // sent, failed for good, suppressed, or nothing left to do
	outBusy                  // another attempt holds it; try again later
	outRetry                 // a temporary failure; the run stops and the job is retried
	outGaveUp                // a temporary failure on the job's last attempt: marked failed
)

// batch sends the queued messages of one batch in id order. A temporary
// failure stops the run: the job is retried with backoff and skips what
// was sent meanwhile. On the job's last attempt, a temporary failure marks
// every message of the batch still waiting as failed, as a message of its
// own would be after its last attempt. After batchSlice the run hands the
// rest of the batch to a new job and ends, so a password reset queued
// meanwhile does not wait for a whole campaign batch: the runner takes the
// most urgent job next.
func (d *delivery) batch(ctx context.Context, p deliverPayload) error {
	batch := p.Batch
	start := time.Now()
	rows, err := d.o.db.QueryContext(ctx, `SELECT id FROM mail_outbox WHERE batch_id = $1 AND status = 'queued' ORDER BY id`, batch)
	if err != nil {
		return fmt.Errorf("mail: load batch: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("mail: load batch: %w", err)
		}
		ids = append(ids, id)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("mail: load batch: %w", err)
	}
	busy, free := 0, time.Duration(0)
	for i, id := range ids {
		if err := ctx.Err(); err != nil {
			return err // the lease was lost or the runner stops: the rest waits
		}
		if i > 0 && time.Since(start) >= d.o.batchSlice {
			if err := d.o.enqueueBatchJob(ctx, d.o.db, batch, p.Campaign); err != nil {
				return err
			}
			d.o.jobs.Wake()
			return nil
		}
		out, err := d.one(ctx, id, false)
		switch {
		case out == outBusy:
			busy++
			free = max(free, d.o.untilFree(ctx, id))
		case out == outGaveUp:
			return d.giveUp(ctx, batch, err)
		case err != nil:
			return err
		}
	}
	if busy > 0 {
		// Back when their claims lapse (if their attempts died) rather
		// than after the backoff: mail of a dead process waits no longer
		// than it must.
		return jobs.RetryAfter(fmt.Errorf("mail: %d message(s) of the batch are being sent by another attempt", busy), free)
	}
	return nil
}

// giveUp marks every message of the batch that is still queued and not
// held by another attempt as failed.
func (d *delivery) giveUp(ctx context.Context, batch string, cause error) error {
	text := jobs.ErrorText(cause)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := d.o.clock.Now()
	res, err := d.o.db.ExecContext(ctx, `UPDATE mail_outbox SET status = 'failed', last_error = $2
		WHERE batch_id = $1 AND status = 'queued' AND (claim_until IS NULL OR claim_until < $3)`, batch, text, now)
	if err != nil {
		return fmt.Errorf("mail: give up batch: %w", err)
	}
	n, _ := res.RowsAffected()
	d.o.log.Warn("mail: delivery failed for good; the rest of the batch is given up", "batch", batch, "messages", n, "err", text)
	return nil
}

// one makes one delivery attempt of a message. complete says the job is
// this message's own, to be completed with its outcome.
func (d *delivery) one(ctx context.Context, id string, complete bool) (outcome, error) {
	o := d.o
	log := o.log.With("outbox", id, "attempt", d.j.Attempt)
	now := o.clock.Now()
	// The conditional claim: only a queued message not held by another
	// attempt is sent, whatever happened to job leases.
	res, err := o.db.ExecContext(ctx, `UPDATE mail_outbox SET attempts = attempts + 1, claim_owner = $2, claim_until = $3
		WHERE id = $1 AND status = 'queued' AND (claim_until IS NULL OR claim_until < $4)`,
		id, d.claim, now.Add(o.sendClaim), now)
	if err != nil {
		return outRetry, fmt.Errorf("mail: claim message: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		s, err := o.Get(ctx, id)
		switch {
		case fault.Is(err, fault.NotFound):
			return outDone, nil // erased meanwhile
		case err != nil:
			return outRetry, err
		case s.Status == StatusQueued:
			return outBusy, nil
		}
		log.Debug("mail: nothing to deliver", "status", s.Status)
		return outDone, nil // sent, failed or suppressed already
	}
	defer o.holdClaim(id, d.claim)()
	rec, err := o.load(ctx, o.db, id)
	if err != nil {
		o.release(ctx, id, d.claim, "")
		return outRetry, fmt.Errorf("mail: load message: %w", err)
	}
	if o.limiter != nil {
		if err := o.limiter.Wait(ctx); err != nil {
			o.release(ctx, id, d.claim, "")
			return outRetry, fmt.Errorf("mail: rate limit: %w", err)
		}
	}
	// The checks and the door run after the wait, as close to sending as
	// they can: an objection recorded while this message waited its turn
	// still stops it.
	if checks := o.checksFor(rec.Kind); len(checks) > 0 {
		stopped, err := d.check(ctx, rec.Stored, checks, complete, log)
		if err != nil {
			return d.temporary(ctx, rec.Stored, "mail: check before sending: "+jobs.ErrorText(err), complete, log)
		}
		if stopped {
			return outDone, nil
		}
	}
	s, out, err := d.open(ctx, rec, complete, log)
	if out != outSend {
		return out, err
	}
	msg, err := o.build(s)
	if err != nil {
		return outDone, d.finish(ctx, s, StatusFailed, "mail: cannot build message: "+jobs.ErrorText(err), complete, log)
	}
	sendErr := d.transmit(ctx, msg)
	var bad *badClient
	if errors.As(sendErr, &bad) {
		o.release(ctx, s.ID, d.claim, "")
		return outRetry, jobs.Permanent(sendErr)
	}
	if sendErr == nil {
		return outDone, d.finish(ctx, s, StatusSent, "", complete, log)
	}
	text, permanent := describeSendError(sendErr)
	if permanent {
		return outDone, d.finish(ctx, s, StatusFailed, text, complete, log)
	}
	return d.temporary(ctx, s, text, complete, log)
}

// outSend is open's answer for a message opened and ready to send.
const outSend outcome = -1

// open opens the message for its purpose through the door, just before it
// is sent. A use the policy no longer allows (an objection, a restriction,
// a withdrawn consent since the mail was queued) marks it suppressed with
// the door's reason, as a BeforeSend check does; a destroyed key, or
// content erased in place (its subject was erased while it waited), drops
// it, since it can never be sent again; a value that does not open (sealed
// under a key since destroyed and made anew, or altered) or a subject the
// door does not know fails it for good.
func (d *delivery) open(ctx context.Context, rec record, complete bool, log *slog.Logger) (Stored, outcome, error) {
	v, err := d.o.door.Subject(ctx, d.o.db, door.System(rec.Purpose), rec.SubjectID)
	var s Stored
	if err == nil {
		s, err = open(ctx, v, rec)
	}
	if den, ok := door.IsDenied(err); ok {
		if err := d.suppress(ctx, rec.Stored, den.Reason.String(), complete, log); err != nil {
			out, err := d.temporary(ctx, rec.Stored, "mail: record suppression: "+jobs.ErrorText(err), complete, log)
			return Stored{}, out, err
		}
		return Stored{}, outDone, nil
	}
	switch {
	case err == nil && s.Text == "":
		// What it said was erased (the text is never empty otherwise).
		return Stored{}, outDone, d.drop(ctx, rec.Stored, complete, log)
	case err == nil:
		return s, outSend, nil
	case errors.Is(err, door.ErrShredded):
		return Stored{}, outDone, d.drop(ctx, rec.Stored, complete, log)
	case errors.Is(err, door.ErrCorrupt):
		return Stored{}, outDone, d.finish(ctx, rec.Stored, StatusFailed, "mail: the message "+withheldCorrupt, complete, log)
	case fault.Is(err, fault.NotFound):
		return Stored{}, outDone, d.finish(ctx, rec.Stored, StatusFailed, "mail: no such subject", complete, log)
	}
	out, err := d.temporary(ctx, rec.Stored, "mail: open message: "+jobs.ErrorText(err), complete, log)
	return Stored{}, out, err
}

// suppress marks a message suppressed with the reason, and completes its
// own job, in one transaction.
func (d *delivery) suppress(ctx context.Context, s Stored, reason string, complete bool, log *slog.Logger) error {
	reason = suppressReason(reason)
	err := d.o.db.InTx(ctx, func(tx *sql.Tx) error {
		return d.o.record(ctx, tx, d.j, s.ID, d.claim, StatusSuppressed, reason, complete)
	})
	if err == nil {
		log.Info("mail: suppressed before sending", "kind", s.Kind, "reason", reason)
	}
	return err
}

// suppressReason is the reason stored with a suppressed message.
func suppressReason(reason string) string {
	if reason == "" {
		reason = "stopped before sending"
	}
	return jobs.ErrorText(errors.New(reason))
}

// drop deletes a message whose subject's key was destroyed, and completes
// its own job: nothing can ever open it, so nothing retries it.
func (d *delivery) drop(ctx context.Context, s Stored, complete bool, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := d.o.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM mail_outbox WHERE id = $1 AND claim_owner = $2`, s.ID, d.claim); err != nil {
			return err
		}
		if !complete {
			return nil
		}
		if err := d.o.jobs.Complete(ctx, tx, d.j); err != nil && !errors.Is(err, jobs.ErrLeaseLost) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mail: drop message: %w", err)
	}
	log.Info("mail: dropped: its subject was erased while it waited", "kind", s.Kind)
	return nil
}

// temporary handles a failure worth retrying: the message is released for
// the next attempt, or marked failed on the job's last one.
func (d *delivery) temporary(ctx context.Context, s Stored, text string, complete bool, log *slog.Logger) (outcome, error) {
	if d.j.LastAttempt() {
		text += " (gave up after " + strconv.Itoa(d.j.Attempt) + " attempts)"
		if err := d.finish(ctx, s, StatusFailed, text, complete, log); err != nil {
			return outRetry, err
		}
		return outGaveUp, errors.New(text)
	}
	d.o.release(ctx, s.ID, d.claim, text)
	log.Info("mail: delivery failed, will retry", "err", text)
	return outRetry, errors.New(text)
}

// check runs the BeforeSend checks of the message's kind in one
// transaction; when one stops the message, the same transaction marks it
// suppressed (and completes its own job), so the checks' own records and
// the suppression commit together.
func (d *delivery) check(ctx context.Context, s Stored, checks []SendCheck, complete bool, log *slog.Logger) (bool, error) {
	stopped, reason := false, ""
	err := d.o.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, c := range checks {
			skip, why, err := c(ctx, tx, s)
			if err != nil {
				return err
			}
			if skip {
				stopped, reason = true, why
				break
			}
		}
		if !stopped {
			return nil
		}
		reason = suppressReason(reason)
		return d.o.record(ctx, tx, d.j, s.ID, d.claim, StatusSuppressed, reason, complete)
	})
	if err != nil {
		return false, err
	}
	if stopped {
		log.Info("mail: suppressed before sending", "kind", s.Kind, "reason", reason)
	}
	return stopped, nil
}

// badClient is an SMTP client that cannot be made from the configuration:
// no retry helps.
type badClient struct{ err error }

func (b *badClient) Error() string { return "mail: SMTP client: " + b.err.Error() }
func (b *badClient) Unwrap() error { return b.err }

// transmit sends msg over the run's SMTP session, opening it first when
// needed. After any failure the session is closed, its state being
// unknown; a session the server dropped while idle is reopened once,
// since nothing was sent on it.
func (d *delivery) transmit(ctx context.Context, msg *gomail.Msg) error {
	if d.client == nil {
		c, err := gomail.NewClient(d.o.smtp.host, d.o.smtp.options()...)
		if err != nil {
			return &badClient{err}
		}
		d.client = c
	}
	for try := 0; ; try++ {
		fresh := false
		if d.conn == nil {
			conn, err := d.client.DialToSMTPClientWithContext(ctx)
			if err != nil {
				return fmt.Errorf("dial failed: %w", err)
			}
			d.conn, fresh = conn, true
		}
		err := d.client.SendWithSMTPClient(d.conn, msg)
		if err == nil {
			return nil
		}
		d.hangUp()
		var se *gomail.SendError
		if !fresh && try == 0 && errors.As(err, &se) && se.Reason == gomail.ErrConnCheck {
			continue
		}
		return fmt.Errorf("send failed: %w", err)
	}
}

// hangUp ends the run's SMTP session, if one is open.
func (d *delivery) hangUp() {
	if d.conn != nil {
		if err := d.client.CloseWithSMTPClient(d.conn); err != nil {
			d.o.log.Debug("mail: closing the SMTP session failed", "err", jobs.ErrorText(err))
		}
		d.conn = nil
	}
}

// finish records the outcome of an attempt, with the completion of the
// message's own job in the same transaction when complete. A message
// marked sent stays sent even when the job's lease was lost meanwhile: the
// mail went out.
func (d *delivery) finish(ctx context.Context, s Stored, status, lastError string, complete bool, log *slog.Logger) error {
	// The SMTP server has answered; record it even if the job's context
	// was cancelled meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := d.o.db.InTx(ctx, func(tx *sql.Tx) error {
		return d.o.record(ctx, tx, d.j, s.ID, d.claim, status, lastError, complete)
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

// record sets the final status of a message this claim holds and, when
// complete, completes its job, within q.
func (o *Outbox) record(ctx context.Context, q store.Q, j jobs.Job, id, claim, status, lastError string, complete bool) error {
	var sentAt any
	if status == StatusSent {
		sentAt = o.clock.Now()
	}
	if _, err := q.ExecContext(ctx, `UPDATE mail_outbox SET status = $2, sent_at = $3, last_error = $4, claim_owner = NULL, claim_until = NULL
		WHERE id = $1 AND status = 'queued' AND claim_owner = $5`, id, status, sentAt, lastError, claim); err != nil {
		return err
	}
	if !complete {
		return nil
	}
	if err := o.jobs.Complete(ctx, q, j); err != nil && !errors.Is(err, jobs.ErrLeaseLost) {
		return err
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

// holdClaim renews a message's send claim while this attempt works on it
// (every third of sendClaim), so the claim can be short: when the process
// dies, another takes the message over once the claim lapses, within
// sendClaim, instead of waiting out a bound as long as the slowest send.
// The returned function stops the renewal; it returns once it has.
func (o *Outbox) holdClaim(id, claim string) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(o.sendClaim / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), o.sendClaim/3)
				_, err := o.db.ExecContext(ctx, `UPDATE mail_outbox SET claim_until = $3 WHERE id = $1 AND claim_owner = $2 AND status = 'queued'`,
					id, claim, o.clock.Now().Add(o.sendClaim))
				cancel()
				if err != nil {
					o.log.Warn("mail: renew send claim", "outbox", id, "err", err)
				}
			}
		}
	}()
	return func() { close(stop); <-done }
}

// untilFree is how long until a message's send claim lapses, unless its
// attempt renews it (a second past, or a whole claim when unknown).
func (o *Outbox) untilFree(ctx context.Context, id string) time.Duration {
	var until sql.NullTime
	if err := o.db.QueryRowContext(ctx, `SELECT claim_until FROM mail_outbox WHERE id = $1`, id).Scan(&until); err != nil || !until.Valid {
		return o.sendClaim
	}
	return min(max(until.Time.Sub(o.clock.Now()), 0)+time.Second, o.sendClaim+time.Second)
}
