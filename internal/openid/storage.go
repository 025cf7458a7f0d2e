package openid

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"steward/internal/store"
)

// storage is op's view of the provider's tables.
type storage struct{ s *Service }

var (
	_ op.Storage                   = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest = (*storage)(nil)
)

// errNotFound is what op gets for an unknown request, code or token.
type errNotFound struct{ what string }

func (e errNotFound) Error() string { return e.what + " not found" }
func (errNotFound) IsNotFound()     {}

// CreateAuthRequest stores a request op has checked (client, exact
// redirect URI, response type), keeping only the scopes the client
// declares. PKCE with S256 is required of every client.
func (st *storage) CreateAuthRequest(ctx context.Context, ar *oidc.AuthRequest, hintSubject string) (op.AuthRequest, error) {
	c := st.s.clients[ar.ClientID]
	if c == nil {
		return nil, oidc.ErrInvalidClient()
	}
	if ar.CodeChallenge == "" || ar.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with S256 is required")
	}
	if ar.ResponseType != oidc.ResponseTypeCode {
		return nil, oidc.ErrInvalidRequest().WithDescription("only the code flow is offered")
	}
	if ar.ResponseMode != "" && ar.ResponseMode != oidc.ResponseModeQuery {
		return nil, oidc.ErrInvalidRequest().WithDescription("only response_mode=query is offered")
	}
	if len(ar.State) > 1024 || len(ar.Nonce) > 1024 || len(ar.CodeChallenge) > 128 || len(hintSubject) > 128 {
		return nil, oidc.ErrInvalidRequest().WithDescription("state, nonce, code_challenge or id_token_hint is too long")
	}
	now := st.s.d.Clock.Now()
	r := &request{id: rand16(), clientID: c.r.ID, redirectURI: ar.RedirectURI, scopes: c.scopes(ar.Scopes), state: ar.State,
		nonce: ar.Nonce, responseType: string(ar.ResponseType), responseMode: string(oidc.ResponseModeQuery), prompt: ar.Prompt,
		hint: hintSubject, codeChallenge: ar.CodeChallenge, codeChallengeMethod: string(ar.CodeChallengeMethod), expiresAt: now.Add(RequestTTL)}
	var maxAge sql.NullInt64
	if ar.MaxAge != nil {
		// prompt=login arrives here as max_age=0.
		maxAge = sql.NullInt64{Int64: int64(min(*ar.MaxAge, 1<<31)), Valid: true}
		d := time.Duration(maxAge.Int64) * time.Second
		r.maxAge = &d
	}
	_, err := st.s.d.DB.ExecContext(ctx, `INSERT INTO openid_requests (id, client_id, redirect_uri, scopes, state, nonce, response_type,
		response_mode, prompt, max_age, hint_subject, code_challenge, code_challenge_method, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		r.id, r.clientID, r.redirectURI, joinScopes(r.scopes), r.state, r.nonce, r.responseType, r.responseMode,
		joinScopes(r.prompt), maxAge, r.hint, r.codeChallenge, r.codeChallengeMethod, now, r.expiresAt)
	if err != nil {
		return nil, fmt.Errorf("openid: store request: %w", err)
	}
	return r, nil
}

const requestColumns = `id, client_id, redirect_uri, scopes, state, nonce, response_type, response_mode, prompt, max_age, hint_subject,
	code_challenge, code_challenge_method, subject_id, granted_scopes, auth_time, amr, expires_at`

// loadRequest reads a live request by a column (id or code_hash).
func (s *Service) loadRequest(ctx context.Context, q store.Q, where string, arg any) (*request, error) {
	var r request
	var scopes, prompt, granted, amr string
	var subjectID sql.NullString
	var authTime sql.NullTime
	var maxAge sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT `+requestColumns+` FROM openid_requests WHERE `+where+` = $1 AND expires_at > $2`, arg, s.d.Clock.Now()).
		Scan(&r.id, &r.clientID, &r.redirectURI, &scopes, &r.state, &r.nonce, &r.responseType, &r.responseMode, &prompt, &maxAge, &r.hint,
			&r.codeChallenge, &r.codeChallengeMethod, &subjectID, &granted, &authTime, &amr, &r.expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound{"sign-in request"}
	}
	if err != nil {
		return nil, fmt.Errorf("openid: load request: %w", err)
	}
	r.scopes, r.prompt, r.grantedScopes, r.amr = splitScopes(scopes), splitScopes(prompt), splitScopes(granted), splitScopes(amr)
	if subjectID.Valid {
		r.subjectID = subjectID.String
		r.pairwise = s.pairwise(r.clientID, r.subjectID)
	}
	if authTime.Valid {
		r.authTime = authTime.Time.UTC()
	}
	if maxAge.Valid {
		d := time.Duration(maxAge.Int64) * time.Second
		r.maxAge = &d
	}
	return &r, nil
}

