package openid

import (
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"steward/internal/policy"
)

// Discovery is the provider's discovery document, as served at
// PathPrefix/.well-known/openid-configuration in place of op's, which
// announces flows, grants and subject types this provider does not offer.
// It lists only the code flow with PKCE (S256), the query response mode,
// pairwise subjects, client secrets (basic or post), RS256, and the claims
// the declared scopes can release.
func (s *Service) Discovery() *oidc.DiscoveryConfiguration {
	iss := s.Issuer()
	claims := []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "c_hash", "azp"}
	for _, c := range s.clients {
		for _, sc := range c.r.Client.Scopes {
			for _, f := range sc.Claims {
				name := policy.ClaimName(f)
				if !slices.Contains(claims, name) {
					claims = append(claims, name)
				}
				if f == "email" && !slices.Contains(claims, "email_verified") {
					claims = append(claims, "email_verified")
				}
			}
		}
	}
	slices.Sort(claims[10:])
	secrets := []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	return &oidc.DiscoveryConfiguration{
		Issuer:                                    iss,
		AuthorizationEndpoint:                     iss + "/authorize",
		TokenEndpoint:                             iss + "/oauth/token",
		IntrospectionEndpoint:                     iss + "/oauth/introspect",
		UserinfoEndpoint:                          iss + "/userinfo",
		RevocationEndpoint:                        iss + "/revoke",
		JwksURI:                                   iss + "/keys",
		ScopesSupported:                           s.supportedScopes(),
		ResponseTypesSupported:                    []string{string(oidc.ResponseTypeCode)},
		ResponseModesSupported:                    []string{string(oidc.ResponseModeQuery)},
		GrantTypesSupported:                       []oidc.GrantType{oidc.GrantTypeCode},
		SubjectTypesSupported:                     []string{"pairwise"},
		IDTokenSigningAlgValuesSupported:          []string{"RS256"},
		TokenEndpointAuthMethodsSupported:         secrets,
		IntrospectionEndpointAuthMethodsSupported: secrets,
		RevocationEndpointAuthMethodsSupported:    secrets,
		ClaimsSupported:                           claims,
		CodeChallengeMethodsSupported:             []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256},
	}
}
