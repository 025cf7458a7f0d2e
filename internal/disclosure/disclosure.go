// Package disclosure owns what leaves Steward for a third party: the
// register of every disclosure of personal data to a recipient the policy
// declares (processor, partner, authority, acquirer, the operator's
// OpenID clients), its delivery as a signed webhook or a pull, the
// propagation of erasures, corrections and restrictions to the recipients
// that received the data (GDPR Art. 19), the register of legal requests
// with the decision whether to tell the people concerned, and the public
// transparency report counted from that register.
//
// Data leaves only through Service.Disclose: it asks the guard with the
// subject's state (through the door, for the disclosure's purpose),
// requires the basis (the purpose's contract, a consent in force, or a
// legal request on the register), records who received which fields of
// which categories for which purpose and why — never the data — and
// refuses and audits everything the policy does not declare (J11, M12).
// A recipient knows a subject only by a reference of its own: a keyed
// digest of the subject id under a key derived for that recipient, so two
// recipients cannot join their records, and an erasure can be propagated
// after the email address is gone.
package disclosure

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/subject"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations are this package's schema changes (module "disclosure").
func Migrations() store.Migrations { return store.Embedded("disclosure", migrationFS) }

// Jobs of the package.
const (
	// JobDeliver sends one delivery to its recipient's webhook.
	JobDeliver = "disclosure.deliver"
	// JobNotify mails the people a legal request concerns once its
	// notification date has come.
	JobNotify = "disclosure.notify"
	// JobExpirePulls drops what events waiting for a pulling recipient
	// carry once they have waited PullWindow unacknowledged.
	JobExpirePulls = "disclosure.expire-pulls"
)

// PullWindow is how long an event waits for a recipient that pulls to
// fetch and acknowledge it before the data it carries is dropped and the
// delivery marked failed: a recipient that stops pulling leaves no copy
// here for ever.
const PullWindow = 30 * 24 * time.Hour

// Recorder appends audit events (audit.Log).
type Recorder interface {
	Record(ctx context.Context, q store.Q, e audit.Event) error
}

// Hold is a legal hold placed from a legal request: on a subject, or on
// one of their categories, with the reason and an expiry.
type Hold struct {
	SubjectID string
	Category  string // "" for the whole subject
	Reason    string
	Until     time.Time // zero: until lifted
	Request   string    // the legal request's id
	Actor     string
}

