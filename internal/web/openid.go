package web

import (
	"net/http"
	"net/url"
	"slices"

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

// signInAMR says how the session was authenticated, for the ID token.
func signInAMR(a auth) []string {
	amr := []string{"pwd"}
	if !a.P.Session.SecondFactorAt.IsZero() {
		amr = append(amr, "mfa")
	}
	return amr
}

// pageOpenIDSignIn is where an application sends a member: sign in
// first (unless the application asked for no page, prompt=none), then
// the consent screen — or straight back when everything asked for was
// answered before.
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
		if a == nil {
			if p.Silent {
				return s.refuseSignIn(w, r, id, "login_required")
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return nil
		}
		if !p.Ask {
			to, err := s.d.OpenID.Approve(ctx, id, openid.Answer{SubjectID: subject, Evidence: evidenceOf(r),
				AuthTime: a.P.Session.AuthAt, AMR: signInAMR(*a)})
			if err != nil {
				return err
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return nil
		}
		if p.Silent {
			return s.refuseSignIn(w, r, id, "consent_required")
		}
		v := s.newView("Sign in to "+p.ClientName, a)
		v.Data = p
		return s.render(w, r, http.StatusOK, "openid_sign_in", v)
	}
}

// pageOpenIDSignInPost takes the member's answer: continue (with the
// consent boxes ticked) or cancel.
func (s *server) pageOpenIDSignInPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if s.d.OpenID == nil {
			return fault.New(fault.NotFound, "this site signs no application in")
		}
		if err := parseForm(r); err != nil {
			return err
		}
		id := r.PostForm.Get("request")
		if r.PostForm.Get("action") == "cancel" {
			return s.refuseSignIn(w, r, id, "access_denied")
		}
		agree := slices.DeleteFunc(slices.Clone(r.PostForm["agree"]), func(s string) bool { return s == "" })
		if agree == nil {
			agree = []string{}
		}
		to, err := s.d.OpenID.Approve(r.Context(), id, openid.Answer{SubjectID: a.P.Account.SubjectID, Agree: agree,
			Evidence: evidenceOf(r), AuthTime: a.P.Session.AuthAt, AMR: signInAMR(a)})
		if err != nil {
			return err
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return nil
	}
}

func (s *server) refuseSignIn(w http.ResponseWriter, r *http.Request, id, code string) error {
	to, err := s.d.OpenID.Refuse(r.Context(), id, code)
	if err != nil {
		return err
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
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
