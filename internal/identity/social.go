package identity

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/subject"
)

// Sign-in with the OpenID providers the policy declares, as a relying
// party: the authorization code flow with PKCE (S256), a state bound to
// the browser and a nonce bound to the ID token, all three kept here,
// spent once and gone within minutes. go-oidc checks the ID token (the
// provider's signature by a key of its JWKS, with the algorithms the
// provider announces, so never "none"; issuer; audience; expiry).
//
// Only the claims the policy lets a provider import are kept: the claims
// are decoded into a map and the declared ones copied out; the rest never
// leave importClaims. The link to the provider's account is a blind index
// of the issuer and the provider's subject id, like an address's.
//
// A provider's address never takes over an account: an address that
// already has an account gets a pending link that only the account's
// password completes.

// FieldPicture is the profile picture a provider may give at sign-up,
// kept as the provider's URL.
const FieldPicture = "picture"

const (
	// SocialFlowTTL bounds a sign-in at the provider: long enough to log
	// in there, short enough that a stolen state is soon worthless.
	SocialFlowTTL = 10 * time.Minute
	// SocialPendingTTL bounds the password proof of a pending link.
	SocialPendingTTL = 15 * time.Minute
	// linkIndexKind is the blind-index kind of (issuer, subject) links.
	linkIndexKind = "oidc-subject"
	// sourceThirdParty prefixes the provider's id in the source of what
	// a sign-in imports ("third-party:orcid").
	sourceThirdParty = "third-party:"
	// maxPictureURL bounds the picture URL a provider gives.
	maxPictureURL = 2048
)

// importable maps each field a sign-in may import
// (policy.ImportableClaims) to its standard claim (OpenID Connect Core
// §5.1).
var importable = map[string]string{
	FieldName:    "name",
	FieldEmail:   "email",
	FieldPicture: "picture",
}

// ProviderInfo is what a page needs to offer a provider.
type ProviderInfo struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Claims []string `json:"claims"`
}