// Deps are the service's dependencies. DB, Clock, Policy, Door, Subjects,
// Audit, Jobs, Outbox and RefKey are required.
type Deps struct {
	DB       *store.DB
	Clock    clock.Clock
	Log      *slog.Logger
	Policy   policy.Published
	Door     *door.Door
	Subjects *subject.Store
	Audit    Recorder
	Jobs     *jobs.Runner
	Outbox   *mail.Outbox
	// Getenv reads the environment: webhook signing secrets and pull keys
	// are in the variables the policy names.
	Getenv func(string) string
	// RefKey derives each recipient's key for its references to subjects
	// (32 bytes, from the master key).
	RefKey []byte
	// AllowPrivate lets webhooks reach loopback and private-network
	// addresses (an operator's own network; tests). Off, they are refused.
	AllowPrivate bool
	// Timeout bounds one webhook attempt (10 s when zero).
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one delivery (20 when zero:
	// with the runner's backoff, a day and more of failures).
	MaxAttempts int
	// Consents finds the consent record a disclosure on consent rests on
	// (consent.Ledger); nil, the guard's check of the subject's state is
	// the only one and no record is named.
	Consents Consents
	// PlaceHold places a legal hold in the subject-state store; nil, a
	// legal request cannot place one (refused with a clear error).
	PlaceHold func(ctx context.Context, q store.Q, h Hold) error
}

// Consents is the consent ledger as a disclosure reads it.
type Consents interface {
	GivenRecord(ctx context.Context, q store.Q, subjectID, purpose string) (string, error)
	// GivenScopedRecord is GivenRecord for consent given with a scope.
	GivenScopedRecord(ctx context.Context, q store.Q, subjectID, purpose, scope string) (string, error)
}

// Service is the disclosure register and its deliveries.
type Service struct {
	d          Deps
	pol        *policy.Policy
	recipients map[string]*recipient
	client     *http.Client
}

// recipient is a declared recipient with what it is reached with.
type recipient struct {
	*policy.Recipient
	secret  []byte // webhook signing secret; nil without a webhook
	pullKey []byte // SHA-256 of the pull key; nil without one
	refKey  []byte
}

// New builds the service and registers its jobs. A recipient whose
// webhook secret or pull key is missing from the environment is reached
// by hand until it is set, and a warning says so.
func New(d Deps) (*Service, error) {
	switch {
	case d.DB == nil, d.Clock == nil, d.Policy.Policy == nil, d.Door == nil, d.Subjects == nil, d.Audit == nil, d.Jobs == nil,
		d.Outbox == nil, len(d.RefKey) < 32:
		return nil, errors.New("disclosure: DB, Clock, Policy, Door, Subjects, Audit, Jobs, Outbox and a 32-byte RefKey are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Getenv == nil {
		d.Getenv = func(string) string { return "" }
	}
	if d.Timeout <= 0 {
		d.Timeout = 10 * time.Second
	}
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = 20
	}
	s := &Service{d: d, pol: d.Policy.Policy, recipients: map[string]*recipient{}}
	for _, r := range s.pol.Recipients {
		rc := &recipient{Recipient: r, refKey: hmacSum(d.RefKey, []byte("recipient "+r.ID))}
		if w := r.Webhook; w != nil {
			if sec := d.Getenv(w.SecretEnv); sec != "" {
				rc.secret = decodeSecret(sec)
			} else {
				d.Log.Warn("disclosure: no webhook secret in the environment: the recipient is told by hand", "recipient", r.ID, "variable", w.SecretEnv)
			}
		}
		if p := r.Pull; p != nil {
			if key := d.Getenv(p.KeyEnv); key != "" {
				sum := sha256.Sum256([]byte(key))
				rc.pullKey = sum[:]
			} else {
				d.Log.Warn("disclosure: no pull key in the environment: the recipient cannot pull", "recipient", r.ID, "variable", p.KeyEnv)
			}
		}
		s.recipients[r.ID] = rc
	}
	s.client = newClient(d.Timeout, d.AllowPrivate)
	d.Jobs.Handle(JobDeliver, s.deliver)
	d.Jobs.Handle(JobNotify, s.notifyDue)
	d.Jobs.Handle(JobExpirePulls, s.expirePulls)
	d.Jobs.Every(JobExpirePulls, time.Hour)
	return s, nil
}

// webhook reports whether the recipient is reached by webhook.
func (r *recipient) webhook() bool { return r.Webhook != nil && r.secret != nil }

// pulls reports whether the recipient pulls with a key.
func (r *recipient) pulls() bool { return r.pullKey != nil }

// Reference is the recipient's reference for a subject: the only way it
// knows them. It is stable (every disclosure to one recipient carries the
// same), differs between recipients, and reveals neither the email
// address nor Steward's id.
func (s *Service) Reference(recipientID, subjectID string) string {
	rc := s.recipients[recipientID]
	if rc == nil {
		return ""
	}
	return reference(rc.refKey, subjectID)
}

func reference(key []byte, subjectID string) string {
	sum := hmacSum(key, []byte(subjectID))
	return "sr_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:20]))
}

func hmacSum(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// Tables declares the package's tables in the personal-data registry.
func Tables() []registry.Table {
	return []registry.Table{
		{
			Name: "disclosures", Owner: "disclosure", Origin: registry.Observed, Dataset: "disclosures",
			SubjectColumn: "subject_id", Source: "observed",
			Columns: []registry.Column{{Name: "id"}, {Name: "subject_id"}, {Name: "recipient_id"},
				{Name: "recipient_ref", Hashed: true}, {Name: "purpose"}, {Name: "categories"}, {Name: "fields"},
				{Name: "basis"}, {Name: "basis_ref"}, {Name: "actor"}, {Name: "disclosed_at"}},
			Description: "Who received your data from us: the recipient, which fields of which categories, for which purpose, " +
				"on which basis and when. Never a copy of the data itself.",
		},
		{
			Name: "disclosure_deliveries", Owner: "disclosure", Origin: registry.Observed, Dataset: "disclosure_deliveries",
			SubjectColumn: "subject_id", Source: "observed",
			Columns: []registry.Column{{Name: "id"}, {Name: "recipient_id"}, {Name: "event_type"}, {Name: "disclosure_id"},
				{Name: "rights_request_id"}, {Name: "subject_id"}, {Name: "seal_category"},
				{Name: "body_sealed"}, {Name: "body"}, {Name: "status"},
				{Name: "attempts"}, {Name: "last_error"}, {Name: "created_at"}, {Name: "delivered_at"}, {Name: "acknowledged_at"},
				{Name: "handled_by"}},
			// body_sealed is sealed under the subject's key for its
			// seal_category, which varies by row: the door refuses it once
			// that key is destroyed, and an erasure empties it (Holder).
			Description: "Deliveries of what was disclosed to a recipient: the fields travel encrypted with your key until the " +
				"recipient has them (or, for a recipient that fetches them, 30 days at most), and are then deleted here; what remains " +
				"is when it was delivered and acknowledged.",
		},
		{Name: "disclosure_attempts", Owner: "disclosure", Origin: registry.System,
			Columns: []registry.Column{{Name: "delivery_id"}, {Name: "attempt"}, {Name: "at"}, {Name: "status_code"}, {Name: "error"}}},
		{Name: "disclosure_acks", Owner: "disclosure", Origin: registry.System,
			Columns: []registry.Column{{Name: "recipient_id"}, {Name: "message_id"}, {Name: "received_at"}}},
		{Name: "legal_requests", Owner: "disclosure", Origin: registry.System,
			Columns: []registry.Column{{Name: "id"}, {Name: "kind"}, {Name: "jurisdiction"}, {Name: "authority"}, {Name: "recipient_id"}, {Name: "categories"},
				{Name: "received_at"}, {Name: "deadline"}, {Name: "decision"}, {Name: "decision_reason"}, {Name: "notify"},
				{Name: "notify_after"}, {Name: "notify_reason"}, {Name: "accounts"}, {Name: "recorded_by"}, {Name: "updated_at"}}},
		{Name: "legal_request_tally", Owner: "disclosure", Origin: registry.System,
			Columns: []registry.Column{{Name: "period"}, {Name: "kind"}, {Name: "jurisdiction"}, {Name: "decision"}, {Name: "requests"},
				{Name: "accounts"}}},
		{
			Name: "legal_request_subjects", Owner: "disclosure", Origin: registry.Observed, Dataset: "legal_requests",
			SubjectColumn: "subject_id", Source: "observed",
			// The register of legal requests is a record the law obliges
			// us to keep; a row is shown to its subject only once they
			// were told of the request (Holder, gag.go).
			KeptBecause: "legal-obligation",
			Columns:     []registry.Column{{Name: "request_id"}, {Name: "subject_id"}, {Name: "notified_at"}},
			Description: "Legal requests (a subpoena, a court order) that asked about you, and when we told you of them.",
		},
		{Name: "transparency_periods", Owner: "disclosure", Origin: registry.System,
			Columns: []registry.Column{{Name: "period"}, {Name: "report"}, {Name: "published_at"}}},
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf("disclosure: "+format, args...) }
