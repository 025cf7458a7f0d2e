package policy

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// RecipientClient is an application that signs people in with Steward
// as its OpenID provider: the operator's own front end or a partner's
// service. It is a recipient like any other — what it may receive is
// bounded by the recipient's purposes and categories — and the scopes it
// may ask for are declared here, each for one purpose and releasing named
// fields as claims. The client id is the recipient's id; the client
// secret is not in the policy: SecretEnv names the environment variable
// that holds it.
type RecipientClient struct {
	// RedirectURIs are the exact addresses a sign-in may return to; no
	// pattern, no prefix.
	RedirectURIs []string      `yaml:"redirect_uris" json:"redirect_uris"`
	SecretEnv    string        `yaml:"secret_env" json:"-"`
	Scopes       []ClientScope `yaml:"scopes" json:"scopes"`
}

// ClientScope is one scope a client may ask for: the purpose the
// released claims serve, and the fields released. A scope whose purpose
// rests on consent is released only to a member who consented to it for
// that client on the consent screen; one resting on contract is what the
// sign-in needs.
type ClientScope struct {
	Scope   string   `yaml:"scope" json:"scope"`
	Purpose string   `yaml:"purpose" json:"purpose"`
	Claims  []string `yaml:"claims" json:"claims"`
}

// Scope returns the declared scope with the name, or nil.
func (c *RecipientClient) Scope(name string) *ClientScope {
	for i := range c.Scopes {
		if c.Scopes[i].Scope == name {
			return &c.Scopes[i]
		}
	}
	return nil
}

// ReleasableClaims are the fields Steward can release to a client, each
// as the claim OpenID Connect Core §5.1 names for it (ClaimName).
func ReleasableClaims() []string {
	return []string{"name", "email", "phone", "picture", "organisation", "company"}
}

// ClaimName is the claim a releasable field travels as: the standard
// claim where OpenID Connect has one, the field's own name otherwise.
func ClaimName(field string) string {
	switch field {
	case "phone":
		return "phone_number"
	}
	return field
}

// ScopedConsent is the subject-state key of consent to purpose given
// with scope ("client:ID"): consent to what one application may receive,
// which is not consent to the purpose as a whole.
func ScopedConsent(purpose, scope string) string { return purpose + ":" + scope }

// Clients returns the recipients that are OpenID clients.
func (p *Policy) Clients() []*Recipient {
	var out []*Recipient
	for _, r := range p.Recipients {
		if r.Client != nil {
			out = append(out, r)
		}
	}
	return out
}

// scopeRE is a scope name: what a client puts in its request.
var scopeRE = regexp.MustCompile(`^[a-z][a-z0-9_:-]{0,63}$`)

// clients checks each recipient that is an OpenID client: a processor or
// partner, with exact https redirect URIs, the variable holding its
// secret, and scopes whose purpose the recipient is declared for, resting
// on contract or consent, releasing fields of categories that purpose
// uses and the recipient may receive.
func (c *checker) clients() {
	for i, r := range c.p.Recipients {
		cl := r.Client
		if cl == nil {
			continue
		}
		base := fmt.Sprintf("recipients[%d].client", i)
		name := r.ID
		if r.Role != RoleProcessor && r.Role != RolePartner {
			c.add(base, fmt.Sprintf("recipient %s signs people in but its role is %s", name, r.Role), "an application that signs people in is a processor (the operator's own) or a partner")
		}
		if len(cl.RedirectURIs) == 0 {
			c.add(base, fmt.Sprintf("client %s has no redirect_uris", name), "list the exact addresses a sign-in returns to, e.g. https://app.example.org/callback")
		}
		for j, raw := range cl.RedirectURIs {
			if !exactRedirect(raw) {
				c.add(fmt.Sprintf("%s.redirect_uris[%d]", base, j), fmt.Sprintf("client %s: %q is not an exact https address", name, raw),
					"write the full address without a fragment or wildcard; plain http only on localhost")
			}
		}
		c.secretEnv(base, "client "+name, cl.SecretEnv, "STEWARD_CLIENT_APP_SECRET")
		seen := map[string]bool{}
		for j, sc := range cl.Scopes {
			path := fmt.Sprintf("%s.scopes[%d]", base, j)
			switch {
			case !scopeRE.MatchString(sc.Scope):
				c.add(path, fmt.Sprintf("client %s: scope %q is not a scope name", name, sc.Scope), "use lower-case letters, digits, _, : and -")
			case sc.Scope == "openid":
				c.add(path, fmt.Sprintf("client %s declares openid, which every sign-in has", name), "remove it: openid releases only the client's own reference for the person")
			case seen[sc.Scope]:
				c.add(path, fmt.Sprintf("client %s declares scope %s twice", name, sc.Scope), "declare each scope once")
			}
			seen[sc.Scope] = true
			pu := c.p.Purpose(sc.Purpose)
			switch {
			case pu != nil && pu.Basis == BasisConsent && len(ScopedConsent(sc.Purpose, "client:"+r.ID)) > 64:
				c.add(path+".purpose", fmt.Sprintf("client %s: the purpose and client ids are too long together to record consent (%s)", name, ScopedConsent(sc.Purpose, "client:"+r.ID)),
					"shorten the recipient's id: purpose, client id and 8 more characters must fit in 64")
			}
			switch {
			case pu == nil:
				c.add(path+".purpose", fmt.Sprintf("client %s: scope %s names unknown purpose %q", name, sc.Scope, sc.Purpose), "name a purpose declared under purposes:")
				continue
			case !slices.Contains(r.Purposes, sc.Purpose):
				c.add(path+".purpose", fmt.Sprintf("client %s: scope %s serves %s, which the recipient is not declared for", name, sc.Scope, sc.Purpose), "add the purpose to the recipient's purposes: or choose one of them")
			case pu.Basis != BasisContract && pu.Basis != BasisConsent:
				c.add(path+".purpose", fmt.Sprintf("client %s: scope %s serves %s, which rests on %s", name, sc.Scope, sc.Purpose, pu.Basis),
					"a scope releases what the sign-in needs (a contract purpose) or what the person consents to (a consent purpose)")
			}
			if len(sc.Claims) == 0 {
				c.add(path, fmt.Sprintf("client %s: scope %s releases no claims", name, sc.Scope), "list the fields it releases under claims:")
			}
			for k, f := range sc.Claims {
				fp := fmt.Sprintf("%s.claims[%d]", path, k)
				cat := c.p.fieldCat[f]
				switch {
				case !slices.Contains(ReleasableClaims(), f):
					c.add(fp, fmt.Sprintf("client %s: a sign-in cannot release %q", name, f), "use "+orList(ReleasableClaims()))
				case cat == nil:
					c.add(fp, fmt.Sprintf("client %s releases %s, which no category declares", name, f), "add the field to a category or remove it")
				case !slices.Contains(pu.Uses, cat.ID):
					c.add(fp, fmt.Sprintf("client %s: scope %s releases %s (category %s), which purpose %s does not use", name, sc.Scope, f, cat.ID, sc.Purpose), "choose a purpose that uses the category")
				case !slices.Contains(r.Categories, cat.ID):
					c.add(fp, fmt.Sprintf("client %s releases %s, but the recipient may not receive category %s", name, f, cat.ID), "add the category to the recipient's categories:")
				}
			}
		}
	}
}

// exactRedirect reports whether raw is an address a sign-in may return
// to: absolute, https (http only on this machine), no fragment, no
// credentials, no wildcard.
func exactRedirect(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	if strings.Contains(raw, "*") {
		return false
	}
	return u.Scheme == "https" || u.Scheme == "http" && loopbackHost(u.Hostname())
}