// LinkedProvider is a provider linked to an account.
type LinkedProvider struct {
	Provider  string    `json:"provider"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// SocialStart is a sign-in sent to a provider: the URL to send the
// browser to, and the state the browser must bring back beside the
// provider's answer (the web layer keeps it in a cookie), so a sign-in
// begun in one browser cannot be finished in another.
type SocialStart struct {
	URL   string
	State string
}

// SocialCallback is the provider's answer as the browser brings it.
type SocialCallback struct {
	State        string // the state in the callback's query
	BrowserState string // the state the browser kept since BeginSocial
	Code         string
	// Error is the provider's error code when it sent none.
	Error string
}

// SocialOutcome is a finished sign-in: a session, or a link waiting for
// the password of the account that holds the address the provider gave.
type SocialOutcome struct {
	Session Session
	Token   string
	// Created says the sign-in created the account.
	Created bool
	// LinkToken, when set, is the pending link (no session was opened).
	LinkToken string
	// Provider is the provider's name, for the page.
	Provider string
}

// socialProvider is a provider the policy declares and, once
// discovered, its endpoints and verifier.
type socialProvider struct {
	policy.IdentityProvider
	scopes []string

	mu       sync.Mutex
	disc     *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
}

// readProviders takes the providers the policy declares (policy check
// has vouched for each) with their client secrets, read from the
// variables the policy names. A provider whose secret is missing is left
// out with a warning, so a site can declare one before its registration
// with the provider is done.
func readProviders(p *policy.Policy, getenv func(string) string, base string, log *slog.Logger) (map[string]*socialProvider, []string, error) {
	out := map[string]*socialProvider{}
	var order []string
	for _, ip := range p.IdentityProviders {
		scopes := []string{oidc.ScopeOpenID}
		for _, c := range ip.Claims {
			if _, ok := importable[c]; !ok {
				return nil, nil, fmt.Errorf("identity: provider %s: a sign-in cannot import %q", ip.ID, c)
			}
			// Ask only for the scopes the declared claims need.
			scope := "profile"
			if c == FieldEmail {
				scope = "email"
			}
			if !slices.Contains(scopes, scope) {
				scopes = append(scopes, scope)
			}
		}
		secret := ""
		if getenv != nil {
			secret = getenv(ip.SecretEnv)
		}
		if secret == "" {
			log.Warn("identity: the secret of an identity provider is not set; sign-in with it is off",
				slog.String("provider", ip.ID), slog.String("variable", ip.SecretEnv))
			continue
		}
		out[ip.ID] = &socialProvider{IdentityProvider: ip, scopes: scopes,
			oauth: oauth2.Config{ClientID: ip.ClientID, ClientSecret: secret, Scopes: scopes, RedirectURL: base + "/login/" + ip.ID + "/callback"}}
		order = append(order, ip.ID)
	}
	return out, order, nil
}

// discovered returns the provider with its endpoints and verifier,
// fetching its discovery document the first time (again after a failure).
func (p *socialProvider) discovered(ctx context.Context, client *http.Client, now func() time.Time) (*socialProvider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.disc != nil {
		return p, nil
	}
	d, err := oidc.NewProvider(oidc.ClientContext(ctx, client), p.Issuer)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "%s cannot be reached just now; try again later", p.Name)
	}
	p.disc = d
	p.oauth.Endpoint = d.Endpoint()
	p.verifier = d.Verifier(&oidc.Config{ClientID: p.ClientID, Now: now})
	return p, nil
}

// Providers lists the providers people may sign in with, in the policy's
// order.
func (s *Service) Providers() []ProviderInfo {
	out := make([]ProviderInfo, 0, len(s.providerOrder))
	for _, id := range s.providerOrder {
		p := s.providers[id]
		out = append(out, ProviderInfo{ID: p.ID, Name: p.Name, Claims: slices.Clone(p.Claims)})
	}
	return out
}

func (s *Service) socialProvider(id string) (*socialProvider, error) {
	p := s.providers[id]
	if p == nil {
		return nil, fault.New(fault.NotFound, "this site offers no sign-in with %q", truncateID(id))
	}
	return p, nil
}

func truncateID(id string) string {
	if len(id) > 32 {
		id = id[:32]
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, id)
}

// BeginSocial starts a sign-in with a provider. ageConfirmed is the
// applicant's confirmation of the minimum age, needed when the sign-in
// creates an account under a policy that checks age by confirmation.
func (s *Service) BeginSocial(ctx context.Context, providerID string, ageConfirmed bool, m Meta) (SocialStart, error) {
	now := s.clock.Now()
	if !s.thr.allowMemory(m.IP, now) {
		return SocialStart{}, errThrottled()
	}
	p, err := s.socialProvider(providerID)
	if err != nil {
		return SocialStart{}, err
	}
	if p, err = p.discovered(ctx, s.httpClient, s.clock.Now); err != nil {
		return SocialStart{}, err
	}
	state, stateHash := newToken()
	nonce, _ := newToken()
	verifier := oauth2.GenerateVerifier()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO social_flows (state_hash, provider, nonce, verifier, age_confirmed, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, stateHash, p.ID, nonce, verifier, ageConfirmed, now, now.Add(SocialFlowTTL)); err != nil {
		return SocialStart{}, fmt.Errorf("identity: begin sign-in: %w", err)
	}
	return SocialStart{URL: p.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), State: state}, nil
}

// refusal is a refused sign-in: reason is for the audit log, err for the
// person.
type refusal struct {
	reason string
	err    *fault.Error
}

func (r *refusal) Error() string {
	return "identity: sign-in refused (" + r.reason + "): " + r.err.Error()
}
func (r *refusal) Unwrap() error { return r.err }

func refuse(reason string, code fault.Code, format string, args ...any) *refusal {
	return &refusal{reason: reason, err: fault.New(code, format, args...)}
}

// flow is a spent sign-in under way.
type flow struct {
	provider, nonce, verifier string
	ageConfirmed              bool
	expiresAt                 time.Time
}

// FinishSocial completes a sign-in with the provider's answer: a known
// link opens a session; an unknown one creates an account with the
// declared claims, unless the address the provider gave already has an
// account, which gets a pending link for LinkWithPassword. Every refusal
// (state missing, mismatched, replayed or expired; the provider's error;
// a code the provider does not accept; an ID token with a bad signature,
// no signature, another audience or issuer, expired, or without the
// sign-in's nonce) is audited and stores nothing.
func (s *Service) FinishSocial(ctx context.Context, providerID string, cb SocialCallback, m Meta) (SocialOutcome, error) {
	now := s.clock.Now()
	if !s.thr.allowMemory(m.IP, now) {
		return SocialOutcome{}, errThrottled()
	}
	p, err := s.socialProvider(providerID)
	if err != nil {
		return SocialOutcome{}, err
	}
	out, err := s.finishSocial(ctx, p, cb, m, now)
	var r *refusal
	if errors.As(err, &r) {
		if aerr := s.audit.Record(ctx, s.db, audit.Event{Actor: "anonymous", Action: "social.login_failed",
			Detail: map[string]string{"provider": p.ID, "reason": r.reason}}); aerr != nil {
			return SocialOutcome{}, fmt.Errorf("identity: sign-in: %w", aerr)
		}
		s.log.InfoContext(ctx, "sign-in refused", slog.String("provider", p.ID), slog.String("reason", r.reason), slog.String("error", err.Error()))
		return SocialOutcome{}, r.err
	}
	out.Provider = p.Name
	return out, err
}

func (s *Service) finishSocial(ctx context.Context, p *socialProvider, cb SocialCallback, m Meta, now time.Time) (SocialOutcome, error) {
	const restart = "; start the sign-in again"
	hash, ok := tokenHash(cb.State)
	if !ok {
		return SocialOutcome{}, refuse("state_missing", fault.Invalid, "the sign-in came back without a valid state"+restart)
	}
	// Spent whatever happens next: a state works once.
	f, err := s.spendFlow(ctx, hash)
	if err != nil {
		return SocialOutcome{}, err
	}
	switch {
	case subtle.ConstantTimeCompare([]byte(cb.State), []byte(cb.BrowserState)) != 1:
		return SocialOutcome{}, refuse("state_mismatch", fault.Forbidden, "the sign-in was not started in this browser"+restart)
	case f == nil:
		return SocialOutcome{}, refuse("state_unknown", fault.Invalid, "this sign-in was already used or is unknown"+restart)
	case !now.Before(f.expiresAt):
		return SocialOutcome{}, refuse("state_expired", fault.Invalid, "this sign-in took too long"+restart)
	case f.provider != p.ID:
		return SocialOutcome{}, refuse("provider_mismatch", fault.Invalid, "this sign-in was started with another provider"+restart)
	case cb.Error != "":
		return SocialOutcome{}, refuse("provider_error", fault.Forbidden, "%s did not sign you in (%s)", p.Name, providerError(cb.Error))
	case cb.Code == "":
		return SocialOutcome{}, refuse("code_missing", fault.Invalid, "%s sent no authorization code%s", p.Name, restart)
	}
	if p, err = p.discovered(ctx, s.httpClient, s.clock.Now); err != nil {
		return SocialOutcome{}, err
	}
	cctx := oidc.ClientContext(ctx, s.httpClient)
	tok, err := p.oauth.Exchange(cctx, cb.Code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		s.log.InfoContext(ctx, "token exchange failed", slog.String("provider", p.ID), slog.String("error", err.Error()))
		return SocialOutcome{}, refuse("code_refused", fault.Forbidden, "%s did not accept the sign-in%s", p.Name, restart)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return SocialOutcome{}, refuse("id_token_missing", fault.Forbidden, "%s sent no ID token", p.Name)
	}
	idt, err := p.verify(ctx, raw, f.nonce, tok.AccessToken)
	if err != nil {
		return SocialOutcome{}, err
	}
	got, err := p.importClaims(idt.Claims)
	if err != nil {
		return SocialOutcome{}, refuse("claims_malformed", fault.Forbidden, "%s sent claims that cannot be read", p.Name)
	}
	if missing := p.missing(got); len(missing) > 0 && p.disc.UserInfoEndpoint() != "" {
		// Some providers put profile claims only in the userinfo answer.
		// It counts only for the ID token's subject (Core §5.3.2).
		ui, err := p.disc.UserInfo(cctx, oauth2.StaticTokenSource(tok))
		if err == nil && ui.Subject == idt.Subject {
			more, err := p.importClaims(ui.Claims)
			if err == nil {
				got.fill(more, missing)
			}
		} else if err != nil {
			s.log.InfoContext(ctx, "userinfo failed", slog.String("provider", p.ID), slog.String("error", err.Error()))
		}
	}
	index := s.door.BlindIndex(linkIndexKind, idt.Issuer+"\x00"+idt.Subject)
	// A first sign-in that races another with the same link loses on the
	// link's key and runs again, finding the winner's account.
	var out SocialOutcome
	for attempt := 0; ; attempt++ {
		err = s.db.InTx(ctx, func(tx *sql.Tx) error {
			var err error
			out, err = s.socialSignIn(ctx, tx, p, index, got, f.ageConfirmed, m, now)
			return err
		})
		if fault.CodeOf(err) != fault.Conflict || attempt == 1 {
			break
		}
	}
	if err != nil {
		return SocialOutcome{}, err
	}
	return out, nil
}

// spendFlow deletes the flow of a state and returns it (nil when none).
func (s *Service) spendFlow(ctx context.Context, hash []byte) (*flow, error) {
	var f flow
	err := s.db.QueryRowContext(ctx, `DELETE FROM social_flows WHERE state_hash = $1 RETURNING provider, nonce, verifier, age_confirmed, expires_at`, hash).
		Scan(&f.provider, &f.nonce, &f.verifier, &f.ageConfirmed, &f.expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("identity: spend sign-in state: %w", err)
	}
	f.expiresAt = f.expiresAt.UTC()
	return &f, nil
}

// providerErrorRE is an OAuth error code (RFC 6749 §4.1.2.1).
var providerErrorRE = regexp.MustCompile(`^[a-z_]{1,64}$`)

// providerError shows a provider's error code when it is one (RFC 6749
// §4.1.2.1 codes are a few lower-case words), never free text from the
// query.
func providerError(code string) string {
	if providerErrorRE.MatchString(code) {
		return code
	}
	return "an error"
}

// verify checks an ID token, its nonce, its authorised party when it
// names several audiences, and its at_hash against the access token
// that came with it (OpenID Connect Core §3.1.3.7–8); a refusal names the
// reason.
func (p *socialProvider) verify(ctx context.Context, raw, nonce, accessToken string) (*oidc.IDToken, error) {
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		msg := err.Error()
		switch {
		case errors.As(err, &expired):
			return nil, refuse("id_token_expired", fault.Forbidden, "the ID token from %s has expired; start the sign-in again", p.Name)
		case strings.Contains(msg, "expected audience"):
			return nil, refuse("id_token_audience", fault.Forbidden, "the ID token from %s was issued to another application", p.Name)
		case strings.Contains(msg, "issued by a different provider"):
			return nil, refuse("id_token_issuer", fault.Forbidden, "the ID token did not come from %s", p.Name)
		case strings.Contains(msg, "malformed jwt"):
			// go-jose refuses an algorithm outside the provider's list
			// ("none" among them) while parsing.
			return nil, refuse("id_token_malformed", fault.Forbidden, "the ID token from %s is not signed with an algorithm it announces", p.Name)
		default:
			return nil, refuse("id_token_signature", fault.Forbidden, "the ID token is not signed by a key of %s", p.Name)
		}
	}
	if idt.Subject == "" {
		return nil, refuse("id_token_subject", fault.Forbidden, "the ID token from %s names no one", p.Name)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, refuse("id_token_nonce", fault.Forbidden, "the ID token from %s belongs to another sign-in; start again", p.Name)
	}
	var azp struct {
		AZP string `json:"azp"`
	}
	if err := idt.Claims(&azp); err != nil {
		return nil, refuse("id_token_malformed", fault.Forbidden, "the ID token from %s cannot be read", p.Name)
	}
	if (len(idt.Audience) > 1 || azp.AZP != "") && azp.AZP != p.oauth.ClientID {
		return nil, refuse("id_token_azp", fault.Forbidden, "the ID token from %s was issued for another application", p.Name)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return nil, refuse("id_token_at_hash", fault.Forbidden, "the ID token from %s does not match the access token sent with it", p.Name)
		}
	}
	return idt, nil
}

// imported is what a sign-in keeps of the claims: the declared ones,
// cleaned. emailVerified is the provider's word on the address.
type imported struct {
	name, email, picture string
	emailVerified        bool
}

// importClaims decodes a claim set into a map and copies out the claims
// the policy declares for the provider, cleaned. Everything else the
// provider sent stays in the map and is dropped with it. A declared value
// that is not valid (a name with control characters, a picture that is
// not an https URL) is left out rather than refusing the sign-in.
func (p *socialProvider) importClaims(decode func(any) error) (imported, error) {
	var all map[string]any
	if err := decode(&all); err != nil {
		return imported{}, err
	}
	var got imported
	for _, field := range p.Claims {
		v, _ := all[importable[field]].(string)
		if v == "" {
			continue
		}
		switch field {
		case FieldName:
			if clean, err := cleanText(FieldName, v, supported[FieldName]); err == nil {
				got.name = clean
			}
		case FieldEmail:
			if norm, err := subject.NormalizeEmail(v); err == nil {
				got.email = norm
				got.emailVerified = claimTrue(all["email_verified"])
			}
		case FieldPicture:
			if u, err := url.Parse(v); err == nil && u.Scheme == "https" && u.Host != "" && len(v) <= maxPictureURL && !strings.ContainsFunc(v, unicode.IsControl) {
				got.picture = v
			}
		}
	}
	return got, nil
}

// claimTrue reads a boolean claim; some providers send "true" as a string.
func claimTrue(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return b == "true"
	}
	return false
}

// missing lists the declared claims the sign-in has no value for.
func (p *socialProvider) missing(got imported) []string {
	var out []string
	for _, f := range p.Claims {
		if got.value(f) == "" {
			out = append(out, f)
		}
	}
	return out
}

func (g imported) value(field string) string {
	switch field {
	case FieldName:
		return g.name
	case FieldEmail:
		return g.email
	case FieldPicture:
		return g.picture
	}
	return ""
}

// fill takes the fields named from more.
func (g *imported) fill(more imported, fields []string) {
	for _, f := range fields {
		switch f {
		case FieldName:
			g.name = more.name
		case FieldEmail:
			g.email, g.emailVerified = more.email, more.emailVerified
		case FieldPicture:
			g.picture = more.picture
		}
	}
}

// fields lists the fields with a value, sorted, for the audit log.
func (g imported) fields() string {
	var out []string
	for f := range importable {
		if g.value(f) != "" {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// socialSignIn signs in the holder of a link, or creates the account, or
// leaves a pending link for the account that holds the address.
func (s *Service) socialSignIn(ctx context.Context, tx *sql.Tx, p *socialProvider, index []byte, got imported, ageConfirmed bool, m Meta, now time.Time) (SocialOutcome, error) {
	var subjectID string
	err := tx.QueryRowContext(ctx, `SELECT subject_id FROM social_links WHERE link_index = $1`, index).Scan(&subjectID)
	switch {
	case err == nil:
		return s.socialSession(ctx, tx, p, subjectID, m, now, false)
	case !errors.Is(err, sql.ErrNoRows):
		return SocialOutcome{}, fmt.Errorf("identity: find link: %w", err)
	}
	withEmail := got.email != ""
	if got.email != "" {
		holder, err := s.subjects.FindByEmail(ctx, tx, s.door, got.email)
		switch {
		case err == nil:
			a, err := loadAccount(ctx, tx, holder.ID)
			if err == nil {
				return s.pendLink(ctx, tx, p, holder.ID, a, index, now)
			}
			if fault.CodeOf(err) != fault.NotFound {
				return SocialOutcome{}, err
			}
			// Someone known only by this address (a commenter): as at
			// sign-up, the account gets the address, and that person's
			// records, only when our own link to it is followed.
			withEmail = false
		case fault.CodeOf(err) != fault.NotFound:
			return SocialOutcome{}, err
		}
	}
	switch s.reg.ageCheck {
	case ageCheckDateOfBirth:
		return SocialOutcome{}, refuse("age_unchecked", fault.Forbidden,
			"no account is linked to this %s account; sign up with the form first (it asks your date of birth), then sign in with %s to link it", p.Name, p.Name)
	case ageCheckConfirmation:
		if !ageConfirmed {
			return SocialOutcome{}, refuse("age_unconfirmed", fault.Forbidden,
				"no account is linked to this %s account; to create one, confirm on the sign-up page that you are at least %d years old", p.Name, s.reg.minAge)
		}
	}
	subjectID, err = s.createSocialAccount(ctx, tx, p, index, got, withEmail, ageConfirmed, now)
	if err != nil {
		return SocialOutcome{}, err
	}
	return s.socialSession(ctx, tx, p, subjectID, m, now, true)
}

// socialSession opens a session for the holder of a link.
func (s *Service) socialSession(ctx context.Context, tx *sql.Tx, p *socialProvider, subjectID string, m Meta, now time.Time, created bool) (SocialOutcome, error) {
	a, err := loadAccount(ctx, tx, subjectID)
	if err != nil {
		return SocialOutcome{}, err
	}
	sub, err := s.subjects.Get(ctx, tx, subjectID)
	if err != nil {
		return SocialOutcome{}, fmt.Errorf("identity: sign-in: %w", err)
	}
	if sub.Erased() || sub.MergedInto != "" {
		return SocialOutcome{}, refuse("account_gone", fault.Forbidden, "the account linked to this %s account no longer exists", p.Name)
	}
	sess, tok, err := s.openSession(ctx, tx, subjectID, a.role, m, now)
	if err != nil {
		return SocialOutcome{}, err
	}
	if err := s.audit.Record(ctx, tx, audit.Event{Actor: subjectID, Action: "session.login", Subject: subjectID,
		Detail: map[string]string{"session": sess.ID, "provider": p.ID}}); err != nil {
		return SocialOutcome{}, err
	}
	return SocialOutcome{Session: sess, Token: tok, Created: created}, nil
}

// createSocialAccount records a member and its account from a provider's
// claims, sealed, with the provider as their source, and the link. The
// address counts as verified only when the provider says so; otherwise
// (or when withEmail is false because an email-only subject holds it)
// our own verification link is mailed to it.
func (s *Service) createSocialAccount(ctx context.Context, tx *sql.Tx, p *socialProvider, index []byte, got imported, withEmail, ageConfirmed bool, now time.Time) (string, error) {
	source := sourceThirdParty + p.ID
	subjEmail := ""
	if withEmail {
		subjEmail = got.email
	}
	sub, err := s.subjects.Create(ctx, tx, s.door, door.Subject(), subject.KindMember, subjEmail, source, s.policyVersion)
	if err != nil {
		return "", err
	}
	v, err := s.door.Subject(ctx, tx, door.Subject(), sub.ID)
	if err != nil {
		return "", err
	}
	var name, picture door.Sealed
	if got.name != "" {
		if name, err = v.Seal(ctx, FieldName, got.name); err != nil {
			return "", fmt.Errorf("identity: seal name: %w", err)
		}
	}
	if got.picture != "" {
		if picture, err = v.Seal(ctx, FieldPicture, got.picture); err != nil {
			return "", fmt.Errorf("identity: seal picture: %w", err)
		}
	}
	var verifiedAt, ageAt any
	if withEmail && got.emailVerified {
		verifiedAt = now
	}
	if ageConfirmed && s.reg.ageCheck == ageCheckConfirmation {
		ageAt = now
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (subject_id, name_sealed, picture_sealed, age_confirmed_at, role, email_verified_at, source, policy_version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, '', $5, $6, $7, $8, $8)`, sub.ID, name, picture, ageAt, verifiedAt, source, s.policyVersion, now); err != nil {
		return "", fmt.Errorf("identity: insert account: %w", err)
	}
	if err := s.insertLink(ctx, tx, index, sub.ID, p.ID, now); err != nil {
		return "", err
	}
	if got.email != "" && verifiedAt == nil {
		tok, err := s.issueToken(ctx, tx, door.Subject(), sub.ID, purposeVerify, got.email, s.cfg.VerifyTTL)
		if err != nil {
			return "", err
		}
		if err := s.mailVerification(ctx, tx, sub.ID, got.email, tok); err != nil {
			return "", err
		}
	}
	detail := map[string]string{"source": source, "fields": got.fields()}
	if got.email != "" && !withEmail {
		detail["merge"] = "on-verification"
	}
	if err := s.audit.Record(ctx, tx, audit.Event{Actor: sub.ID, Action: "account.signup", Subject: sub.ID, Detail: detail}); err != nil {
		return "", err
	}
	return sub.ID, nil
}

