package openid

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"steward/internal/audit"
	"steward/internal/consent"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// ScopeView is one scope of a client as a member sees it.
type ScopeView struct {
	Scope   string `json:"scope"`
	Purpose string `json:"purpose"`
	// Why is the purpose's description from the policy.
	Why string `json:"why"`
	// Claims are the fields the scope releases.
	Claims []string `json:"claims"`
	// Consent says the scope is released only with the member's consent;
	// InForce that they gave it and have not withdrawn it.
	Consent bool `json:"consent"`
	InForce bool `json:"in_force"`
}

// Pending is a sign-in waiting for the member, for the consent screen.
type Pending struct {
	Request    string      `json:"request"`
	ClientID   string      `json:"client_id"`
	ClientName string      `json:"client_name"`
	Note       string      `json:"note,omitempty"`
	Country    string      `json:"country"`
	Scopes     []ScopeView `json:"scopes"`
	// Ask says the screen must be shown: a first sign-in, a scope not
	// asked about before, or the application asked for it (prompt=consent).
	Ask bool `json:"ask"`
	// Silent says the application wants no screen at all (prompt=none):
	// answer at once, with an error when one would be needed.
	Silent bool `json:"silent"`
	// MaxAge is how recent a login the application asks for (max_age, or
	// prompt=login as 0); nil takes any session.
	MaxAge *time.Duration `json:"-"`
	// WrongAccount says the application named another member than the
	// one signed in (its id_token_hint).
	WrongAccount bool `json:"-"`
}

// errNoRequest is what a member gets for an unknown, expired or answered
// sign-in.
func errNoRequest() error {
	return fault.New(fault.NotFound, "this sign-in request is unknown or has expired; go back to the application and start again")
}

