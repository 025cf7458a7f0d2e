package web

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	"steward/internal/fault"
	"steward/internal/openid"
)

// Steward as the OpenID provider of the operator's applications: the
// protocol's endpoints (served by package openid below /oidc), the page
// where a member approves a sign-in and answers its consent questions,
// and the connected applications of the privacy centre.

// handleOpenIDProtocol serves discovery, authorize, token, userinfo,
// JWKS, revocation and introspection. Their errors are OAuth's, as the
// protocol defines them, not problem details.
func (s *server) handleOpenIDProtocol() http.Handler {
	if s.d.OpenID == nil {
		return s.page(func(http.ResponseWriter, *http.Request) error {
			return fault.New(fault.NotFound, "this site signs no application in")
		})
	}
	return http.StripPrefix(openid.PathPrefix, s.d.OpenID.Handler())
}

// handleOpenIDDiscovery serves the provider's own discovery document
// (op's announces flows it does not offer).
func (s *server) handleOpenIDDiscovery() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.d.OpenID == nil {
			return fault.New(fault.NotFound, "this site signs no application in")
		}
		w.Header().Set("Cache-Control", "max-age=300")
		return s.encode(w, http.StatusOK, s.d.OpenID.Discovery())
	}
}

// handleOpenIDNotOffered answers the endpoints op would serve that this
// provider does not offer: the callback that would hand a code to anyone
// holding a request's id (Steward issues codes only to the session that
// approved), the device flow, and RP-initiated logout.
func (s *server) handleOpenIDNotOffered() handler {
	return func(http.ResponseWriter, *http.Request) error {
		return fault.New(fault.NotFound, "this OpenID endpoint is not offered")
	}
}

// freshLogin reports whether the application asked for a more recent
// password than the session's (max_age, or prompt=login as 0).
func (s *server) freshLogin(p openid.Pending, a auth) bool {
	return p.MaxAge != nil && s.d.Clock.Now().Sub(a.P.Session.AuthAt) > *p.MaxAge
}

// pageOpenIDSignIn is where an application sends a member: sign in
// first (unless the application asked for no page, prompt=none), then
// the consent screen — or straight back when everything asked for was
// answered before and the session is recent enough.
func (s *server) pageOpenIDSignIn() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.d.OpenID == nil {
			return fault.New(fault.NotFound, "this site signs no application in")
		}
		ctx, id := r.Context(), r.URL.Query().Get("request")
		a := s.optionalAuth(r)
		subject := ""
		if a != nil {
			subject = a.P.Account.SubjectID
		}
		p, err := s.d.OpenID.Pending(ctx, id, subject)
		if err != nil {
			return err
		}
		switch {
		case a == nil && p.Silent:
			return s.refuseSignIn(w, r, id, "login_required")
		case a == nil:
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return nil
		case p.WrongAccount && p.Silent:
			return s.refuseSignIn(w, r, id, "login_required")
		case p.WrongAccount:
			return fault.New(fault.Conflict, "%s asked for another account than the one signed in here: sign out, sign in with that account, and try again", p.ClientName)
		}
		fresh := s.freshLogin(p, *a)
		if !p.Ask && !fresh {
			to, err := s.d.OpenID.Approve(ctx, id, openid.Answer{SubjectID: subject, Evidence: evidenceOf(r), AuthTime: a.P.Session.AuthAt})
			if err != nil {
				return err
			}
			return s.toApplication(w, r, p.ClientName, to)
		}
		if p.Silent {
			if fresh {
				return s.refuseSignIn(w, r, id, "login_required")
			}
			return s.refuseSignIn(w, r, id, "consent_required")
		}
		return s.renderSignIn(w, r, *a, p, fresh, http.StatusOK, nil)
	}
}

// signInData is the consent screen's view.
type signInData struct {
	openid.Pending
	// Password asks for the password again: the application wants a
	// recent login.
	Password bool
}

func (s *server) renderSignIn(w http.ResponseWriter, r *http.Request, a auth, p openid.Pending, password bool, status int, errs map[string]string) error {
	v := s.newView("Sign in to "+p.ClientName, &a)
	v.Data = signInData{Pending: p, Password: password}
	for k, e := range errs {
		v.Errors[k] = e
	}
	w.Header().Set("Cache-Control", "no-store")
	return s.render(w, r, status, "openid_sign_in", v)
}

