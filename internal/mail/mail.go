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
// stored as "held" and stay readable by staff at /admin/outbox, so
// the embedded default works end to end; once a server is configured, the
// next start queues the recent held mail for delivery (Resume).
//
// What a message says and where it goes are personal data of its subject,
// so the outbox keeps them sealed through the door (see sealed.go): each
// message names the policy purpose it serves, is sealed for it when it is
// queued, and is opened for it again just before it is sent. A use the
// policy no longer allows by then (an objection, a restriction, a withdrawn
// consent) marks the message "suppressed", never sent; a message whose
// subject was erased meanwhile is dropped. Staff read the outbox through the
// door too, each message for its own purpose.
//
// Just before a message is sent, the checks registered for its kind
// (BeforeSend) may stop it too: campaign mail is checked against the
// recipient's subscription to its list as it stands at that moment.
//
// Delivery is at least once and, short of a crash between the SMTP server's
// acceptance and the next commit, exactly once: a message is claimed by a
// conditional update before it is sent, and marked sent in the same
// transaction that completes its job, so two processes never send the same
// row, and a row already sent is never sent again.
//
// Addresses and bodies are never logged, nor stored in the clear: logs name
// the outbox id.
package mail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"steward/internal/clock"
	"steward/internal/door"
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
	// Purpose is the policy purpose the mail serves: security for account
	// mail, subject-request for the answers to a person's own requests, a
	// newsletter's purpose for its campaigns, the notices' legal
	// obligation for notices. The message is sealed for it when queued and
	// opened for it just before it is sent.
	Purpose string
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
	// ReplyTo, optional, is one plain address replies go to (a support
	// request's signed reply address) instead of the sender.
	ReplyTo string
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
	// Withheld, when set, says why the reader may not see the message (the
	// door's refusal, or "erased"): To, Subject, the bodies, headers and
	// unsubscribe methods are then empty.
	Withheld string
}

// Message states.
const (
	StatusQueued = "queued"
	StatusHeld   = "held"
	StatusSent   = "sent"
	StatusFailed = "failed"
	// StatusSuppressed: the door refused the message's purpose at delivery
	// time, or a check registered with BeforeSend stopped it; LastError
	// holds the reason.
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
// An error leaves the message queued for a later attempt. m is the
// message's delivery record: what it says is still sealed (see Get), so a
// check decides on its subject, kind, purpose and campaign.
type SendCheck func(ctx context.Context, q store.Q, m Stored) (skip bool, reason string, err error)

// Outbox stores messages and delivers them.
// SendClaim is how long a message being sent stays claimed by its
// attempt without renewal.
const SendClaim = 20 * time.Second

type Outbox struct {
	db      *store.DB
	door    *door.Door
	clock   clock.Clock
	jobs    *jobs.Runner
	log     *slog.Logger
	from    *mail.Address
	smtp    *smtpConfig // nil: not configured, messages are held
	limiter *rate.Limiter
	// sendClaim bounds how long one delivery attempt holds a message
	// against every other process, lease or not, without renewing it
	// (holdClaim renews it while the attempt runs): how long a dead
	// process's message waits before another sends it.
	sendClaim  time.Duration
	resumeHeld time.Duration
	batchSlice time.Duration // how long one job delivers a batch before handing over
	checksMu   sync.RWMutex
	checks     map[string][]SendCheck // by message kind
}

// NewOutbox returns an outbox that seals and opens messages through d.
// When SMTP is configured it registers the delivery handler on r, so call
// it before r.Start, and queues the held mail of the last ResumeHeldWithin
// for delivery (see Resume), so mail held while no server was configured
// goes out after a restart with one. The SMTP password never appears in
// errors or logs.
func NewOutbox(db *store.DB, c clock.Clock, r *jobs.Runner, d *door.Door, cfg Config, log *slog.Logger) (*Outbox, error) {
	if d == nil {
		return nil, errors.New("mail: the door is required: messages are sealed")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Outbox{db: db, door: d, clock: c, jobs: r, log: log.With("component", "mail"), sendClaim: SendClaim,
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

// Enqueue validates m, seals it for its subject and purpose, stores it
// and, when SMTP is configured, enqueues its delivery, all within q: in a
// transaction, nothing is stored or sent unless it commits. Invalid input
// (control characters or CR/LF in the address, subject or a header, a
// malformed address, an overlong subject, a purpose the policy does not
// declare) is an invalid fault naming the field; a purpose the policy does
// not let reach the subject now is the door's denial; a subject whose
// address was erased is door.ErrShredded, and nothing is stored. It
// returns the outbox id.
func (o *Outbox) Enqueue(ctx context.Context, q store.Q, m Message) (string, error) {
	m, err := o.validate(m, nil)
	if err != nil {
		return "", err
	}
	v, err := o.door.Subject(ctx, q, door.System(m.Purpose), m.SubjectID)
	if err != nil {
		return "", fmt.Errorf("mail: %w", err)
	}
	sm, err := o.sealFor(ctx, q, v, m)
	if err != nil {
		return "", fmt.Errorf("mail: seal message: %w", err)
	}
	now := o.clock.Now()
	id := newRowID(now)
	status := StatusHeld
	if o.Configured() {
		status = StatusQueued
	}
	row := outboxRow{id: id, subjectID: m.SubjectID, kind: m.Kind, purpose: m.Purpose, listID: m.ListID, campaignID: m.CampaignID,
		messageID: "<" + newID() + "@" + domainOf(o.from.Address) + ">", sealed: sm}
	if err := o.insertMessages(ctx, q, []outboxRow{row}, status, now, ""); err != nil {
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

// validate is normalizeWith with the policy's check of the purpose,
// made once per purpose in a batch.
func (o *Outbox) validate(m Message, memo *batchMemo) (Message, error) {
	if memo == nil || !memo.valid || memo.purpose != m.Purpose {
		if purposeRE.MatchString(m.Purpose) && o.door.Policy().Purpose(m.Purpose) == nil {
			return m, fault.FieldError("purpose", "names no purpose the policy declares")
		}
	}
	return normalizeWith(m, memo)
}

// deliverPayload names one message (Enqueue) or one batch (EnqueueBatch);
// Campaign says the batch is campaign mail, for the priority of the job
// that continues it.
type deliverPayload struct {
	ID       string `json:"id,omitempty"`
	Batch    string `json:"batch,omitempty"`
	Campaign bool   `json:"campaign,omitempty"`
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

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "localhost"
}
