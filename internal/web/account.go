package web

import (
	"net/http"
	"time"

	"steward/internal/identity"
)

// profileOut is the JSON shape of GET/PATCH /api/v1/me.
type profileOut struct {
	ID            string            `json:"id"`
	Email         string            `json:"email"`
	EmailVerified bool              `json:"email_verified"`
	PendingEmail  string            `json:"pending_email,omitempty"`
	Role          string            `json:"role,omitempty"`
	Fields        map[string]string `json:"fields"`
	SelfEditable  []string          `json:"self_editable"`
	CreatedAt     time.Time         `json:"created_at"`
}

func profileJSON(p identity.Profile) profileOut {
	out := profileOut{
		ID: p.Account.SubjectID, Email: p.Account.Email, EmailVerified: p.Account.EmailVerified,
		PendingEmail: p.PendingEmail, Role: p.Account.Role, Fields: p.Fields, SelfEditable: []string{},
		CreatedAt: p.Account.CreatedAt,
	}
	if out.Fields == nil {
		out.Fields = map[string]string{}
	}
	for _, f := range p.Order {
		if p.Editable[f] {
			out.SelfEditable = append(out.SelfEditable, f)
		}
	}
	return out
}

// accountData is what the account page draws.
type accountData struct {
	Verified        bool
	PendingEmail    string
	Fixed           []formField // shown, not editable here
	Editable        []formField
	ProfilePassword formField
	PasswordFields  []formField
	Sessions        []sessionJSON
}

// accountNotices are the messages shown after a form on the account page
// redirected back to it (POST, then redirect, then GET).
func accountNotice(done string) string {
	switch done {
	case "profile":
		return "Your details were saved."
	case "email":
		return "Your details were saved. Follow the link we sent to the new address to complete the change; the old address was told."
	case "password":
		return "Your password was changed."
	case "revoked":
		return "The session was revoked."
	case "revoked-others":
		return "You were signed out everywhere else."
	default:
		return ""
	}
}

// renderAccount draws the account page. form, when set, refills the
// profile inputs after a failed submission.
func (s *server) renderAccount(w http.ResponseWriter, r *http.Request, a auth, status int, errs map[string]string, form map[string]string) {
	prof, err := s.d.Identity.Profile(r.Context(), a.P)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	sessions, err := s.d.Identity.SessionsOf(r.Context(), a.P)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	if errs == nil {
		errs = map[string]string{}
	}
	d := accountData{
		Verified:     prof.Account.EmailVerified,
		PendingEmail: prof.PendingEmail,
		Sessions:     sessionsJSON(sessions, a.P.Session.ID),
		ProfilePassword: passwordField("current_password", "Current password", "current-password",
			"Needed to change your email address if you logged in more than 10 minutes ago.", errs),
		PasswordFields: []formField{
			passwordField("password_current", "Current password", "current-password", "", errs),
			passwordField("password_new", "New password", "new-password", "At least 15 characters.", errs),
		},
	}
	d.ProfilePassword.Required = false
	for _, f := range prof.Order {
		val := prof.Fields[f]
		if v, ok := form[f]; ok {
			val = v
		}
		ff := fieldFor(f, val, false, errs)
		if prof.Editable[f] {
			d.Editable = append(d.Editable, ff)
		} else {
			d.Fixed = append(d.Fixed, ff)
		}
	}
	v := s.newView("Your account", &a)
	v.Errors = errs
	v.Notice = accountNotice(r.URL.Query().Get("done"))
	v.Data = d
	s.render(w, r, status, "account", v)
}

func (s *server) pageAccount() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		s.renderAccount(w, r, a, http.StatusOK, nil, nil)
	}
}

func (s *server) pageAccountProfilePost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		changes := map[string]string{}
		for k := range r.PostForm {
			if k != "current_password" {
				changes[k] = r.PostForm.Get(k)
			}
		}
		before := a.P.Account.Email
		prof, err := s.d.Identity.UpdateProfile(r.Context(), a.P, changes, r.PostForm.Get("current_password"))
		if err != nil {
			err = renameField(err, map[string]string{"password": "current_password"})
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				s.renderAccount(w, r, a, status, errs, changes)
			})
			return
		}
		done := "profile"
		if e, ok := changes["email"]; ok && e != before && prof.PendingEmail != "" {
			done = "email"
		}
		http.Redirect(w, r, "/account?done="+done, http.StatusSeeOther)
	}
}

func (s *server) pageAccountPasswordPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		err := s.d.Identity.ChangePassword(r.Context(), a.P, r.PostForm.Get("password_current"), r.PostForm.Get("password_new"))
		if err != nil {
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				// identity names the fields of ChangePassword new_password
				// and password (the current one, for re-authentication).
				for from, to := range map[string]string{"password": "password_current", "new_password": "password_new"} {
					if m, ok := errs[from]; ok {
						delete(errs, from)
						errs[to] = m
					}
				}
				s.renderAccount(w, r, a, status, errs, nil)
			})
			return
		}
		http.Redirect(w, r, "/account?done=password", http.StatusSeeOther)
	}
}

func (s *server) pageRevokeSessionPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		id := r.PathValue("id")
		if err := s.d.Identity.RevokeSession(r.Context(), a.P.Account.SubjectID, id); err != nil {
			s.errorPage(w, r, err)
			return
		}
		if id == a.P.Session.ID {
			s.clearSessionCookie(w, r)
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/account?done=revoked", http.StatusSeeOther)
	}
}

func (s *server) pageRevokeOthersPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if _, err := s.d.Identity.RevokeOtherSessions(r.Context(), a.P); err != nil {
			s.errorPage(w, r, err)
			return
		}
		http.Redirect(w, r, "/account?done=revoked-others", http.StatusSeeOther)
	}
}
