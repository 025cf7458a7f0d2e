package web

import (
	"net/http"

	"steward/internal/fault"
	"steward/internal/identity"
)

// SignInCookie carries a sign-in with another service through the
// browser: first the state the provider must bring back (so a sign-in
// begun in one browser cannot be finished in another), then, when the
// address the provider gave has an account, the pending link that waits
// for its password. A browser-session cookie on the /login/ paths only,
// set only by those flows; what it carries is worthless on the server
// within minutes (identity.SocialFlowTTL, identity.SocialPendingTTL).
// SameSite=Lax: the provider sends the browser back by a top-level GET,
// which carries it.
const SignInCookie = "steward_sign_in"

func (s *server) setSignInCookie(w http.ResponseWriter, r *http.Request, value string) {
	http.SetCookie(w, &http.Cookie{Name: SignInCookie, Value: value, Path: "/login/",
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
}

// clearSignInCookie ends the cookie, when the browser sent one.
func (s *server) clearSignInCookie(w http.ResponseWriter, r *http.Request) {
	if signInCookie(r) == "" {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SignInCookie, Value: "", Path: "/login/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode})
}

func signInCookie(r *http.Request) string {
	if c, err := r.Cookie(SignInCookie); err == nil {
		return c.Value
	}
	return ""
}

// pageSignInBegin sends the browser to the provider. age_confirmed comes
// from the sign-up page's button: a sign-in that creates an account
// needs it when the policy checks age by confirmation.
func (s *server) pageSignInBegin() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		st, err := s.d.Identity.BeginSocial(r.Context(), r.PathValue("provider"), r.URL.Query().Get("age_confirmed") != "", meta(r))
		if err != nil {
			return err
		}
		s.setSignInCookie(w, r, st.State)
		http.Redirect(w, r, st.URL, http.StatusSeeOther)
		return nil
	}
}

// pageSignInCallback finishes a sign-in with the provider's answer. A
// refusal is an error page that says why; an address that already has an
// account leads to the page that asks its password.
func (s *server) pageSignInCallback() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		provider := r.PathValue("provider")
		cb := identity.SocialCallback{State: q.Get("state"), BrowserState: signInCookie(r), Code: q.Get("code"), Error: q.Get("error")}
		out, err := s.d.Identity.FinishSocial(r.Context(), provider, cb, meta(r))
		if err != nil {
			s.clearSignInCookie(w, r)
			return err
		}
		if out.LinkToken != "" {
			s.setSignInCookie(w, r, out.LinkToken)
			http.Redirect(w, r, "/login/"+provider+"/link", http.StatusSeeOther)
			return nil
		}
		s.clearSignInCookie(w, r)
		s.setSessionCookie(w, r, out.Token, out.Session.ExpiresAt)
		next := "/account"
		if out.Created {
			next += "?done=signed-up"
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
}

type signInLinkData struct {
	Provider identity.ProviderInfo
	Fields   []formField
}

func (s *server) renderSignInLink(w http.ResponseWriter, r *http.Request, status int, info identity.ProviderInfo, errs map[string]string) error {
	v := s.newView("Link "+info.Name+" to your account", nil)
	if errs != nil {
		v.Errors = errs
	}
	v.Data = signInLinkData{Provider: info, Fields: []formField{passwordField("password", "Password of your account", "current-password", "", v.Errors)}}
	return s.render(w, r, status, "sign_in_link", v)
}

// pageSignInLink asks the password of the account that holds the
// address the provider gave: only it links the two.
func (s *server) pageSignInLink() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		info, err := s.d.Identity.PendingLink(r.Context(), signInCookie(r))
		if err != nil {
			return err
		}
		return s.renderSignInLink(w, r, http.StatusOK, info, nil)
	}
}

func (s *server) pageSignInLinkPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		tok := signInCookie(r)
		info, err := s.d.Identity.PendingLink(r.Context(), tok)
		if err != nil {
			return err
		}
		sess, session, err := s.d.Identity.LinkWithPassword(r.Context(), tok, r.PostForm.Get("password"), meta(r))
		if fault.FieldOf(err) == "token" {
			return err // the link request is spent or gone: the error page says so
		}
		if err != nil {
			return redraw(renameField(err, map[string]string{"": "password"}), func(status int, errs map[string]string) error {
				return s.renderSignInLink(w, r, status, info, errs)
			})
		}
		s.clearSignInCookie(w, r)
		s.setSessionCookie(w, r, session, sess.ExpiresAt)
		http.Redirect(w, r, "/account?done=linked", http.StatusSeeOther)
		return nil
	}
}

// pageUnlinkSignInPost removes a provider from the member's account.
func (s *server) pageUnlinkSignInPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := s.d.Identity.Unlink(r.Context(), a.P, r.PathValue("provider")); err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderAccount(w, r, a, status, errs, nil)
			})
		}
		http.Redirect(w, r, "/account?done=unlinked", http.StatusSeeOther)
		return nil
	}
}
