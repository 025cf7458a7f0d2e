// Package identity owns accounts and everything that proves who someone
// is: sign-up under the policy's registration rules (declared fields only,
// minimum age), argon2id credentials screened against common passwords,
// email verification, login and sessions, re-authentication before
// sensitive actions, password reset, self-service profile edits with
// re-verified address changes, staff roles, and the rate limits that keep
// these flows from being guessed or abused, and sign-in with the OpenID
// providers the policy declares (social.go). Its tables are accounts,
// sessions, email_tokens, auth_throttle, identity_secrets and the
// social_ tables of provider sign-in.
//
// Enumeration safety: sign-up, resend and reset answer the same way
// whether an address is registered or not, and login fails with one
// message after the same argon2id work either way. What cannot be hidden
// is that an unverified account may log in: whoever signs up with a new
// address can log in at once, with an address that already had an account
// they cannot. The issue accepts that trade.
//
// The email address lives in package subject (one row per person, unique,
// normalised), not here: login finds the subject by address and then its
// account, so there is one copy of the address to change, export and erase.
// A person known only by email (a commenter, a subscriber) who signs up
// gets a new member subject without an address; only when they prove the
// address by the verification link is the email-only subject merged into
// it (promise M1). Merging at sign-up would hand that person's comments,
// subscriptions and requests to whoever typed their address.
//
// No HTTP here: the web layer decodes requests and calls this package.
package identity

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

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

// ReauthWindow is how long after a password login a session may perform
// sensitive actions without asking for the password again.
const ReauthWindow = 10 * time.Minute

// Config holds the tunable parts. The zero value of each field means its
// default.
type Config struct {
	// Argon2 parameters for new hashes; stored hashes below them are
	// rehashed at the next login. Tests lower them; production keeps the
	// default (19 MiB, t=2, p=1) or raises it.
	Argon2 Argon2
	// Session lifetimes: idle (since last use) and absolute (since login).
	SessionIdle, SessionAbsolute time.Duration
	// Staff sessions are shorter: they reach everyone's data.
	StaffSessionIdle, StaffSessionAbsolute time.Duration
	// Lifetimes of the tokens sent by mail.
	VerifyTTL, ResetTTL, EmailChangeTTL time.Duration
	// Limits of the rate limiter.
	Limits Limits
	// Secret keys the HMACs of the rate-limit table. Operators derive it
	// from the master key; when empty, a random secret is created once in
	// the database and shared by every process.
	Secret []byte
}

func (c Config) withDefaults() Config {
	if c.Argon2 == (Argon2{}) {
		c.Argon2 = DefaultArgon2
	}
	if c.Argon2.SaltLen == 0 {
		c.Argon2.SaltLen = DefaultArgon2.SaltLen
	}
	if c.Argon2.KeyLen == 0 {
		c.Argon2.KeyLen = DefaultArgon2.KeyLen
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SessionIdle, 14*24*time.Hour)
	def(&c.SessionAbsolute, 30*24*time.Hour)
	def(&c.StaffSessionIdle, 2*time.Hour)
	def(&c.StaffSessionAbsolute, 12*time.Hour)
	def(&c.VerifyTTL, 48*time.Hour)
	def(&c.ResetTTL, time.Hour)
	def(&c.EmailChangeTTL, 24*time.Hour)
	if c.Limits == (Limits{}) {
		c.Limits = DefaultLimits
	}
	def(&c.Limits.Window, DefaultLimits.Window)
	if c.Limits.MemoryMaxIPs <= 0 {
		c.Limits.MemoryMaxIPs = DefaultLimits.MemoryMaxIPs
	}
	if c.Limits.MemoryBurst <= 0 {
		c.Limits.MemoryBurst = DefaultLimits.MemoryBurst
	}
	return c
}

