// Package mail owns Steward's outgoing mail: the durable outbox
// (table mail_outbox) every message goes through, and its delivery over
// SMTP by a job of the jobs runner (kind "mail.deliver"), with retry and
// backoff, plain and HTML parts, List-Id and RFC 8058 one-click unsubscribe
// headers, and every header checked against injection before it is stored.
//
// A message is stored and its delivery job enqueued in the caller's
// transaction, so a sign-up that rolls back sends nothing and one that
// commits cannot lose its mail. Bulk mail (EnqueueBatch) is stored with
// multi-row inserts and delivered by one job per batch that sends its rows
// one after another; SendBatch runs one batch of a bulk send (a campaign,
// a notice) for the package that owns it, which keeps the per-recipient
// records in its own table. With no SMTP server configured, messages are
// stored as "held" and stay readable by admin staff at /admin/outbox, so
// the embedded default works end to end; once a server is configured, the
// next start queues the recent held mail for delivery (Resume).
//
// Just before a message is sent, the checks registered for its kind
// (BeforeSend) may stop it: campaign mail is checked against the
// recipient's consent and objections as they stand at that moment, and a
// stopped message is marked "suppressed", never sent.
//
// Delivery is at least once and, short of a crash between the SMTP server's
// acceptance and the next commit, exactly once: a message is claimed by a
// conditional update before it is sent, and marked sent in the same
// transaction that completes its job, so two processes never send the same
// row, and a row already sent is never sent again.
//
// Addresses and bodies are never logged: logs name the outbox id.
package mail

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"steward/internal/clock"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/store"
)

// Message is one mail to one person.
type Message struct {
	SubjectID string // whose mail this is (for the registry, export, erasure)
	To        string // one normalised address
	Subject   string
	Text      string // plain part (required)
	HTML      string // optional HTML part
	// Kind says what the mail is for: "verification", "password-reset",
	// "signup-existing", "notice", "campaign", ...
	Kind string
	// Headers are extra header fields. Structural ones (From, To, Subject,
	// Date, Message-ID, MIME and Content-* fields, address fields) are
	// refused. A List-Unsubscribe or List-Id given here is moved into
	// Unsubscribe or ListID.
	Headers map[string]string
	// ListID, optional, becomes List-Id (RFC 2919): "list.example.org" or
	// "Site updates <updates.example.org>".
	ListID string
	// Unsubscribe, optional, becomes List-Unsubscribe and, for an https URL,
	// List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058).
	Unsubscribe *Unsubscribe
	// CampaignID, optional, groups the messages of one bulk send; they are
	// delivered after transactional mail.
	CampaignID string
}

// Unsubscribe holds the unsubscribe methods of a message. URL must be
// https for one-click (RFC 8058); an http URL (development) is announced
// in List-Unsubscribe without the one-click header. Mailto is an address,
// with or without the "mailto:" scheme and query.
type Unsubscribe struct {
	URL    string
	Mailto string
}

// Stored is a message in the outbox with its delivery state.
type Stored struct {
	ID string
	Message
	Status    string // queued, held (no SMTP), sent, failed, suppressed
	MessageID string // the Message-ID header, kept across retries
	CreatedAt time.Time
	SentAt    *time.Time
	Attempts  int
	LastError string
}

// Message states.
const (
	StatusQueued = "queued"
	StatusHeld   = "held"
	StatusSent   = "sent"
	StatusFailed = "failed"
	// StatusSuppressed: a check registered with BeforeSend stopped the
	// message at delivery time; LastError holds its reason.
	StatusSuppressed = "suppressed"
)

// JobKind is the jobs kind that delivers one outbox message.
const JobKind = "mail.deliver"

// Delivery attempts: with the runner's default backoff (30 s doubling to
// 6 h) the last one comes about 20 hours after the first, so a relay down
// overnight loses nothing.
const deliveryAttempts = 12

// campaignPriority keeps bulk mail behind transactional mail in the job
// queue.
const campaignPriority = -10

// Config configures delivery.
type Config struct {
	// SMTPURL is smtp://[user:pass@]host[:port][?tls=required|none][&auth=...]
	// (STARTTLS when offered, unless tls=required demands it or tls=none
	// refuses it; port 587 by default) or smtps://... (implicit TLS, port
	// 465). Empty: messages are held.
	SMTPURL string
	// From is the sender, "Name <addr>" or "addr". Defaults to
	// "Steward <steward@localhost>".
	From string
	// RatePerSecond caps deliveries of this process; 0 means unlimited.
	RatePerSecond float64
	// ResumeHeldWithin is how old held mail may be and still be sent when
	// an SMTP server is configured later (default 7 days). Older held mail
	// stays held and readable in the console: a password reset or a
	// confirmation from weeks ago would arrive stale, or look like
	// phishing. Negative: never send held mail.
	ResumeHeldWithin time.Duration
}