// AuthRequestByID serves only op's authorize callback, which would give
// the code of an approved request to anyone holding its id (the id
// travels in the sign-in link). Steward issues codes in Approve, to the
// session that approved, so no request is ever found this way.
func (st *storage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotFound{"sign-in request"}
}

func codeHash(code string) []byte {
	h := sha256.Sum256([]byte("openid code\x00" + code))
	return h[:]
}

// AuthRequestByCode finds the request a code was issued for: only an
// approved one, found by the code's hash.
func (st *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	r, err := st.s.loadRequest(ctx, st.s.d.DB, "code_hash", codeHash(code))
	if err != nil {
		return nil, err
	}
	if !r.Done() {
		return nil, errNotFound{"code"}
	}
	return r, nil
}

// SaveAuthCode keeps the hash of the code issued for an approved
// request; a request gets one code.
func (st *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	res, err := st.s.d.DB.ExecContext(ctx, `UPDATE openid_requests SET code_hash = $2 WHERE id = $1 AND subject_id IS NOT NULL AND code_hash IS NULL`,
		id, codeHash(code))
	if err != nil {
		return fmt.Errorf("openid: save code: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return oidc.ErrInvalidRequest().WithDescription("the sign-in request was already answered")
	}
	return nil
}

// DeleteAuthRequest spends a request when its code is exchanged (the
// token's creation already did, in its transaction): a code works once.
func (st *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	_, err := st.s.d.DB.ExecContext(ctx, `DELETE FROM openid_requests WHERE id = $1`, id)
	return err
}

// CreateAccessToken spends the code's request and stores the token op
// encrypts for the client, in one transaction: of two exchanges of one
// code racing, one finds the request gone and gets invalid_grant before
// any token is made or claim released. Only a code exchange reaches here
// (no other grant is offered).
func (st *storage) CreateAccessToken(ctx context.Context, tr op.TokenRequest) (string, time.Time, error) {
	r, ok := tr.(*request)
	if !ok || r.subjectID == "" {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	now := st.s.d.Clock.Now()
	id, exp := rand16(), now.Add(TokenTTL)
	err := st.s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM openid_requests WHERE id = $1 AND code_hash IS NOT NULL AND subject_id IS NOT NULL`, r.id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return oidc.ErrInvalidGrant().WithDescription("the code was already used")
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO openid_tokens (id, client_id, subject_id, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			id, r.clientID, r.subjectID, joinScopes(r.grantedScopes), now, exp)
		return err
	})
	var oerr *oidc.Error
	if errors.As(err, &oerr) {
		return "", time.Time{}, oerr
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("openid: store token: %w", err)
	}
	// op puts the expiry in the token response by the real clock.
	return id, time.Now().Add(TokenTTL), nil
}

func (st *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType().WithDescription("refresh tokens are not offered")
}

func (st *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (st *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// TerminateSession ends the client's tokens for the member (end_session
// with an ID token hint, which names the member by the pairwise subject).
func (st *storage) TerminateSession(ctx context.Context, pairwise, clientID string) error {
	if pairwise == "" {
		return nil
	}
	id, err := st.s.subjectOf(ctx, clientID, pairwise)
	if err != nil || id == "" {
		return err
	}
	_, err = st.s.d.DB.ExecContext(ctx, `DELETE FROM openid_tokens WHERE client_id = $1 AND subject_id = $2`, clientID, id)
	return err
}

// RevokeToken deletes an access token the client presents (RFC 7009).
func (st *storage) RevokeToken(ctx context.Context, tokenID, _, clientID string) *oidc.Error {
	if _, err := st.s.d.DB.ExecContext(ctx, `DELETE FROM openid_tokens WHERE id = $1 AND client_id = $2`, tokenID, clientID); err != nil {
		return oidc.ErrServerError()
	}
	return nil
}

func (st *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	keys, err := st.s.keys.current(ctx)
	if err != nil {
		return nil, err
	}
	return signer(keys, st.s.d.Clock.Now()), nil
}

func (st *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (st *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	keys, err := st.s.keys.current(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, len(keys))
	for i, k := range keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

func (st *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if c := st.s.clients[id]; c != nil {
		return c, nil
	}
	return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
}

func (st *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c := st.s.clients[id]
	if c == nil || !secretMatches(c.secret, secret) {
		return oidc.ErrInvalidClient().WithDescription("unknown client or wrong secret")
	}
	return nil
}

// SetUserinfoFromScopes gets only the pairwise subject; the ID token's
// claims come from SetUserinfoFromRequest, which knows the request.
func (st *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest puts the claims the approved scopes release in
// the ID token.
func (st *storage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, tr op.IDTokenRequest, scopes []string) error {
	r, ok := tr.(*request)
	if !ok || r.subjectID == "" {
		return oidc.ErrInvalidRequest()
	}
	return st.s.release(ctx, ui, r.clientID, r.subjectID, intersect(scopes, r.grantedScopes), "id_token")
}

// SetUserinfoFromToken answers userinfo: the token's scopes, released
// again under the member's choices as they are now.
func (st *storage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, _, _ string) error {
	t, err := st.s.token(ctx, tokenID)
	if err != nil {
		return err
	}
	return st.s.release(ctx, ui, t.clientID, t.subjectID, t.scopes, "userinfo")
}

// SetIntrospectionFromToken says whether a token is active, to the
// client it was issued to only.
func (st *storage) SetIntrospectionFromToken(ctx context.Context, ir *oidc.IntrospectionResponse, tokenID, _, clientID string) error {
	t, err := st.s.token(ctx, tokenID)
	if err != nil {
		return err
	}
	if t.clientID != clientID {
		return errNotFound{"token"}
	}
	ir.Scope, ir.ClientID, ir.Subject = t.scopes, t.clientID, st.s.pairwise(t.clientID, t.subjectID)
	ir.Expiration = oidc.FromTime(t.expiresAt)
	return nil
}

func (st *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (st *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound{"key"}
}

func (st *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

func (st *storage) Health(ctx context.Context) error { return st.s.d.DB.PingContext(ctx) }

// issued is a live access token.
type issued struct {
	clientID, subjectID string
	scopes              []string
	expiresAt           time.Time
}

// token reads a live access token whose grant still stands.
func (s *Service) token(ctx context.Context, id string) (issued, error) {
	var t issued
	var scopes string
	err := s.d.DB.QueryRowContext(ctx, `SELECT t.client_id, t.subject_id, t.scopes, t.expires_at FROM openid_tokens t
		JOIN openid_grants g ON g.subject_id = t.subject_id AND g.client_id = t.client_id
		WHERE t.id = $1 AND t.expires_at > $2`, id, s.d.Clock.Now()).Scan(&t.clientID, &t.subjectID, &scopes, &t.expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return issued{}, errNotFound{"token"}
	}
	if err != nil {
		return issued{}, fmt.Errorf("openid: token: %w", err)
	}
	t.scopes = splitScopes(scopes)
	return t, nil
}

// intersect keeps the scopes of a that b holds too.
func intersect(a, b []string) []string {
	var out []string
	for _, s := range a {
		if slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// rand16 is a random id (128 bits and more).
func rand16() string { return strings.ToLower(rand.Text()) }
