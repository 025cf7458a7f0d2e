package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"steward/internal/fault"
	"steward/internal/identity"
)

// auth is the signed-in member of a request and the token they used.
type auth struct {
	P     identity.Principal
	Token string
}

// sessionToken returns the token the request carries: an Authorization
// Bearer token (API clients) or the session cookie (browsers).
func sessionToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return c.Value
	}
	return ""
}

// authenticate resolves the request's member, or fault.Unauthorized.
func (s *server) authenticate(r *http.Request) (auth, error) {
	tok := sessionToken(r)
	if tok == "" {
		return auth{}, fault.New(fault.Unauthorized, "sign in first")
	}
	p, err := s.d.Identity.Authenticate(r.Context(), tok)
	if err != nil {
		return auth{}, err
	}
	return auth{P: p, Token: tok}, nil
}

// optionalAuth returns the member when one is signed in; pages use it to
// show the right navigation. Failures other than "not signed in" are
// logged and treated as anonymous, since a public page must still render.
func (s *server) optionalAuth(r *http.Request) *auth {
	if sessionToken(r) == "" {
		return nil
	}
	a, err := s.authenticate(r)
	if err != nil {
		if !fault.Is(err, fault.Unauthorized) {
			p := problemOf(err)
			s.logFailure(r, p, err)
		}
		return nil
	}
	if a.P.SecondFactor != "" {
		return nil // not signed in until the second factor is given
	}
	return &a
}

// pageAuth guards a page: anonymous visitors are sent to the login page,
// which brings them back afterwards; a stale cookie is cleared. A session
// that owes its second factor is sent to the page that takes it.
func (s *server) pageAuth(h authed) http.Handler {
	return s.pageAuthOwing(func(w http.ResponseWriter, r *http.Request, a auth) error {
		if a.P.SecondFactor != "" {
			target := "/account/second-factor"
			if r.Method == http.MethodGet {
				target += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return nil
		}
		return h(w, r, a)
	})
}

// pageAuthOwing is pageAuth for the pages a session that still owes its
// second factor may reach: the one that takes it.
func (s *server) pageAuthOwing(h authed) http.Handler {
	return s.page(func(w http.ResponseWriter, r *http.Request) error {
		a, err := s.authenticate(r)
		if err != nil {
			if !fault.Is(err, fault.Unauthorized) {
				return err
			}
			if _, cerr := r.Cookie(SessionCookie); cerr == nil {
				s.clearSessionCookie(w, r)
			}
			target := "/login"
			if r.Method == http.MethodGet {
				target += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return nil
		}
		return h(w, r, a)
	})
}

// staffRoles are the roles that reach the staff console: every one.
var staffRoles = identity.Roles()

// requireRole lets h run only for staff holding one of roles (admin holds
// every role).
func requireRole(h authed, roles []string) authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if !identity.HasRole(a.P.Account, roles...) {
			return fault.New(fault.Forbidden, "this needs staff with the %s role", strings.Join(roles, " or "))
		}
		return h(w, r, a)
	}
}

// secure says whether cookies must be marked Secure: whenever the client
// reached us over TLS, directly or through a trusted proxy.
func (s *server) secure(r *http.Request) bool {
	return s.d.Config.TLS || r.TLS != nil || infoOf(r).client.HTTPS
}

// setSessionCookie sets the one cookie Steward uses. HttpOnly keeps it
// from scripts; SameSite=Lax keeps it off cross-site subrequests and
// posts (cross-origin protection refuses those anyway).
func (s *server) setSessionCookie(w http.ResponseWriter, r *http.Request, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    token,
		Path:     "/",
		Expires:  expires,
		MaxAge:   int(expires.Sub(s.d.Clock.Now()).Seconds()),
		HttpOnly: true,
		Secure:   s.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *server) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   s.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// meta is what identity may know about the client: the address (for rate
// limits and the truncated network shown in the session list) and the
// user agent (reduced to its family before storage).
func meta(r *http.Request) identity.Meta {
	return identity.Meta{IP: infoOf(r).client.IP, UserAgent: r.UserAgent()}
}