// SendCheck decides, just before a message is sent, whether it must not be
// sent after all (skip) and why (a short reason without personal data,
// stored in last_error). It runs inside the transaction that marks a
// skipped message suppressed, so it may record its own consequences in q.
// An error leaves the message queued for a later attempt.
type SendCheck func(ctx context.Context, q store.Q, m Stored) (skip bool, reason string, err error)

// Outbox stores messages and delivers them.
type Outbox struct {
	db      *store.DB
	clock   clock.Clock
	jobs    *jobs.Runner
	log     *slog.Logger
	from    *mail.Address
	smtp    *smtpConfig // nil: not configured, messages are held
	limiter *rate.Limiter
	// sendClaim bounds how long one delivery attempt holds a message
	// against every other process, lease or not.
	sendClaim  time.Duration
	resumeHeld time.Duration
	batchSlice time.Duration // how long one job delivers a batch before handing over
	checksMu   sync.RWMutex
	checks     map[string][]SendCheck // by message kind
}

// NewOutbox returns an outbox. When SMTP is configured it registers the
// delivery handler on r, so call it before r.Start, and queues the held
// mail of the last ResumeHeldWithin for delivery (see Resume), so mail held
// while no server was configured goes out after a restart with one. The
// SMTP password never appears in errors or logs.
func NewOutbox(db *store.DB, c clock.Clock, r *jobs.Runner, cfg Config, log *slog.Logger) (*Outbox, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Outbox{db: db, clock: c, jobs: r, log: log.With("component", "mail"), sendClaim: 10 * time.Minute,
		resumeHeld: cfg.ResumeHeldWithin, checks: map[string][]SendCheck{}, batchSlice: 15 * time.Second}
	if o.resumeHeld == 0 {
		o.resumeHeld = 7 * 24 * time.Hour
	}
	from := cfg.From
	if from == "" {
		from = "Steward <steward@localhost>"
	}
	if hasControl(from) {
		return nil, errors.New("mail: the From address must not contain control characters")
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail: the From address %q is not valid: %w", from, err)
	}
	o.from = addr
	if cfg.RatePerSecond < 0 {
		return nil, errors.New("mail: the send rate must not be negative")
	}
	if cfg.RatePerSecond > 0 {
		o.limiter = rate.NewLimiter(rate.Limit(cfg.RatePerSecond), max(1, int(cfg.RatePerSecond)))
	}
	if cfg.SMTPURL == "" {
		o.log.Info("mail: no SMTP server configured; messages are held in the outbox for admin staff")
		return o, nil
	}
	sc, err := parseSMTPURL(cfg.SMTPURL)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errors.New("mail: a job runner is needed to deliver mail")
	}
	o.smtp = &sc
	r.Handle(JobKind, o.deliver)
	if cfg.From == "" {
		o.log.Warn("mail: no From address configured; sending as steward@localhost, which most servers reject")
	}
	o.log.Info("mail: delivering over SMTP", "server", sc.String())
	// NewOutbox runs once at start, after migrations and before the job
	// runner starts, and has no context of its own; the sweep is a few
	// indexed statements, bounded here.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := o.Resume(ctx); err != nil {
		return nil, err
	}
	return o, nil
}

// BeforeSend registers a check that runs, for every message of kind, after
// it is claimed for delivery and just before it is sent (after the rate
// limit's wait): a check that answers skip marks the message suppressed
// instead. Register checks at start-up, before the job runner starts.
func (o *Outbox) BeforeSend(kind string, check SendCheck) {
	if check == nil {
		panic("mail: nil send check")
	}
	o.checksMu.Lock()
	defer o.checksMu.Unlock()
	o.checks[kind] = append(o.checks[kind], check)
}

func (o *Outbox) checksFor(kind string) []SendCheck {
	o.checksMu.RLock()
	defer o.checksMu.RUnlock()
	return o.checks[kind]
}

// Configured reports whether an SMTP server is set, that is whether mail
// is delivered rather than held.
func (o *Outbox) Configured() bool { return o.smtp != nil }

