// Package openid makes Steward the OpenID provider of the operator's own
// applications: a journal's submission system, a community's front end.
// The protocol — discovery, the authorization code flow with PKCE, ID
// tokens, userinfo, JWKS, revocation — is zitadel/oidc's certified `op`
// package; this package is its storage, and everything that decides what
// leaves:
//
//   - Clients are the policy's recipients that declare a client: block.
//     Their secrets come from the environment; a client whose variable is
//     unset does not exist. Redirect URIs match exactly.
//   - Each scope a client may ask for serves one purpose and releases
//     named fields. A scope resting on consent is released only while the
//     member's consent to that purpose for that client (ledger scope
//     "client:ID") is in force; the consent screen records it with its
//     signed receipt. Every other claim is never released: the claims are
//     built from the declaration, not filtered from a profile.
//   - Every release reads the account through the door for the scope's
//     purpose, as the recipient, and is audited with the claim names.
//   - The subject a client sees is pairwise: a keyed digest of the member
//     and the client, so two applications cannot link their users and no
//     application learns Steward's id.
//   - Members see the applications they signed in to and revoke them;
//     revoking ends the tokens at once and withdraws what they consented
//     to for that application.
//   - Signing keys are RSA (RS256, which every client library accepts),
//     sealed with a key derived from the master key, rotated by a periodic
//     job; a retired key stays in the JWKS until nothing it signed is
//     still valid.
//
// Refresh tokens, the implicit and hybrid flows, dynamic registration and
// the device flow are not offered.
package openid

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/consent"
	"steward/internal/door"
	"steward/internal/identity"
	"steward/internal/jobs"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations are the package's tables.
func Migrations() store.Migrations { return store.Embedded("openid", migrationFS) }

// Tables declares the package's tables to the registry.
func Tables() []registry.Table {
	return []registry.Table{
		{
			Name: "openid_requests", Owner: "openid", Origin: registry.Observed, Dataset: "application_sign_ins",
			SubjectColumn: "subject_id", Source: "subject",
			Columns: []registry.Column{{Name: "id"}, {Name: "client_id"}, {Name: "redirect_uri"}, {Name: "scopes"}, {Name: "state"},
				{Name: "nonce"}, {Name: "response_type"}, {Name: "response_mode"}, {Name: "prompt"}, {Name: "max_age"}, {Name: "hint_subject", Hashed: true}, {Name: "code_challenge"},
				{Name: "code_challenge_method"}, {Name: "subject_id"}, {Name: "granted_scopes"}, {Name: "auth_time"}, {Name: "amr"},
				{Name: "code_hash", Hashed: true}, {Name: "created_at"}, {Name: "expires_at"}},
			Description: "A sign-in to one of our applications in progress: which application asked, for what, and when you " +
				"approved it. It is deleted when the application collects it, and within ten minutes in any case.",
		},
		{
			Name: "openid_tokens", Owner: "openid", Origin: registry.Derived, Dataset: "application_tokens",
			SubjectColumn: "subject_id", Source: "derived",
			Columns: []registry.Column{{Name: "id"}, {Name: "client_id"}, {Name: "subject_id"}, {Name: "scopes"},
				{Name: "created_at"}, {Name: "expires_at"}},
			Description: "The access an application you signed in to holds for a short while: which application, for which " +
				"scopes, until when. It ends when you revoke the application.",
		},
		{
			Name: "openid_grants", Owner: "openid", Origin: registry.Provided, Dataset: "connected_applications",
			SubjectColumn: "subject_id", Source: "subject",
			Columns: []registry.Column{{Name: "subject_id"}, {Name: "client_id"}, {Name: "pairwise", Hashed: true}, {Name: "scopes"}, {Name: "created_at"},
				{Name: "updated_at"}, {Name: "last_used_at"}},
			Description: "The applications you signed in to with your account, the scopes you were asked about, and when " +
				"each last received your details.",
		},
		{
			Name: "openid_keys", Owner: "openid", Origin: registry.System,
			Columns:     []registry.Column{{Name: "id"}, {Name: "algorithm"}, {Name: "private_sealed"}, {Name: "created_at"}},
			Description: "The keys Steward signs sign-in tokens with, sealed with a key derived from the master key.",
		},
	}
}

// Lifetimes of what the provider issues.
const (
	// RequestTTL bounds a sign-in from the application's request to the
	// code's exchange.
	RequestTTL = 10 * time.Minute
	// TokenTTL is how long an access token opens userinfo.
	TokenTTL = 15 * time.Minute
	// IDTokenTTL is how long an ID token is valid.
	IDTokenTTL = 10 * time.Minute
	// RotateEvery is the age at which the rotation job makes a new
	// signing key; KeepRetired how long a replaced key stays published.
	RotateEvery = 30 * 24 * time.Hour
	KeepRetired = 24 * time.Hour
)

// Job kinds.
const (
	JobRotate = "openid.rotate"
	JobPrune  = "openid.prune"
)