// insertLink records a link; fault.Conflict when the link or the
// account's link to the provider exists already.
func (s *Service) insertLink(ctx context.Context, q store.Q, index []byte, subjectID, provider string, now time.Time) error {
	res, err := q.ExecContext(ctx, `INSERT INTO social_links (link_index, subject_id, provider, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
		index, subjectID, provider, now)
	if err != nil {
		return fmt.Errorf("identity: link: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fault.New(fault.Conflict, "this account is already linked to an account at this provider, or that account to another one")
	}
	return nil
}

// pendLink leaves a link to an existing account that only its password
// completes, and tells the browser. Staff accounts are never linked:
// they reach everyone's data, and sign in with their password.
func (s *Service) pendLink(ctx context.Context, tx *sql.Tx, p *socialProvider, subjectID string, a accountRow, index []byte, now time.Time) (SocialOutcome, error) {
	if a.role != "" {
		return SocialOutcome{}, refuse("staff_account", fault.Forbidden, "staff accounts sign in with their password, not with %s", p.Name)
	}
	if a.password.IsZero() {
		return SocialOutcome{}, refuse("link_no_password", fault.Conflict,
			"an account already uses the address %s gave, and has no password to prove it is yours; sign in to it and set a password first", p.Name)
	}
	// Only the newest pending link of an account and provider works.
	if _, err := tx.ExecContext(ctx, `DELETE FROM social_pending WHERE subject_id = $1 AND provider = $2`, subjectID, p.ID); err != nil {
		return SocialOutcome{}, fmt.Errorf("identity: pending link: %w", err)
	}
	tok, hash := newToken()
	if _, err := tx.ExecContext(ctx, `INSERT INTO social_pending (token_hash, subject_id, provider, link_index, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		hash, subjectID, p.ID, index, now, now.Add(SocialPendingTTL)); err != nil {
		return SocialOutcome{}, fmt.Errorf("identity: pending link: %w", err)
	}
	if err := s.audit.Record(ctx, tx, audit.Event{Actor: "anonymous", Action: "social.link_pending", Subject: subjectID,
		Detail: map[string]string{"provider": p.ID}}); err != nil {
		return SocialOutcome{}, err
	}
	return SocialOutcome{LinkToken: tok}, nil
}

func errBadPendingLink() error {
	return &fault.Error{Code: fault.Invalid, Field: "token", Message: "this link request is invalid, was already used or has expired; sign in with the provider again"}
}

// PendingLink returns the provider of a pending link, for the page that
// asks the password. fault.Invalid for a bad, used or expired token.
func (s *Service) PendingLink(ctx context.Context, token string) (ProviderInfo, error) {
	hash, ok := tokenHash(token)
	if !ok {
		return ProviderInfo{}, errBadPendingLink()
	}
	var provider string
	err := s.db.QueryRowContext(ctx, `SELECT provider FROM social_pending WHERE token_hash = $1 AND expires_at > $2`, hash, s.clock.Now()).Scan(&provider)
	if errors.Is(err, sql.ErrNoRows) {
		return ProviderInfo{}, errBadPendingLink()
	}
	if err != nil {
		return ProviderInfo{}, fmt.Errorf("identity: pending link: %w", err)
	}
	return s.providerInfo(provider), nil
}

func (s *Service) providerInfo(id string) ProviderInfo {
	if p := s.providers[id]; p != nil {
		return ProviderInfo{ID: p.ID, Name: p.Name, Claims: slices.Clone(p.Claims)}
	}
	return ProviderInfo{ID: id, Name: id}
}

// LinkWithPassword completes a pending link with the password of the
// account it names: the link is made, nothing of the provider's claims
// is imported (the account's data stays what its owner gave), and a
// session opens. A wrong password is refused, audited and counted towards
// the account's login lock; the token stays usable until it expires, so
// a typo does not send the member back to the provider.
func (s *Service) LinkWithPassword(ctx context.Context, token, password string, m Meta) (Session, string, error) {
	now := s.clock.Now()
	if !s.thr.allowMemory(m.IP, now) {
		return Session{}, "", errThrottled()
	}
	hash, ok := tokenHash(token)
	if !ok {
		return Session{}, "", errBadPendingLink()
	}
	pw, err := normalizePassword(FieldPassword, password)
	if err != nil {
		return Session{}, "", err
	}
	var subjectID, provider string
	err = s.db.QueryRowContext(ctx, `SELECT subject_id, provider FROM social_pending WHERE token_hash = $1 AND expires_at > $2`, hash, now).Scan(&subjectID, &provider)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, "", errBadPendingLink()
	}
	if err != nil {
		return Session{}, "", fmt.Errorf("identity: link: %w", err)
	}
	cs := s.thr.keys(scopeLoginAccount, scopeLoginIP, "subject:"+subjectID, m.IP)
	if err := s.thr.check(ctx, now, cs); err != nil {
		return Session{}, "", err
	}
	a, err := loadAccount(ctx, s.db, subjectID)
	if err != nil {
		return Session{}, "", err
	}
	encoded := s.dummyHash
	if !a.password.IsZero() {
		if encoded, err = s.passwordHash(ctx, s.db, door.System(policy.Security), a); err != nil {
			return Session{}, "", err
		}
	}
	good, _, err := verifyPassword(pw, encoded, s.cfg.Argon2)
	if err != nil {
		return Session{}, "", err
	}
	if !good || a.password.IsZero() {
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := s.thr.hit(ctx, tx, now, cs); err != nil {
				return err
			}
			return s.audit.Record(ctx, tx, audit.Event{Actor: "anonymous", Action: "social.link_failed", Subject: subjectID,
				Detail: map[string]string{"provider": provider}})
		})
		if err != nil {
			return Session{}, "", fmt.Errorf("identity: link: %w", err)
		}
		return Session{}, "", fault.New(fault.Unauthorized, "the password is wrong")
	}
	var sess Session
	var tok string
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var index []byte
		err := tx.QueryRowContext(ctx, `DELETE FROM social_pending WHERE token_hash = $1 AND expires_at > $2 RETURNING link_index`, hash, now).Scan(&index)
		if errors.Is(err, sql.ErrNoRows) {
			return errBadPendingLink() // spent by a concurrent request
		}
		if err != nil {
			return fmt.Errorf("identity: link: %w", err)
		}
		if a.role != "" {
			return fault.New(fault.Forbidden, "staff accounts sign in with their password")
		}
		if err := s.thr.reset(ctx, tx, cs[0]); err != nil {
			return err
		}
		if err := s.insertLink(ctx, tx, index, subjectID, provider, now); err != nil {
			return err
		}
		if sess, tok, err = s.openSession(ctx, tx, subjectID, a.role, m, now); err != nil {
			return err
		}
		if err := s.audit.Record(ctx, tx, audit.Event{Actor: subjectID, Action: "social.linked", Subject: subjectID,
			Detail: map[string]string{"provider": provider}}); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: subjectID, Action: "session.login", Subject: subjectID,
			Detail: map[string]string{"session": sess.ID, "provider": provider}})
	})
	if err != nil {
		return Session{}, "", err
	}
	return sess, tok, nil
}

