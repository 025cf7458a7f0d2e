// Package payment keeps what the operator's payment processor (Stripe's
// API shape) reports about members' cards, and only what the policy
// declares: the processor's token for a card, its brand, its last four
// digits and the billing address, each sealed by the door under the
// member's key for the category the policy gives the field; and, where
// the policy declares the field invoice, the invoices paid. Nothing else
// of an event is kept: the webhook decodes only those fields into small
// structs of its own, so a card number, a CVC or whatever else an event
// carries never reaches storage or the logs.
//
// Events arrive on a webhook whose signature is checked with the
// processor's official library; each event id is processed once. A
// processor's customer is matched to a subject through blind indexes
// (the customer id's, and the email address's as the subject store keeps
// it): an event for a customer no subject matches is held in the door's
// quarantine, sealed under a key of its own, until the customer is linked
// or its time is up. Payment data is read only through the door, for the
// purpose payment and the member's own requests; the policy guard refuses
// every other purpose and the door audits the refusal. The rights engine
// exports and erases the package's tables through the registry.
package payment

import (
	"context"
	"embed"
	"errors"
	"log/slog"
	"time"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/jobs"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/subject"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations are this package's schema changes (module "payment").
func Migrations() store.Migrations { return store.Embedded("payment", migrationFS) }

// The policy fields the package stores, each only where the policy puts
// it in a payment category.
const (
	FieldToken   = "card_token"
	FieldBrand   = "card_brand"
	FieldLast4   = "card_last4"
	FieldAddress = "billing_address"
	FieldInvoice = "invoice"
)

// methodFields are the fields of a payment method, in column order.
var methodFields = []string{FieldToken, FieldBrand, FieldLast4, FieldAddress}

// QuarantineKind names the door's quarantine of unmatched events.
const QuarantineKind = "payment-event"

// JobPrune is the hourly job that deletes quarantined events whose time
// is up and forgets processed event ids older than eventsKeptFor.
const JobPrune = "payment.prune"

// eventsKeptFor is how long a processed event id is remembered. The
// processor retries a delivery for up to three days, each time signed
// anew; a captured delivery replays only within the signature tolerance.
const eventsKeptFor = 30 * 24 * time.Hour

// Defaults of Deps.
const (
	DefaultTolerance     = 5 * time.Minute
	DefaultQuarantineFor = 30 * 24 * time.Hour
)

// Recorder appends audit events (audit.Log).
type Recorder interface {
	Record(ctx context.Context, q store.Q, e audit.Event) error
}

// Deps are the service's dependencies. All but Log, Tolerance and
// QuarantineFor are required.
type Deps struct {
	DB       *store.DB
	Clock    clock.Clock
	Log      *slog.Logger
	Policy   policy.Published
	Door     *door.Door
	Audit    Recorder
	Subjects *subject.Store
	// Verified says whether a member's address was verified (identity):
	// a customer is matched to a member by email only then, so nobody can
	// sign up with another person's address, never confirm it, and
	// receive their cards.
	Verified func(ctx context.Context, subjectID string) (bool, error)
	// Secret is the webhook endpoint's signing secret ("whsec_…").
	Secret string
	// Tolerance is how old a signature's timestamp may be (5 minutes when
	// zero).
	Tolerance time.Duration
	// QuarantineFor is how long an event for an unknown customer is held
	// (30 days when zero).
	QuarantineFor time.Duration
	// Jobs runs the hourly prune.
	Jobs *jobs.Runner
}

// Service keeps payment data. It is safe for concurrent use.
type Service struct {
	d          Deps
	quarantine *door.Quarantine
	// cats holds, for each field the package stores, the category the
	// policy gives it when that category is a payment one ("" otherwise:
	// the field is dropped).
	cats map[string]string
}

// New returns the service and registers its job and merge hook.
func New(d Deps) (*Service, error) {
	if d.DB == nil || d.Clock == nil || d.Policy.Policy == nil || d.Door == nil || d.Audit == nil || d.Subjects == nil || d.Verified == nil || d.Jobs == nil {
		return nil, errors.New("payment: DB, Clock, Policy, Door, Audit, Subjects, Verified and Jobs are required")
	}
	if len(d.Secret) < 16 {
		return nil, errors.New("payment: the webhook signing secret is required (at least 16 characters)")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Tolerance <= 0 {
		d.Tolerance = DefaultTolerance
	}
	if d.QuarantineFor <= 0 {
		d.QuarantineFor = DefaultQuarantineFor
	}
	s := &Service{d: d, quarantine: d.Door.Quarantine(QuarantineKind), cats: map[string]string{}}
	for _, f := range append(methodFields, FieldInvoice) {
		s.cats[f] = declared(d.Policy.Policy, f)
	}
	d.Jobs.Handle(JobPrune, func(ctx context.Context, _ jobs.Job) error {
		n, err := s.Prune(ctx)
		if err == nil && n > 0 {
			s.d.Log.Info("payment: deleted quarantined events whose time was up", "events", n)
		}
		return err
	})
	d.Jobs.Every(JobPrune, time.Hour)
	d.Subjects.OnMerge(subject.Repoint("payment", "payment_methods", "payment_customers", "payment_invoices"))
	return s, nil
}

// declared returns the category of field under pol when it is a payment
// category, and "" otherwise.
func declared(pol *policy.Policy, field string) string {
	cat := pol.CategoryOfField(field)
	if c := pol.Category(cat); c == nil || !c.Payment {
		return ""
	}
	return cat
}

// collectsMethods reports whether any field of a payment method is kept.
func (s *Service) collectsMethods() bool {
	for _, f := range methodFields {
		if s.cats[f] != "" {
			return true
		}
	}
	return false
}

// collects reports whether the package keeps anything at all: under a
// policy that declares none of its fields, events are acknowledged and
// nothing, not even a customer's link, is stored.
func (s *Service) collects() bool { return s.collectsMethods() || s.cats[FieldInvoice] != "" }

// Tables declares the package's tables to the personal-data registry.
func Tables() []registry.Table {
	return []registry.Table{
		{
			Name: "payment_methods", Owner: "payment", Origin: registry.Provided, Dataset: "payment_methods",
			SubjectColumn: "subject_id", Source: "subject", PolicyVersionColumn: "policy_version",
			Columns: []registry.Column{{Name: "id"}, {Name: "subject_id"},
				{Name: "method_index", Field: FieldToken, Hashed: true},
				{Name: "card_token_sealed", Field: FieldToken, Sensitive: true},
				{Name: "card_brand_sealed", Field: FieldBrand, Sensitive: true},
				{Name: "card_last4_sealed", Field: FieldLast4, Sensitive: true},
				{Name: "billing_address_sealed", Field: FieldAddress, Sensitive: true},
				{Name: "policy_version"}, {Name: "created_at"}, {Name: "updated_at"}},
			Description: "Cards you pay with, as the payment processor reports them when you add one: its token for the card " +
				"(never the card number), the brand, the last four digits and the billing address, each encrypted with your key.",
		},
		{
			Name: "payment_customers", Owner: "payment", Origin: registry.Derived, Dataset: "payment_customers",
			SubjectColumn: "subject_id", Source: "derived",
			Columns: []registry.Column{{Name: "id"}, {Name: "subject_id"}, {Name: "customer_index", Hashed: true},
				{Name: "linked_by"}, {Name: "created_at"}},
			Description: "That you are a customer of our payment processor: a keyed digest of its customer id, and how we " +
				"matched it to you. Nothing else of the processor's customer record is kept.",
		},
		{
			Name: "payment_invoices", Owner: "payment", Origin: registry.Provided, Dataset: "invoices",
			SubjectColumn: "subject_id", Source: "subject", PolicyVersionColumn: "policy_version",
			Columns: []registry.Column{{Name: "id"}, {Name: "subject_id"}, {Name: "invoice_index", Field: FieldInvoice, Hashed: true},
				{Name: "invoice_sealed", Field: FieldInvoice, Sensitive: true}, {Name: "policy_version"}, {Name: "created_at"}},
			Description: "Invoices you paid: number, amount, currency and date, encrypted with your key. Kept only where the " +
				"privacy policy declares invoices.",
		},
		{
			Name: "payment_events", Owner: "payment", Origin: registry.System,
			Columns:     []registry.Column{{Name: "event_id"}, {Name: "event_type"}, {Name: "received_at"}},
			Description: "The payment processor's ids of events already processed, so a repeated delivery stores nothing again.",
		},
		{
			Name: "payment_quarantine", Owner: "payment", Origin: registry.Observed,
			Columns: []registry.Column{{Name: "id"}, {Name: "event_id"}, {Name: "event_type"},
				{Name: "customer_index", Hashed: true}, {Name: "object_index", Hashed: true},
				{Name: "fields_sealed"}, {Name: "reason"}, {Name: "received_at"}, {Name: "expires_at"}},
			Description: "Payment events for a customer we could not match to anyone: the declared fields, sealed under a key " +
				"of the held event's own, released to the member once the customer is matched, or deleted (key and row) when " +
				"their time is up.",
		},
	}
}

// now is the service's clock, truncated as the stores keep it.
func (s *Service) now() time.Time { return s.d.Clock.Now().UTC().Truncate(time.Microsecond) }

// Index kinds of the blind indexes the package keeps.
const (
	indexCustomer = "payment customer"
	indexMethod   = "payment method"
	indexInvoice  = "payment invoice"
)

func (s *Service) index(kind, id string) []byte { return s.d.Door.BlindIndex(kind, id) }