// pageOpenIDSignInPost takes the member's answer: continue (with the
// consent boxes ticked, and the password when the application asked for
// a recent login) or cancel.
func (s *server) pageOpenIDSignInPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if s.d.OpenID == nil {
			return fault.New(fault.NotFound, "this site signs no application in")
		}
		if err := parseForm(r); err != nil {
			return err
		}
		ctx, id := r.Context(), r.PostForm.Get("request")
		if r.PostForm.Get("action") == "cancel" {
			return s.refuseSignIn(w, r, id, "access_denied")
		}
		p, err := s.d.OpenID.Pending(ctx, id, a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		if p.WrongAccount {
			return fault.New(fault.Conflict, "%s asked for another account than the one signed in here", p.ClientName)
		}
		authAt := a.P.Session.AuthAt
		if s.freshLogin(p, a) {
			pr := a.P
			pr.Session.AuthAt = time.Time{} // the password is checked, whatever the session's age
			if err := s.d.Identity.Reauthenticate(ctx, pr, r.PostForm.Get("password")); err != nil {
				if fault.Is(err, fault.ReauthNeeded) || fault.Is(err, fault.Invalid) || fault.Is(err, fault.Unauthorized) {
					return s.renderSignIn(w, r, a, p, true, http.StatusUnprocessableEntity, map[string]string{"password": "That password is not right."})
				}
				return err
			}
			authAt = s.d.Clock.Now()
		}
		agree := slices.DeleteFunc(slices.Clone(r.PostForm["agree"]), func(s string) bool { return s == "" })
		if agree == nil {
			agree = []string{}
		}
		to, err := s.d.OpenID.Approve(ctx, id, openid.Answer{SubjectID: a.P.Account.SubjectID, Agree: agree,
			Evidence: evidenceOf(r), AuthTime: authAt})
		if err != nil {
			return err
		}
		return s.toApplication(w, r, p.ClientName, to)
	}
}

func (s *server) refuseSignIn(w http.ResponseWriter, r *http.Request, id, code string) error {
	to, err := s.d.OpenID.Refuse(r.Context(), id, code)
	if err != nil {
		return err
	}
	return s.toApplication(w, r, "the application", to)
}

// continueTmpl sends the browser on to the application. It is a page
// that refreshes, not a redirect: a redirect to another origin at the
// end of a form's POST (the consent screen, or the login form whose next
// is a sign-in) is blocked by the pages' form-action 'self'.
var continueTmpl = template.Must(template.New("continue").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={{.URL}}">
<meta name="referrer" content="no-referrer"><title>Back to {{.Name}}</title></head>
<body><p><a href="{{.URL}}">Continue to {{.Name}}</a></p></body></html>
`))

// toApplication answers with the page that takes the browser to the
// application's redirect URI (registered exactly).
func (s *server) toApplication(w http.ResponseWriter, r *http.Request, name, to string) error {
	var b bytes.Buffer
	if err := continueTmpl.Execute(&b, struct{ Name, URL string }{name, to}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b.Bytes())
	return err
}

// applications lists the member's connected applications (none when no
// application signs people in).
func (s *server) applications(r *http.Request, a auth) ([]openid.Application, error) {
	if s.d.OpenID == nil {
		return []openid.Application{}, nil
	}
	return s.d.OpenID.Connected(r.Context(), a.P.Account.SubjectID)
}

func (s *server) handleMyApplications() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		apps, err := s.applications(r, a)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"applications": apps})
	}
}

func (s *server) revokeApplication(r *http.Request, a auth, point string) error {
	if s.d.OpenID == nil {
		return fault.New(fault.NotFound, "this application is not connected to your account")
	}
	return s.d.OpenID.Revoke(r.Context(), a.P.Account.SubjectID, r.PathValue("client"), evidenceOf(r), point)
}

func (s *server) handleRevokeApplication() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := s.revokeApplication(r, a, "DELETE /api/v1/me/applications/{client}"); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *server) pageMyApplications() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		apps, err := s.applications(r, a)
		if err != nil {
			return err
		}
		v := s.newView("Connected applications", &a)
		v.Data = apps
		return s.render(w, r, http.StatusOK, "applications", v)
	}
}

func (s *server) pageRevokeApplicationPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := s.revokeApplication(r, a, "/account/applications"); err != nil {
			return err
		}
		http.Redirect(w, r, "/account/applications", http.StatusSeeOther)
		return nil
	}
}
