package rights

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/netlimit"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/subject"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of module "rights".
func Migrations() store.Migrations { return store.Embedded("rights", migrationFiles) }

// Tables declares this package's tables for the personal-data registry.
func Tables() []registry.Table {
	return []registry.Table{
		{
			Name: "rights_requests", Owner: "rights", Dataset: "privacy_requests",
			Dated:         registry.Dating{Column: "completed_at"},
			SubjectColumn: "subject_id", Origin: registry.Provided, Source: "subject",
			KeptBecause: "legal-obligation",
			Description: "Your privacy requests (access, portability, rectification, restriction, objection, erasure): state, deadline and outcome. " +
				"The record that a request was answered is kept after erasure (accountability, GDPR Art. 5(2)), but your own words and " +
				"the corrections you asked for are cleared with the rest of your data.",
			Columns: []registry.Column{
				{Name: "id"}, {Name: "subject_id"}, {Name: "type"}, {Name: "scope"}, {Name: "params"},
				{Name: "corrections_sealed", Field: fieldRequest, Sensitive: true}, {Name: "reason_sealed", Field: fieldRequest, Sensitive: true},
				{Name: "corrections", Field: fieldRequest, Legacy: true}, {Name: "reason", Field: fieldRequest, Legacy: true},
				{Name: "status"}, {Name: "channel"}, {Name: "filed_by"}, {Name: "session_id"},
				{Name: "received_at"}, {Name: "due_at"}, {Name: "verify_by"}, {Name: "verified_at"},
				{Name: "code_hash", Hashed: true}, {Name: "code_expires_at"}, {Name: "code_attempts"}, {Name: "token_hash", Hashed: true},
				{Name: "extended_months"}, {Name: "extension_reason"}, {Name: "needs_review"}, {Name: "refusal_reason"},
				{Name: "progress"}, {Name: "phase"}, {Name: "result"}, {Name: "created_subject"}, {Name: "handled_by"},
				{Name: "completed_at"}, {Name: "updated_at"},
			},
		},
		{
			Name: "rights_exports", Owner: "rights", Dataset: "privacy_exports",
			SubjectColumn: "subject_id", Origin: registry.Derived, Source: "steward",
			Description: "Finished copies of your data made for an access or portability request, sealed under a key of yours and " +
				"deleted when the download expires or your data is erased.",
			Columns: []registry.Column{
				{Name: "request_id"}, {Name: "subject_id"}, {Name: "format"}, {Name: "content"}, {Name: "size"},
				{Name: "created_at"}, {Name: "expires_at"},
			},
		},
		{
			Name: "rights_erasures", Owner: "rights", Dataset: "erasure_record",
			SubjectColumn: "subject_id", Origin: registry.Derived, Source: "steward",
			KeptBecause: "legal-obligation",
			Description: "A pseudonymous record of each erasure (subject id, scope, time — nothing identifying), kept so that an " +
				"erasure can be applied again after a backup is restored (GDPR Art. 17).",
			Columns: []registry.Column{
				{Name: "id"}, {Name: "subject_id"}, {Name: "request_id"}, {Name: "scope"}, {Name: "params"}, {Name: "erased_at"},
			},
		},
	}
}

// Job kinds of this package.
const (
	jobProcess  = "rights.process"  // carry out a verified request
	jobFinish   = "rights.finish"   // erasure: after the completion mail left, erase the address
	jobLift     = "rights.lift"     // lift a restriction once the subject was told
	jobMaintain = "rights.maintain" // expire unverified requests and old downloads
)

// Config holds the tunable parts; a zero field means its default.
type Config struct {
	// LedgerPath, when set, is a file the erasure ledger is also appended
	// to, one JSON object per line. Keep it outside the database's backups:
	// after a restore, `steward rights reapply` reads it to erase again what
	// the restored database no longer remembers erasing.
	LedgerPath string
	// UnverifiedTTL is how long a request waits for its identity to be
	// proved before it expires (default 7 days).
	UnverifiedTTL time.Duration
	// CodeTTL and CodeAttempts bound the emailed code (defaults: the
	// policy's verification settings, else 30 minutes and 5 attempts).
	CodeTTL      time.Duration
	CodeAttempts int
	// ExportTTL is how long a finished export can be downloaded (default
	// 7 days).
	ExportTTL time.Duration
	// NoticeWait bounds how long an erasure waits for its completion mail
	// to leave before erasing the address anyway (default 24 hours).
	NoticeWait time.Duration
	// MaxPendingPerSubject bounds the unverified requests filed by email
	// for one address within UnverifiedTTL (default 3): beyond it no more
	// codes are mailed, so the form cannot be used to flood a mailbox.
	MaxPendingPerSubject int
}