// Deps are what the provider needs.
type Deps struct {
	DB       *store.DB
	Clock    clock.Clock
	Log      *slog.Logger
	Policy   *policy.Policy
	Door     *door.Door
	Identity *identity.Service
	Consent  *consent.Ledger
	Audit    *audit.Log
	Jobs     *jobs.Runner
	// BaseURL is the public URL of the deployment; the issuer is
	// BaseURL/oidc.
	BaseURL string
	// Getenv reads the client secrets from the variables the policy names.
	Getenv func(string) string
	// TokenSecret encrypts access tokens: 32 bytes derived from the
	// master key. (The signing keys are sealed by the door.)
	TokenSecret []byte
	// Disclosures records each release of claims in the register of
	// disclosures, and may refuse it (nil: none is recorded).
	Disclosures Discloser
}

// Discloser is the one way data leaves for a recipient (package
// disclosure): each release of claims to an application goes through it.
type Discloser interface {
	DiscloseRelease(ctx context.Context, r Release) error
}

// Release is one release of claims to an application, for one purpose.
type Release struct {
	Client, Purpose, SubjectID string
	// Values are the released fields (policy field names) with their
	// values.
	Values map[string]string
	// Consent says the release rests on the member's consent for this
	// client (ledger scope "client:ID"); otherwise on the contract.
	Consent bool
}

// Service is the provider.
type Service struct {
	d        Deps
	clients  map[string]*client
	provider *op.Provider
	keys     *keyring
	store    *storage
}

// PathPrefix is where the provider's endpoints are served; the issuer is
// the base URL followed by it.
const PathPrefix = "/oidc"

// SignInPath is Steward's page where a member approves a sign-in.
const SignInPath = PathPrefix + "/sign-in"

// New builds the provider. Clients whose secret variable is unset are
// left out with a warning.
func New(ctx context.Context, d Deps) (*Service, error) {
	if len(d.TokenSecret) != 32 {
		return nil, errors.New("openid: the token secret must be 32 bytes")
	}
	base := strings.TrimSuffix(d.BaseURL, "/")
	s := &Service{d: d, clients: map[string]*client{}}
	getenv := d.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	for _, r := range d.Policy.Clients() {
		secret := getenv(r.Client.SecretEnv)
		if secret == "" {
			d.Log.Warn("openid: client left out: its secret variable is unset", "client", r.ID, "variable", r.Client.SecretEnv)
			continue
		}
		s.clients[r.ID] = &client{r: r, secret: secret, loginURL: base + SignInPath + "?request="}
	}
	s.keys = newKeyring(d.DB, d.Clock, d.Door)
	var err error
	s.store = &storage{s: s}
	cfg := &op.Config{CodeMethodS256: true, AuthMethodPost: true, SupportedScopes: s.supportedScopes()}
	copy(cfg.CryptoKey[:], d.TokenSecret)
	cfg.CryptoKeyId = "t1"
	// No CORS: the clients are servers, and op's default would answer
	// any origin with credentials allowed.
	opts := []op.Option{op.WithCORSOptions(nil)}
	if strings.HasPrefix(base, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	if s.provider, err = op.NewProvider(cfg, s.store, op.StaticIssuer(base+PathPrefix), opts...); err != nil {
		return nil, fmt.Errorf("openid: %w", err)
	}
	d.Jobs.Handle(JobRotate, func(ctx context.Context, _ jobs.Job) error { return s.keys.rotate(ctx) })
	d.Jobs.Every(JobRotate, 24*time.Hour)
	d.Jobs.Handle(JobPrune, func(ctx context.Context, _ jobs.Job) error {
		_, err := s.Prune(ctx)
		return err
	})
	d.Jobs.Every(JobPrune, time.Hour)
	return s, nil
}

// Handler serves the protocol's endpoints, below PathPrefix (which the
// caller strips).
func (s *Service) Handler() http.Handler { return s.provider }

// Issuer is the provider's issuer URL.
func (s *Service) Issuer() string { return strings.TrimSuffix(s.d.BaseURL, "/") + PathPrefix }

// Clients lists the ids of the clients that can sign people in.
func (s *Service) Clients() []string {
	var out []string
	for id := range s.clients {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// supportedScopes are openid and every scope a client declares, for the
// discovery document.
func (s *Service) supportedScopes() []string {
	out := []string{"openid"}
	for _, c := range s.clients {
		for _, sc := range c.r.Client.Scopes {
			if !slices.Contains(out, sc.Scope) {
				out = append(out, sc.Scope)
			}
		}
	}
	slices.Sort(out[1:])
	return out
}

// pairwise is the subject a client knows a member by: a keyed digest of
// the member's id and the client's, so it is stable for the client and
// links nothing across clients.
func (s *Service) pairwise(clientID, subjectID string) string {
	return base64.RawURLEncoding.EncodeToString(s.d.Door.BlindIndex("openid pairwise subject", clientID+"\x00"+subjectID)[:20])
}

// Prune deletes requests and tokens past their time.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	now := s.d.Clock.Now()
	var n int64
	for _, q := range []string{`DELETE FROM openid_requests WHERE expires_at <= $1`, `DELETE FROM openid_tokens WHERE expires_at <= $1`} {
		res, err := s.d.DB.ExecContext(ctx, q, now)
		if err != nil {
			return n, fmt.Errorf("openid: prune: %w", err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	pruned, err := s.keys.prune(ctx)
	return n + pruned, err
}

// secretMatches compares a presented client secret in constant time.
func secretMatches(want, got string) bool {
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}