// Deps are the collaborators of the service. Config is optional.
type Deps struct {
	DB       *store.DB
	Clock    clock.Clock
	Log      *slog.Logger
	Subjects *subject.Store
	Door     *door.Door
	Audit    *audit.Log
	Outbox   *mail.Outbox
	Jobs     *jobs.Runner // runs the periodic Prune
	Policy   policy.Published
	// BaseURL is the public URL links in mail point to, and providers
	// send people back to.
	BaseURL string
	Config  Config
	// Getenv reads the client secrets of the OpenID providers the policy
	// declares, from the variables it names (nil: none is set, and
	// sign-in with them is off).
	Getenv func(string) string
	// HTTPClient reaches the providers (a client with a 10-second
	// timeout when nil).
	HTTPClient *http.Client
}

// The collaborators, as this package uses them.
type (
	subjects interface {
		Create(ctx context.Context, q store.Q, d *door.Door, use door.Use, kind subject.Kind, email, source string, policyVersion int) (subject.Subject, error)
		Get(ctx context.Context, q store.Q, id string) (subject.Subject, error)
		FindByEmail(ctx context.Context, q store.Q, d *door.Door, email string) (subject.Subject, error)
		SetEmail(ctx context.Context, q store.Q, d *door.Door, use door.Use, id, email string) error
		SetKind(ctx context.Context, q store.Q, id string, k subject.Kind) error
		Merge(ctx context.Context, tx *sql.Tx, from, into string) error
		Delete(ctx context.Context, q store.Q, id string) error
		Email(ctx context.Context, q store.Q, v *door.View) (string, error)
		EnsureByEmail(ctx context.Context, q store.Q, d *door.Door, use door.Use, email, source string, policyVersion int) (subject.Subject, bool, error)
	}
	auditor interface {
		Record(ctx context.Context, q store.Q, e audit.Event) error
	}
	mailer interface {
		Enqueue(ctx context.Context, q store.Q, m mail.Message) (string, error)
	}
)

// Service runs the identity flows.
type Service struct {
	db            *store.DB
	clock         clock.Clock
	log           *slog.Logger
	subjects      subjects
	door          *door.Door
	audit         auditor
	outbox        mailer
	reg           registration
	policy        policy.Published
	policyVersion int
	baseURL       string
	cfg           Config
	thr           *throttle
	// dummyHash is verified against when no account matches a login, so
	// an unknown address costs the same argon2id work as a wrong password.
	dummyHash string
	// The OpenID providers people may sign in with, by id and in the
	// policy's order.
	providers     map[string]*socialProvider
	providerOrder []string
	httpClient    *http.Client
	// passkeys is the WebAuthn relying party; nil when the base URL is not
	// a secure context, where no browser offers passkeys.
	passkeys *webauthn.WebAuthn
	// correctionHooks run with every correction a member makes (see
	// OnCorrected).
	hookMu          sync.Mutex
	correctionHooks []CorrectionHook
}

// JobPrune is the job kind of the periodic Prune.
const JobPrune = "identity.prune"

