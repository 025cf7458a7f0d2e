package openid

import (
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"steward/internal/policy"
)

// client is a recipient of the policy that signs people in, as op
// sees it: a confidential web application using the code flow.
type client struct {
	r        *policy.Recipient
	secret   string
	loginURL string
}

func (c *client) GetID() string                       { return c.r.ID }
func (c *client) RedirectURIs() []string              { return slices.Clone(c.r.Client.RedirectURIs) }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType         { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *client) LoginURL(id string) string            { return c.loginURL + id }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return IDTokenTTL }
func (c *client) DevMode() bool                        { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

// The ID token and access token carry the scopes as requested; what each
// releases is decided at release, never by these.
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed is true for scopes the client declares; op drops any
// other scope from the request before it reaches storage.
func (c *client) IsScopeAllowed(scope string) bool {
	return c.r.Client.Scope(scope) != nil
}

// scopes keeps of requested the scopes the client declares (openid
// included), in a stable order.
func (c *client) scopes(requested []string) []string {
	var out []string
	for _, s := range requested {
		if (s == oidc.ScopeOpenID || c.r.Client.Scope(s) != nil) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// request is a sign-in in progress as op sees it.
type request struct {
	id                  string
	clientID            string
	redirectURI         string
	scopes              []string
	state, nonce        string
	responseType        string
	responseMode        string
	prompt              []string
	maxAge              *time.Duration // nil: any session will do
	hint                string         // the pairwise subject of an id_token_hint
	codeChallenge       string
	codeChallengeMethod string
	subjectID           string // Steward's id, set on approval
	pairwise            string // the subject the client sees
	grantedScopes       []string
	authTime            time.Time
	amr                 []string // kept empty: how a session began is not recorded
	expiresAt           time.Time
}

func (r *request) GetID() string         { return r.id }
func (r *request) GetACR() string        { return "" }
func (r *request) GetAMR() []string      { return nil }
func (r *request) GetAudience() []string { return []string{r.clientID} }
func (r *request) GetAuthTime() time.Time {
	return r.authTime
}
func (r *request) GetClientID() string { return r.clientID }
func (r *request) GetCodeChallenge() *oidc.CodeChallenge {
	if r.codeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: r.codeChallenge, Method: oidc.CodeChallengeMethod(r.codeChallengeMethod)}
}
func (r *request) GetNonce() string                   { return r.nonce }
func (r *request) GetRedirectURI() string             { return r.redirectURI }
func (r *request) GetResponseType() oidc.ResponseType { return oidc.ResponseType(r.responseType) }
func (r *request) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(r.responseMode) }

// GetScopes are the scopes the member approved (openid and the contract
// scopes, and the consent scopes they agreed to) once approved.
func (r *request) GetScopes() []string {
	if r.subjectID != "" {
		return r.grantedScopes
	}
	return r.scopes
}
func (r *request) GetState() string   { return r.state }
func (r *request) GetSubject() string { return r.pairwise }
func (r *request) Done() bool         { return r.subjectID != "" }

func joinScopes(s []string) string { return strings.Join(s, " ") }

func splitScopes(s string) []string { return strings.Fields(s) }