func (c Config) withDefaults(p *policy.Policy) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.UnverifiedTTL, 7*24*time.Hour)
	def(&c.CodeTTL, p.CodeTTL())
	def(&c.ExportTTL, 7*24*time.Hour)
	def(&c.NoticeWait, 24*time.Hour)
	if c.CodeAttempts <= 0 {
		c.CodeAttempts = p.Verification.MaxAttempts
	}
	if c.CodeAttempts <= 0 {
		c.CodeAttempts = 5
	}
	if c.MaxPendingPerSubject <= 0 {
		c.MaxPendingPerSubject = 3
	}
	return c
}

// Account is what the engine needs to know about a subject's account.
type Account struct {
	// Staff marks a staff account: its erasure waits for another staff
	// member's review, and it cannot be marked under age.
	Staff bool
	// Unverified marks an account whose address was never confirmed: it
	// files no request, since the answer would go to an address nobody
	// proved is theirs.
	Unverified bool
}

// Accounts tells the engine whether a subject has an account, and what
// kind (app adapts package identity to it).
type Accounts interface {
	// AccountOf returns the subject's account: fault.NotFound when the
	// subject has none.
	AccountOf(ctx context.Context, subjectID string) (Account, error)
}

// Deps are the collaborators of the service.
type Deps struct {
	DB       *store.DB
	Clock    clock.Clock
	Log      *slog.Logger
	Policy   policy.Published
	Registry *registry.Registry
	Subjects *subject.Store
	Door     *door.Door
	Audit    *audit.Log
	Outbox   *mail.Outbox
	Jobs     *jobs.Runner
	Accounts Accounts
	// BaseURL is the public URL links in mail point to.
	BaseURL string
	Config  Config
}

// Service runs rights requests and the export and erasure engine.
type Service struct {
	db       *store.DB
	clock    clock.Clock
	log      *slog.Logger
	pol      *policy.Policy
	polVer   int
	reg      *registry.Registry
	subjects *subject.Store
	door     *door.Door
	audit    *audit.Log
	outbox   *mail.Outbox
	jobs     *jobs.Runner
	accounts Accounts
	baseURL  string
	cfg      Config

	mu      sync.Mutex
	holders map[string]Holder
	files   []FileSource
	schema  *schema // introspected once, on first use
	// recipients is the register of disclosures (SetRecipients).
	recipients Recipients

	limits *netlimit.Limiter // per client network, email filings
}

// New checks the deps, registers the job handlers on d.Jobs (call it before
// the runner starts) and returns the service.
func New(d Deps) (*Service, error) {
	switch {
	case d.DB == nil:
		return nil, errors.New("rights: Deps.DB is required")
	case d.Clock == nil:
		return nil, errors.New("rights: Deps.Clock is required")
	case d.Policy.Policy == nil:
		return nil, errors.New("rights: Deps.Policy is required")
	case d.Registry == nil:
		return nil, errors.New("rights: Deps.Registry is required")
	case d.Subjects == nil:
		return nil, errors.New("rights: Deps.Subjects is required")
	case d.Door == nil:
		return nil, errors.New("rights: Deps.Door is required")
	case d.Audit == nil:
		return nil, errors.New("rights: Deps.Audit is required")
	case d.Outbox == nil:
		return nil, errors.New("rights: Deps.Outbox is required")
	case d.Jobs == nil:
		return nil, errors.New("rights: Deps.Jobs is required")
	case d.Accounts == nil:
		return nil, errors.New("rights: Deps.Accounts is required")
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		db: d.DB, clock: d.Clock, log: log.With("component", "rights"), pol: d.Policy.Policy, polVer: d.Policy.Number(),
		reg: d.Registry, subjects: d.Subjects, door: d.Door, audit: d.Audit, outbox: d.Outbox, jobs: d.Jobs,
		accounts: d.Accounts, baseURL: strings.TrimRight(d.BaseURL, "/"), cfg: d.Config.withDefaults(d.Policy.Policy),
		holders: map[string]Holder{}, limits: netlimit.New(time.Minute, 5),
	}
	for _, t := range []string{"rights_requests", "rights_exports", "rights_erasures"} {
		if _, ok := d.Registry.Table(t); !ok {
			return nil, fmt.Errorf("rights: the registry does not declare %s: add rights.Tables() to it", t)
		}
	}
	s.registerBuiltins()
	d.Jobs.Handle(jobProcess, s.handleProcess)
	d.Jobs.Handle(jobFinish, s.handleFinish)
	d.Jobs.Handle(jobLift, s.handleLift)
	d.Jobs.Handle(jobMaintain, s.handleMaintain)
	d.Jobs.Every(jobMaintain, 15*time.Minute)
	return s, nil
}

// Policy returns the policy the service runs under.
func (s *Service) Policy() *policy.Policy { return s.pol }

// inTx runs fn in a transaction on the service's database.
func (s *Service) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.db.InTx(ctx, fn)
}