// New checks the policy's registration rules against what accounts can
// hold and returns the service. It registers a merge hook with the subject
// store so that merged subjects keep their sessions and tokens, and the
// hourly Prune with d.Jobs (call it before the runner starts).
func New(d Deps) (*Service, error) {
	switch {
	case d.DB == nil:
		return nil, errors.New("identity: Deps.DB is required")
	case d.Clock == nil:
		return nil, errors.New("identity: Deps.Clock is required")
	case d.Subjects == nil:
		return nil, errors.New("identity: Deps.Subjects is required")
	case d.Door == nil:
		return nil, errors.New("identity: Deps.Door is required")
	case d.Audit == nil:
		return nil, errors.New("identity: Deps.Audit is required")
	case d.Outbox == nil:
		return nil, errors.New("identity: Deps.Outbox is required")
	case d.Jobs == nil:
		return nil, errors.New("identity: Deps.Jobs is required")
	case d.Policy.Policy == nil:
		return nil, errors.New("identity: Deps.Policy is required")
	}
	reg, err := readRegistration(d.Policy.Policy)
	if err != nil {
		return nil, err
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := d.Config.withDefaults()
	s := &Service{
		db: d.DB, clock: d.Clock, log: log,
		subjects: d.Subjects, door: d.Door, audit: d.Audit, outbox: d.Outbox,
		reg: reg, policy: d.Policy, policyVersion: d.Policy.Number(),
		baseURL: strings.TrimRight(d.BaseURL, "/"), cfg: cfg, httpClient: d.HTTPClient,
	}
	if s.httpClient == nil {
		s.httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	if s.passkeys, err = newPasskeys(s.baseURL, d.Policy.Policy.Controller.Name, log); err != nil {
		return nil, err
	}
	if s.providers, s.providerOrder, err = readProviders(d.Policy.Policy, d.Getenv, s.baseURL, log); err != nil {
		return nil, err
	}
	secret := cfg.Secret
	if len(secret) == 0 {
		if secret, err = s.storedSecret(context.Background()); err != nil {
			return nil, err
		}
	}
	s.thr = newThrottle(d.DB, cfg.Limits, secret)
	// The dummy password is random: no one can log in with it, and it is
	// hashed with the current parameters so it costs what a real one does.
	var b [16]byte
	rand.Read(b[:])
	if s.dummyHash, err = hashPassword(fmt.Sprintf("%x", b), cfg.Argon2); err != nil {
		return nil, err
	}
	d.Subjects.OnMerge(s.mergeHook)
	d.Jobs.Handle(JobPrune, func(ctx context.Context, _ jobs.Job) error {
		_, err := s.Prune(ctx)
		return err
	})
	d.Jobs.Every(JobPrune, time.Hour)
	return s, nil
}

// storedSecret returns the database's throttle secret, creating it on
// first use (two processes racing both end with the winner's).
func (s *Service) storedSecret(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	rand.Read(fresh)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO identity_secrets (name, secret, created_at) VALUES ('throttle', $1, $2) ON CONFLICT (name) DO NOTHING`,
		fresh, s.clock.Now()); err != nil {
		return nil, fmt.Errorf("identity: create throttle secret: %w", err)
	}
	var secret []byte
	if err := s.db.QueryRowContext(ctx, `SELECT secret FROM identity_secrets WHERE name = 'throttle'`).Scan(&secret); err != nil {
		return nil, fmt.Errorf("identity: read throttle secret: %w", err)
	}
	return secret, nil
}

// mergeHook re-points this package's rows when subject from is merged into
// into. An email-only subject has no account, so the common case moves
// nothing; two subjects that both have an account cannot be merged.
func (s *Service) mergeHook(ctx context.Context, tx *sql.Tx, from, into string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE subject_id IN ($1, $2)`, from, into).Scan(&n); err != nil {
		return fmt.Errorf("identity: merge: %w", err)
	}
	if n == 2 {
		return errors.New("identity: merge: both subjects have an account")
	}
	for _, stmt := range []string{
		`UPDATE accounts SET subject_id = $2 WHERE subject_id = $1`,
		`UPDATE sessions SET subject_id = $2 WHERE subject_id = $1`,
		`UPDATE email_tokens SET subject_id = $2 WHERE subject_id = $1`,
		`UPDATE social_links SET subject_id = $2 WHERE subject_id = $1`,
		`UPDATE social_pending SET subject_id = $2 WHERE subject_id = $1`,
	} {
		if _, err := tx.ExecContext(ctx, stmt, from, into); err != nil {
			return fmt.Errorf("identity: merge: %w", err)
		}
	}
	return nil
}

// Prune deletes expired sessions, spent or expired mail tokens, sign-ins
// and pending links, and finished rate-limit windows. It runs hourly as a job; nothing
// depends on it for correctness (every read checks expiry itself).
func (s *Service) Prune(ctx context.Context) (int64, error) {
	now := s.clock.Now()
	var total int64
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM sessions WHERE expires_at <= $1 OR idle_expires_at <= $1`, []any{now}},
		// Spent tokens are kept a day so a second click says "already
		// used" rather than "unknown"; then they go.
		{`DELETE FROM email_tokens WHERE expires_at <= $1 OR used_at <= $2`, []any{now, now.Add(-24 * time.Hour)}},
		{`DELETE FROM social_flows WHERE expires_at <= $1`, []any{now}},
		{`DELETE FROM social_pending WHERE expires_at <= $1`, []any{now}},
		{`DELETE FROM passkey_challenges WHERE expires_at <= $1`, []any{now}},
		// An invitation to share an account that was never accepted
		// holds the invitee's address (as a blind index) and nothing
		// else worth keeping once its link expired.
		{`DELETE FROM delegations WHERE status = 'invited' AND expires_at <= $1`, []any{now}},
	} {
		res, err := s.db.ExecContext(ctx, q.sql, q.args...)
		if err != nil {
			return total, fmt.Errorf("identity: prune: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	n, err := s.thr.prune(ctx, now)
	if err != nil {
		return total, err
	}
	total += n
	n, err = s.pruneAbandoned(ctx, now)
	return total + n, err
}

// pruneAbandoned removes accounts that signed up with an address held by
// an email-only subject and never verified it: once their link has
// expired no one can reach them (they have no address to log in or
// reset with), yet they hold what the form gave. The subject row stays as
// an erased tombstone, as for any erasure.
func (s *Service) pruneAbandoned(ctx context.Context, now time.Time) (int64, error) {
	// Unverified accounts that kept their address are candidates too (the
	// owner may still claim them by a reset), so walk every candidate in
	// pages rather than stopping at the first hundred.
	var ids []string
	after := ""
	for {
		page, err := s.abandonedPage(ctx, now, after)
		if err != nil {
			return 0, err
		}
		for _, id := range page {
			sub, err := s.subjects.Get(ctx, s.db, id)
			if err != nil {
				return 0, fmt.Errorf("identity: prune abandoned: %w", err)
			}
			if !sub.HasEmail && sub.MergedInto == "" && !sub.Erased() {
				ids = append(ids, id)
			}
		}
		if len(page) < abandonedPageSize {
			break
		}
		after = page[len(page)-1]
	}
	var n int64
	for _, id := range ids {
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			// Look again inside the transaction: the link may have been
			// followed since.
			sub, err := s.subjects.Get(ctx, tx, id)
			if err != nil || sub.HasEmail || sub.MergedInto != "" || sub.Erased() {
				return err
			}
			for _, stmt := range []string{
				`DELETE FROM sessions WHERE subject_id = $1`,
				`DELETE FROM email_tokens WHERE subject_id = $1`,
				`DELETE FROM accounts WHERE subject_id = $1`,
			} {
				if _, err := tx.ExecContext(ctx, stmt, id); err != nil {
					return fmt.Errorf("identity: prune abandoned: %w", err)
				}
			}
			if err := s.subjects.Delete(ctx, tx, id); err != nil {
				return err
			}
			if _, err := s.door.ShredAll(ctx, tx, id); err != nil {
				return err
			}
			n++
			return s.audit.Record(ctx, tx, audit.Event{Actor: "system", Action: "account.abandoned_removed", Subject: id})
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

const abandonedPageSize = 100

// abandonedPage returns the next page of unverified member accounts
// created before the verification lifetime with no live link, by subject
// id after after. An account a provider signs in to is never abandoned.
func (s *Service) abandonedPage(ctx context.Context, now time.Time, after string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT a.subject_id FROM accounts a WHERE a.email_verified_at IS NULL AND a.role = '' AND a.created_at < $1
		AND a.subject_id > $3
		AND NOT EXISTS (SELECT 1 FROM email_tokens t WHERE t.subject_id = a.subject_id AND t.used_at IS NULL AND t.expires_at > $2)
		AND NOT EXISTS (SELECT 1 FROM social_links l WHERE l.subject_id = a.subject_id)
		ORDER BY a.subject_id LIMIT $4`, now.Add(-s.cfg.VerifyTTL), now, after, abandonedPageSize)
	if err != nil {
		return nil, fmt.Errorf("identity: prune abandoned: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("identity: prune abandoned: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// Migrations returns the schema of module "identity".
func Migrations() store.Migrations {
	return store.Embedded("identity", migrationFiles)
}

// Tables declares the tables of this package for the personal-data
// registry.
func Tables() []registry.Table {
	return []registry.Table{
		{
			Name: "accounts", Owner: "identity", Dataset: "account",
			SubjectColumn: "subject_id", Origin: registry.Provided,
			SourceColumn: "source", PolicyVersionColumn: "policy_version",
			Description: "The account you signed up with. Every field is encrypted with a key kept for you alone, destroyed when you are erased; your email address is kept with your other identifiers.",
			Columns: []registry.Column{
				{Name: "subject_id"},
				{Name: "name_sealed", Field: FieldName, Sensitive: true},
				{Name: "password_sealed", Field: FieldPassword, Sensitive: true, Hashed: true},
				{Name: "phone", Field: FieldPhone, Sensitive: true},
				{Name: "company_sealed", Field: FieldCompany, Sensitive: true},
				{Name: "organisation_sealed", Field: FieldOrganisation, Sensitive: true},
				{Name: "billing_address", Field: FieldBillingAddress, Sensitive: true},
				{Name: "location_sealed", Field: FieldLocation, Sensitive: true},
				{Name: "date_of_birth", Field: FieldDateOfBirth, Sensitive: true},
				{Name: "picture_sealed", Field: FieldPicture, Sensitive: true},
				{Name: "name", Field: FieldName, Legacy: true},
				{Name: "password_hash", Field: FieldPassword, Hashed: true, Legacy: true},
				{Name: "company", Field: FieldCompany, Legacy: true},
				{Name: "organisation", Field: FieldOrganisation, Legacy: true},
				{Name: "location", Field: FieldLocation, Legacy: true},
				{Name: "age_confirmed_at"},
				{Name: "role"},
				{Name: "email_verified_at"},
				{Name: "password_changed_at"},
				{Name: "source"},
				{Name: "policy_version"},
				{Name: "created_at"},
				{Name: "updated_at"},
			},
		},
		{
			Name: "sessions", Owner: "identity", Dataset: "sessions",
			SubjectColumn: "subject_id", Origin: registry.Observed, Source: "observed",
			Description: "Signed-in sessions: when they began and were last used, the browser family and a truncated network (IPv4 /24, IPv6 /48), both encrypted. Only a hash of the token is kept.",
			Columns: []registry.Column{
				{Name: "id"},
				{Name: "subject_id"},
				{Name: "token_hash", Hashed: true},
				{Name: "created_at", Field: "session"},
				{Name: "last_seen_at", Field: "session"},
				{Name: "idle_expires_at"},
				{Name: "expires_at"},
				{Name: "auth_at", Field: "session"},
				{Name: "user_agent_sealed", Field: "session", Sensitive: true},
				{Name: "network_sealed", Field: "session", Sensitive: true},
				{Name: "user_agent_family", Field: "session", Legacy: true},
				{Name: "network", Field: "session", Legacy: true},
				{Name: "second_factor_at", Field: "session"},
			},
		},
		{
			Name: "delegations", Owner: "identity", Dataset: "shared_accounts",
			SubjectColumn: "subject_id", Origin: registry.Provided, Source: "subject",
			Description: "Accounts shared with another account holder: a sub-account whose holder lets the primary read some of its data, or an authorised user who may read some of the primary's. Who invited, who reads, which categories, and when it was accepted or revoked; an open invitation keeps only the blind index of the address invited.",
			Columns: []registry.Column{
				{Name: "id"}, {Name: "kind"}, {Name: "primary_id"}, {Name: "subject_id"}, {Name: "reader_id"},
				{Name: "categories"}, {Name: "may_request"}, {Name: "status"},
				{Name: "invite_index", Field: FieldEmail, Hashed: true}, {Name: "token_hash", Hashed: true},
				{Name: "expires_at"}, {Name: "created_at"}, {Name: "accepted_at"}, {Name: "revoked_at"},
			},
		},
		{
			Name: "second_factors", Owner: "identity", Dataset: "second_factors",
			SubjectColumn: "subject_id", Origin: registry.Provided, Source: "subject",
			Description: "Second factors of an account: an authenticator app's secret or a passkey's public credential, encrypted, with when each was added and last used.",
			Columns: []registry.Column{
				{Name: "id"},
				{Name: "subject_id"},
				{Name: "kind"},
				{Name: "name"},
				{Name: "secret_sealed", Field: FieldPassword, Sensitive: true},
				{Name: "credential_id", Field: FieldPassword, Hashed: true},
				{Name: "last_step"},
				{Name: "created_at"},
				{Name: "confirmed_at"},
				{Name: "last_used_at"},
			},
		},
		{
			Name: "recovery_codes", Owner: "identity", Dataset: "recovery_codes",
			SubjectColumn: "subject_id", Origin: registry.Derived, Source: "steward",
			Description: "Single-use codes that stand in for a lost second factor: only a hash of each, and when it was used.",
			Columns: []registry.Column{
				{Name: "subject_id"},
				{Name: "code_hash", Field: FieldPassword, Hashed: true},
				{Name: "created_at"},
				{Name: "used_at"},
			},
		},
		{
			Name: "email_tokens", Owner: "identity", Dataset: "email_tokens",
			SubjectColumn: "subject_id", Origin: registry.Derived, Source: "steward",
			Description: "Single-use links sent by mail (address verification, password reset, change of address) and the address each was sent to, encrypted. Only a hash of the token is kept.",
			Columns: []registry.Column{
				{Name: "id"},
				{Name: "token_hash", Hashed: true},
				{Name: "subject_id"},
				{Name: "purpose"},
				{Name: "email_sealed", Field: FieldEmail, Sensitive: true},
				{Name: "email_index", Field: FieldEmail, Hashed: true},
				{Name: "created_at"},
				{Name: "expires_at"},
				{Name: "used_at"},
			},
		},
		{
			Name: "social_links", Owner: "identity", Dataset: "sign_in_links",
			SubjectColumn: "subject_id", Origin: registry.Derived, Source: "steward",
			Description: "The accounts at other services you sign in with (such as ORCID), linked to yours: which service and since when. The service's id for you is not kept, only a keyed digest of it that finds your account when you sign in.",
			Columns: []registry.Column{
				{Name: "link_index", Hashed: true},
				{Name: "subject_id"},
				{Name: "provider"},
				{Name: "created_at"},
			},
		},
		{
			Name: "social_pending", Owner: "identity", Dataset: "sign_in_link_requests",
			SubjectColumn: "subject_id", Origin: registry.Derived, Source: "steward",
			Description: "A sign-in with another service that gave your address, waiting for your password before it is linked to your account. Only hashes of the request's token and of the link; gone within minutes.",
			Columns: []registry.Column{
				{Name: "token_hash", Hashed: true},
				{Name: "subject_id"},
				{Name: "provider"},
				{Name: "link_index", Hashed: true},
				{Name: "created_at"},
				{Name: "expires_at"},
			},
		},
		{
			Name: "social_flows", Owner: "identity", Origin: registry.System,
			Description: "Sign-ins with another service under way: a hash of the state the browser carries, the nonce and PKCE verifier of the exchange, and which service. Nothing personal; each is spent once and lives minutes.",
			Columns: []registry.Column{
				{Name: "state_hash"},
				{Name: "provider"},
				{Name: "nonce"},
				{Name: "verifier"},
				{Name: "age_confirmed"},
				{Name: "created_at"},
				{Name: "expires_at"},
			},
		},
		{
			Name: "passkey_challenges", Owner: "identity", Origin: registry.System,
			Description: "Passkey ceremonies under way: the random challenge and its parameters, and a hash of the session that asked. Nothing personal; each is spent once and lives minutes.",
			Columns: []registry.Column{
				{Name: "session_hash"},
				{Name: "ceremony"},
				{Name: "data"},
				{Name: "created_at"},
				{Name: "expires_at"},
			},
		},
		{
			Name: "auth_throttle", Owner: "identity", Origin: registry.System,
			Description: "Rate-limit counts. Keys are HMACs of an email address or a client network under a server secret, kept for one 15-minute window: no subject can be found from them without the secret and the address.",
			Columns: []registry.Column{
				{Name: "key"},
				{Name: "scope"},
				{Name: "failures"},
				{Name: "window_start"},
				{Name: "locked_until"},
				{Name: "updated_at"},
			},
		},
		{
			Name: "identity_secrets", Owner: "identity", Origin: registry.System,
			Description: "The random secret of the rate-limit HMACs when the operator supplies none.",
			Columns: []registry.Column{
				{Name: "name"},
				{Name: "secret"},
				{Name: "created_at"},
			},
		},
	}
}