// view describes the client's declared scopes among names.
func (s *Service) view(ctx context.Context, q store.Q, c *policy.Recipient, subjectID string, names []string) ([]ScopeView, error) {
	var out []ScopeView
	for _, name := range names {
		sc := c.Client.Scope(name)
		if sc == nil {
			continue
		}
		pu := s.d.Policy.Purpose(sc.Purpose)
		v := ScopeView{Scope: sc.Scope, Purpose: sc.Purpose, Why: pu.Description, Claims: slices.Clone(sc.Claims), Consent: pu.Basis == policy.BasisConsent}
		if v.Consent {
			var err error
			if v.InForce, err = s.d.Consent.ScopeInForce(ctx, q, subjectID, sc.Purpose, consentScope(c.ID)); err != nil {
				return nil, err
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// consentScope is the ledger scope of what a member consents to for one
// client.
func consentScope(clientID string) string { return "client:" + clientID }

// Pending returns the sign-in request id waits on, as the member
// subjectID would answer it.
func (s *Service) Pending(ctx context.Context, id, subjectID string) (Pending, error) {
	r, err := s.loadRequest(ctx, s.d.DB, "id", id)
	if err != nil || r.Done() {
		return Pending{}, errNoRequest()
	}
	c := s.clients[r.clientID]
	if c == nil {
		return Pending{}, errNoRequest()
	}
	p := Pending{Request: r.id, ClientID: c.r.ID, ClientName: c.r.Name, Note: c.r.Note, Country: c.r.Country,
		Silent: slices.Contains(r.prompt, oidc.PromptNone), MaxAge: r.maxAge,
		WrongAccount: r.hint != "" && subjectID != "" && s.pairwise(c.r.ID, subjectID) != r.hint}
	if p.Scopes, err = s.view(ctx, s.d.DB, c.r, subjectID, r.scopes); err != nil {
		return Pending{}, err
	}
	asked, err := s.asked(ctx, s.d.DB, subjectID, c.r.ID)
	if err != nil {
		return Pending{}, err
	}
	p.Ask = asked == nil || slices.Contains(r.prompt, oidc.PromptConsent)
	for _, sc := range p.Scopes {
		if !slices.Contains(asked, sc.Scope) {
			p.Ask = true
		}
	}
	return p, nil
}

// asked returns the scopes the member was asked about for the client,
// nil when they never signed in to it (or revoked it).
func (s *Service) asked(ctx context.Context, q store.Q, subjectID, clientID string) ([]string, error) {
	var scopes string
	err := q.QueryRowContext(ctx, `SELECT scopes FROM openid_grants WHERE subject_id = $1 AND client_id = $2`, subjectID, clientID).Scan(&scopes)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("openid: grant: %w", err)
	}
	return append(splitScopes(scopes), oidc.ScopeOpenID), nil
}

// Answer is the member's answer to a sign-in.
type Answer struct {
	SubjectID string
	// Agree lists the consent scopes the member agreed to; a consent
	// scope not listed is refused (or withdrawn, if it was in force).
	// Nil keeps the choices in force (a sign-in that asks nothing).
	Agree    []string
	Evidence consent.Evidence
	// AuthTime is when the member last gave their password.
	AuthTime time.Time
}

// Approve records the member's answer to the sign-in id — each consent
// given, refused or withdrawn in the ledger with its receipt, the
// application among their connected ones — issues the code, and returns
// the application's redirect carrying it. The code is issued here, for
// the session that approved, and nowhere else: op's callback endpoint,
// which would give it to anyone holding the request's id, is not served.
func (s *Service) Approve(ctx context.Context, id string, a Answer) (string, error) {
	r, err := s.loadRequest(ctx, s.d.DB, "id", id)
	if err != nil || r.Done() {
		return "", errNoRequest()
	}
	c := s.clients[r.clientID]
	if c == nil {
		return "", errNoRequest()
	}
	for _, name := range a.Agree {
		if !slices.Contains(r.scopes, name) {
			return "", fault.FieldError("agree", "the application did not ask for %q", name)
		}
	}
	now := s.d.Clock.Now()
	granted := []string{oidc.ScopeOpenID}
	err = s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		views, err := s.view(ctx, tx, c.r, a.SubjectID, r.scopes)
		if err != nil {
			return err
		}
		for _, v := range views {
			if !v.Consent {
				granted = append(granted, v.Scope)
				continue
			}
			agree := v.InForce
			if a.Agree != nil {
				agree = slices.Contains(a.Agree, v.Scope)
				if err := s.choose(ctx, tx, a.SubjectID, c.r.ID, v, agree, a.Evidence, SignInPath); err != nil {
					return err
				}
			}
			if agree {
				granted = append(granted, v.Scope)
			}
		}
		asked, err := s.asked(ctx, tx, a.SubjectID, c.r.ID)
		if err != nil {
			return err
		}
		for _, v := range views {
			if !slices.Contains(asked, v.Scope) {
				asked = append(asked, v.Scope)
			}
		}
		asked = slices.DeleteFunc(asked, func(s string) bool { return s == oidc.ScopeOpenID })
		if _, err := tx.ExecContext(ctx, `INSERT INTO openid_grants (subject_id, client_id, pairwise, scopes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
			ON CONFLICT (subject_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
			a.SubjectID, c.r.ID, s.pairwise(c.r.ID, a.SubjectID), joinScopes(asked), now); err != nil {
			return fmt.Errorf("openid: grant: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE openid_requests SET subject_id = $2, granted_scopes = $3, auth_time = $4
			WHERE id = $1 AND subject_id IS NULL`, r.id, a.SubjectID, joinScopes(granted), a.AuthTime)
		if err != nil {
			return fmt.Errorf("openid: approve: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errNoRequest()
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: a.SubjectID, Action: "openid.approved", Subject: a.SubjectID,
			Detail: map[string]string{"client": c.r.ID, "scopes": joinScopes(granted)}})
	})
	if err != nil {
		return "", err
	}
	if r, err = s.loadRequest(ctx, s.d.DB, "id", r.id); err != nil || !r.Done() {
		return "", errNoRequest()
	}
	code, err := op.CreateAuthRequestCode(op.ContextWithIssuer(ctx, s.Issuer()), r, s.provider.Storage(), s.provider.Crypto())
	if err != nil {
		return "", fmt.Errorf("openid: issue code: %w", err)
	}
	return clientRedirect(r, url.Values{"code": {code}})
}

// clientRedirect is the application's redirect URI (registered exactly)
// with params and the request's state in its query.
func clientRedirect(r *request, params url.Values) (string, error) {
	u, err := url.Parse(r.redirectURI)
	if err != nil {
		return "", fmt.Errorf("openid: redirect: %w", err)
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if r.state != "" {
		q.Set("state", r.state)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// choose records a member's answer about one consent scope, only where
// it changes something or proves they were asked.
func (s *Service) choose(ctx context.Context, q store.Q, subjectID, clientID string, v ScopeView, agree bool, ev consent.Evidence, point string) error {
	var state consent.State
	switch {
	case agree && !v.InForce:
		state = consent.Given
	case !agree && v.InForce:
		state = consent.Withdrawn
	case !agree:
		state = consent.Refused
	default:
		return nil
	}
	_, err := s.d.Consent.Record(ctx, q, consent.Change{SubjectID: subjectID, Purpose: v.Purpose, Scope: consentScope(clientID),
		State: state, Method: consent.MethodForm, CollectionPoint: point, Evidence: ev})
	return err
}

// Refuse ends the sign-in id without signing anyone in and returns the
// application's redirect carrying the OAuth error: access_denied (the
// member said no), login_required or consent_required (prompt=none).
func (s *Service) Refuse(ctx context.Context, id, code string) (string, error) {
	r, err := s.loadRequest(ctx, s.d.DB, "id", id)
	if err != nil || r.Done() {
		return "", errNoRequest()
	}
	if _, err := s.d.DB.ExecContext(ctx, `DELETE FROM openid_requests WHERE id = $1`, r.id); err != nil {
		return "", fmt.Errorf("openid: refuse: %w", err)
	}
	return clientRedirect(r, url.Values{"error": {code}})
}

// release puts in ui what scopes release to the client about the member
// now: the pairwise subject, then for each scope the client declares,
// its fields, read through the door for the scope's purpose as the
// recipient — a consent scope only while its consent is in force, a
// purpose the member's state refuses (restriction, objection) not at
// all. Each release is audited with the claim names, never the values.
func (s *Service) release(ctx context.Context, ui *oidc.UserInfo, clientID, subjectID string, scopes []string, via string) error {
	c := s.clients[clientID]
	if c == nil {
		return errNotFound{"client"}
	}
	asked, err := s.asked(ctx, s.d.DB, subjectID, clientID)
	if err != nil {
		return err
	}
	if asked == nil {
		return errNotFound{"grant"}
	}
	ui.Subject = s.pairwise(clientID, subjectID)
	byPurpose := map[string][]string{}
	scoped := map[string]bool{} // purposes released on this client's own consent
	var order []string
	for _, name := range scopes {
		sc := c.r.Client.Scope(name)
		if sc == nil {
			continue
		}
		if s.d.Policy.Purpose(sc.Purpose).Basis == policy.BasisConsent {
			in, err := s.d.Consent.ScopeInForce(ctx, s.d.DB, subjectID, sc.Purpose, consentScope(clientID))
			if err != nil {
				return err
			}
			if !in {
				continue
			}
			scoped[sc.Purpose] = true
		}
		if _, seen := byPurpose[sc.Purpose]; !seen {
			order = append(order, sc.Purpose)
		}
		byPurpose[sc.Purpose] = append(byPurpose[sc.Purpose], sc.Claims...)
	}
	var released []string
	for _, purpose := range order {
		u := door.Use{Purpose: purpose, Actor: "recipient:" + clientID}
		if scoped[purpose] {
			u.Scope = consentScope(clientID)
		}
		got, err := s.d.Identity.Release(ctx, u, subjectID, byPurpose[purpose])
		if _, denied := door.IsDenied(err); denied || fault.Is(err, fault.PurposeDenied) {
			continue
		}
		if err != nil {
			return err
		}
		if len(got.Values) == 0 {
			continue
		}
		// The release is a disclosure: recorded in the register, and
		// refused (its claims left out) when the register refuses it.
		if s.d.Disclosures != nil {
			err := s.d.Disclosures.DiscloseRelease(ctx, Release{Client: clientID, Purpose: purpose, SubjectID: subjectID,
				Values: got.Values, Consent: scoped[purpose]})
			var ferr *fault.Error
			if errors.As(err, &ferr) && ferr.Code != fault.Internal && ferr.Code != fault.Unavailable {
				continue
			}
			if err != nil {
				return err
			}
		}
		for field, val := range got.Values {
			setClaim(ui, field, val, got.EmailVerified)
			released = append(released, field)
		}
	}
	slices.Sort(released)
	released = slices.Compact(released)
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE openid_grants SET last_used_at = $3 WHERE subject_id = $1 AND client_id = $2`,
			subjectID, clientID, s.d.Clock.Now()); err != nil {
			return fmt.Errorf("openid: grant: %w", err)
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: "recipient:" + clientID, Action: "openid.released", Subject: subjectID,
			Detail: map[string]string{"client": clientID, "claims": strings.Join(released, " "), "via": via}})
	})
}

// setClaim puts one released field in the claim OpenID Connect names for
// it.
func setClaim(ui *oidc.UserInfo, field, val string, emailVerified bool) {
	switch field {
	case "name":
		ui.Name = val
	case "email":
		ui.Email, ui.EmailVerified = val, oidc.Bool(emailVerified)
	case "phone":
		ui.PhoneNumber = val
	case "picture":
		ui.Picture = val
	default:
		ui.AppendClaims(policy.ClaimName(field), val)
	}
}

// subjectOf finds the member a client knows by a pairwise subject among
// those who signed in to it ("" when none).
func (s *Service) subjectOf(ctx context.Context, clientID, pairwise string) (string, error) {
	var id string
	err := s.d.DB.QueryRowContext(ctx, `SELECT subject_id FROM openid_grants WHERE client_id = $1 AND pairwise = $2`, clientID, pairwise).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("openid: grants: %w", err)
	}
	return id, nil
}

// Application is one application a member signed in to.
type Application struct {
	ClientID string      `json:"client_id"`
	Name     string      `json:"name"`
	Note     string      `json:"note,omitempty"`
	Country  string      `json:"country"`
	Scopes   []ScopeView `json:"scopes"`
	Since    time.Time   `json:"since"`
	LastUsed *time.Time  `json:"last_used,omitempty"`
}

// Connected lists the applications the member signed in to, newest
// first.
func (s *Service) Connected(ctx context.Context, subjectID string) ([]Application, error) {
	rows, err := s.d.DB.QueryContext(ctx, `SELECT client_id, scopes, created_at, last_used_at FROM openid_grants WHERE subject_id = $1
		ORDER BY created_at DESC, client_id`, subjectID)
	if err != nil {
		return nil, fmt.Errorf("openid: connected: %w", err)
	}
	type row struct {
		client, scopes string
		since          time.Time
		used           sql.NullTime
	}
	var found []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.client, &r.scopes, &r.since, &r.used); err != nil {
			rows.Close()
			return nil, fmt.Errorf("openid: connected: %w", err)
		}
		found = append(found, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := []Application{}
	for _, r := range found {
		rec := s.d.Policy.Recipient(r.client)
		if rec == nil || rec.Client == nil {
			out = append(out, Application{ClientID: r.client, Name: r.client, Since: r.since.UTC()})
			continue
		}
		app := Application{ClientID: r.client, Name: rec.Name, Note: rec.Note, Country: rec.Country, Since: r.since.UTC()}
		if r.used.Valid {
			t := r.used.Time.UTC()
			app.LastUsed = &t
		}
		if app.Scopes, err = s.view(ctx, s.d.DB, rec, subjectID, splitScopes(r.scopes)); err != nil {
			return nil, err
		}
		out = append(out, app)
	}
	return out, nil
}

// Revoke disconnects an application from the member at once: its tokens
// stop working, its pending sign-ins go, and each consent they gave it
// is withdrawn in the ledger. fault.NotFound when it was not connected.
func (s *Service) Revoke(ctx context.Context, subjectID, clientID string, ev consent.Evidence, point string) error {
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		asked, err := s.asked(ctx, tx, subjectID, clientID)
		if err != nil {
			return err
		}
		if asked == nil {
			return fault.New(fault.NotFound, "this application is not connected to your account")
		}
		if rec := s.d.Policy.Recipient(clientID); rec != nil && rec.Client != nil {
			views, err := s.view(ctx, tx, rec, subjectID, asked)
			if err != nil {
				return err
			}
			for _, v := range views {
				if v.Consent && v.InForce {
					if err := s.choose(ctx, tx, subjectID, clientID, v, false, ev, point); err != nil {
						return err
					}
				}
			}
		}
		for _, q := range []string{`DELETE FROM openid_grants WHERE subject_id = $1 AND client_id = $2`,
			`DELETE FROM openid_tokens WHERE subject_id = $1 AND client_id = $2`,
			`DELETE FROM openid_requests WHERE subject_id = $1 AND client_id = $2`} {
			if _, err := tx.ExecContext(ctx, q, subjectID, clientID); err != nil {
				return fmt.Errorf("openid: revoke: %w", err)
			}
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: subjectID, Action: "openid.revoked", Subject: subjectID,
			Detail: map[string]string{"client": clientID}})
	})
}