// Enqueue validates m, stores it and, when SMTP is configured, enqueues its
// delivery, all within q: in a transaction, nothing is stored or sent
// unless it commits. Invalid input (control characters or CR/LF in the
// address, subject or a header, a malformed address, an overlong subject)
// is an invalid fault naming the field. It returns the outbox id.
func (o *Outbox) Enqueue(ctx context.Context, q store.Q, m Message) (string, error) {
	m, err := normalize(m)
	if err != nil {
		return "", err
	}
	headers, err := json.Marshal(m.Headers)
	if err != nil {
		return "", fmt.Errorf("mail: encode headers: %w", err)
	}
	var unsubURL, unsubMailto string
	if m.Unsubscribe != nil {
		unsubURL, unsubMailto = m.Unsubscribe.URL, m.Unsubscribe.Mailto
	}
	now := o.clock.Now()
	id := newRowID(now)
	status := StatusHeld
	if o.Configured() {
		status = StatusQueued
	}
	msgID := "<" + newID() + "@" + domainOf(o.from.Address) + ">"
	if _, err := q.ExecContext(ctx, `INSERT INTO mail_outbox (id, subject_id, kind, to_addr, subject, body_text, body_html, headers, list_id,
			unsubscribe_url, unsubscribe_mailto, campaign_id, message_id, status, attempts, last_error, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0, '', $15)`,
		id, m.SubjectID, m.Kind, m.To, m.Subject, m.Text, m.HTML, string(headers), m.ListID,
		unsubURL, unsubMailto, m.CampaignID, msgID, status, now); err != nil {
		return "", fmt.Errorf("mail: store message: %w", err)
	}
	if !o.Configured() {
		o.log.Info("mail: message held (no SMTP server)", "outbox", id, "kind", m.Kind)
		return id, nil
	}
	prio := 0
	if m.CampaignID != "" {
		prio = campaignPriority
	}
	if _, err := o.jobs.Enqueue(ctx, q, JobKind, deliverPayload{ID: id}, jobs.Options{
		Key: "mail:" + id, MaxAttempts: deliveryAttempts, Priority: prio,
	}); err != nil {
		return "", fmt.Errorf("mail: enqueue delivery: %w", err)
	}
	if _, inTx := q.(*sql.Tx); !inTx {
		o.jobs.Wake() // committed already: a worker may take it now
	}
	o.log.Debug("mail: message queued", "outbox", id, "kind", m.Kind)
	return id, nil
}

// deliverPayload names one message (Enqueue) or one batch (EnqueueBatch);
// Campaign says the batch is campaign mail, for the priority of the job
// that continues it.
type deliverPayload struct {
	ID       string `json:"id,omitempty"`
	Batch    string `json:"batch,omitempty"`
	Campaign bool   `json:"campaign,omitempty"`
}

// List returns up to limit messages, newest first, for /admin/outbox.
func (o *Outbox) List(ctx context.Context, limit int) ([]Stored, error) {
	return o.list(ctx, o.db, `ORDER BY created_at DESC, id DESC LIMIT $1`, limitOf(limit))
}

// ForSubject returns up to limit messages sent to one subject, newest
// first, for their privacy centre and access report.
func (o *Outbox) ForSubject(ctx context.Context, q store.Q, subjectID string, limit int) ([]Stored, error) {
	return o.list(ctx, q, `WHERE subject_id = $2 ORDER BY created_at DESC, id DESC LIMIT $1`, limitOf(limit), subjectID)
}

func limitOf(n int) int {
	if n <= 0 || n > 1000 {
		return 100
	}
	return n
}

// Get returns one message, or a not_found fault.
func (o *Outbox) Get(ctx context.Context, id string) (Stored, error) {
	s, err := scanStored(o.db.QueryRowContext(ctx, `SELECT `+storedColumns+` FROM mail_outbox WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Stored{}, fault.New(fault.NotFound, "no such message")
	}
	if err != nil {
		return Stored{}, fmt.Errorf("mail: get message: %w", err)
	}
	return s, nil
}

// Purge deletes sent, failed and suppressed messages created before t (the
// retention of the communications the policy sets) and returns how many it
// deleted. Queued and held messages are kept.
func (o *Outbox) Purge(ctx context.Context, q store.Q, before time.Time) (int64, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM mail_outbox WHERE status IN ('sent', 'failed', 'suppressed') AND created_at < $1`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("mail: purge: %w", err)
	}
	return res.RowsAffected()
}

const storedColumns = `id, subject_id, kind, to_addr, subject, body_text, body_html, headers, list_id, unsubscribe_url, unsubscribe_mailto,
	campaign_id, message_id, status, attempts, last_error, created_at, sent_at`

func (o *Outbox) list(ctx context.Context, q store.Q, tail string, args ...any) ([]Stored, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+storedColumns+` FROM mail_outbox `+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("mail: list messages: %w", err)
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		s, err := scanStored(rows)
		if err != nil {
			return nil, fmt.Errorf("mail: list messages: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func scanStored(row interface{ Scan(...any) error }) (Stored, error) {
	var s Stored
	var headers, unsubURL, unsubMailto string
	var sent sql.NullTime
	if err := row.Scan(&s.ID, &s.SubjectID, &s.Kind, &s.To, &s.Subject, &s.Text, &s.HTML, &headers, &s.ListID, &unsubURL, &unsubMailto,
		&s.CampaignID, &s.MessageID, &s.Status, &s.Attempts, &s.LastError, &s.CreatedAt, &sent); err != nil {
		return Stored{}, err
	}
	if err := json.Unmarshal([]byte(headers), &s.Headers); err != nil {
		return Stored{}, fmt.Errorf("headers of %s: %w", s.ID, err)
	}
	if len(s.Headers) == 0 {
		s.Headers = nil
	}
	if unsubURL != "" || unsubMailto != "" {
		s.Unsubscribe = &Unsubscribe{URL: unsubURL, Mailto: unsubMailto}
	}
	s.CreatedAt = s.CreatedAt.UTC()
	if sent.Valid {
		t := sent.Time.UTC()
		s.SentAt = &t
	}
	return s, nil
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "localhost"
}