// LinkedProviders lists the providers linked to a subject's account.
func (s *Service) LinkedProviders(ctx context.Context, subjectID string) ([]LinkedProvider, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT provider, created_at FROM social_links WHERE subject_id = $1 ORDER BY created_at, provider`, subjectID)
	if err != nil {
		return nil, fmt.Errorf("identity: linked providers: %w", err)
	}
	defer rows.Close()
	out := []LinkedProvider{}
	for rows.Next() {
		var l LinkedProvider
		if err := rows.Scan(&l.Provider, &l.CreatedAt); err != nil {
			return nil, fmt.Errorf("identity: linked providers: %w", err)
		}
		l.CreatedAt = l.CreatedAt.UTC()
		l.Name = s.providerInfo(l.Provider).Name
		out = append(out, l)
	}
	return out, rows.Err()
}

// Unlink removes the principal's link to a provider. The last way into
// an account without a password is kept (fault.Conflict): the member sets
// a password first, by a reset link to their address.
func (s *Service) Unlink(ctx context.Context, p Principal, providerID string) error {
	id := p.Account.SubjectID
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM social_links WHERE subject_id = $1 AND provider = $2`, id, providerID)
		if err != nil {
			return fmt.Errorf("identity: unlink: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fault.New(fault.NotFound, "your account is not linked to %q", truncateID(providerID))
		}
		a, err := loadAccount(ctx, tx, id)
		if err != nil {
			return err
		}
		var left int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM social_links WHERE subject_id = $1`, id).Scan(&left); err != nil {
			return fmt.Errorf("identity: unlink: %w", err)
		}
		if a.password.IsZero() && left == 0 {
			return fault.New(fault.Conflict, "this is the only way into your account: set a password first (ask for a reset link on the login page)")
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: id, Action: "social.unlinked", Subject: id, Detail: map[string]string{"provider": providerID}})
	})
}
