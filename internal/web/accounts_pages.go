package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"steward/internal/fault"
	"steward/internal/identity"
	"steward/internal/policy"
	"strings"
)

// signUpData is what the sign-up page draws: the registration fields the
// policy declares (promise J1: exactly those) and the age question.
type signUpData struct {
	Sent         bool
	Fields       []formField
	AgeConfirm   bool
	AgeConfirmed bool
	MinimumAge   int
	// Providers are the services one may sign up with instead, each with
	// what it would give us.
	Providers []providerButton
}

// providerButton offers a sign-in with another service, saying what it
// imports.
type providerButton struct {
	ID, Name, Imports string
}

func (s *server) providerButtons() []providerButton {
	var out []providerButton
	for _, p := range s.d.Identity.Providers() {
		b := providerButton{ID: p.ID, Name: p.Name}
		if ip := s.d.Policy.Policy.IdentityProvider(p.ID); ip != nil {
			b.Imports = ip.Imports()
		}
		out = append(out, b)
	}
	return out
}

func (s *server) signUpForm(form url.Values, errs map[string]string) signUpData {
	reg := s.d.Policy.Policy.Registration
	d := signUpData{
		AgeConfirm:   reg.AgeCheck == policy.AgeConfirmation,
		AgeConfirmed: form.Get("age_confirmed") != "",
		MinimumAge:   s.d.Policy.Policy.MinimumAge,
		Providers:    s.providerButtons(),
	}
	for _, f := range reg.Fields {
		if f == "password" {
			continue // drawn below with its own advice
		}
		d.Fields = append(d.Fields, fieldFor(f, form.Get(f), slices.Contains(reg.Required, f) || f == "email", errs))
	}
	d.Fields = append(d.Fields, passwordField("password", "Password", "new-password",
		"At least 15 characters. A phrase of several words is easy to remember and hard to guess.", errs))
	return d
}

func (s *server) pageSignUp() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		v := s.newView("Sign up", s.optionalAuth(r))
		d := s.signUpForm(url.Values{}, v.Errors)
		d.Sent = r.URL.Query().Get("sent") != ""
		v.Data = d
		return s.render(w, r, http.StatusOK, "signup", v)
	}
}

func (s *server) pageSignUpPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		in := signUpInput(r.PostForm)
		if err := s.d.Identity.SignUp(r.Context(), in, meta(r)); err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				v := s.newView("Sign up", nil)
				v.Errors = errs
				v.Data = s.signUpForm(r.PostForm, errs)
				return s.render(w, r, status, "signup", v)
			})
		}
		http.Redirect(w, r, "/signup?sent=1", http.StatusSeeOther)
		return nil
	}
}

// signUpInput reads the sign-up form. An empty input means "not given",
// as browsers send every field of a form.
func signUpInput(form url.Values) identity.SignUpInput {
	in := identity.SignUpInput{
		Fields:       map[string]string{},
		Password:     form.Get("password"),
		AgeConfirmed: form.Get("age_confirmed") != "",
	}
	for k := range form {
		if k == "password" || k == "age_confirmed" {
			continue
		}
		if v := form.Get(k); v != "" {
			in.Fields[k] = v
		}
	}
	return in
}

// pageLogin draws the login form; next is where to go afterwards.
func (s *server) pageLogin() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		v := s.newView("Log in", s.optionalAuth(r))
		q := r.URL.Query()
		if q.Get("reset") != "" {
			v.Notice = "Your password was changed and every session ended. Log in with the new password."
		}
		v.Data = s.loginForm(localPath(q.Get("next")), "", v.Errors)
		return s.render(w, r, http.StatusOK, "login", v)
	}
}

type loginData struct {
	Next      string
	Fields    []formField
	Providers []providerButton
}

func (s *server) loginForm(next, email string, errs map[string]string) loginData {
	return loginData{Next: next, Providers: s.providerButtons(), Fields: []formField{
		fieldFor("email", email, true, errs),
		passwordField("password", "Password", "current-password", "", errs),
	}}
}

func (s *server) pageLoginPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		email, next := r.PostForm.Get("email"), localPath(r.PostForm.Get("next"))
		sess, tok, err := s.d.Identity.Login(r.Context(), email, r.PostForm.Get("password"), meta(r))
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				v := s.newView("Log in", nil)
				v.Errors = errs
				v.Data = s.loginForm(next, email, errs)
				return s.render(w, r, status, "login", v)
			})
		}
		s.setSessionCookie(w, r, tok, sess.ExpiresAt)
		if next == "" {
			next = "/account"
			// Staff come to work: their start page is the console.
			if p, err := s.d.Identity.Authenticate(r.Context(), tok); err == nil && identity.HasRole(p.Account, staffRoles...) {
				next = "/admin"
			}
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
}

// localPath accepts only a path on this site as a redirect target, so the
// login form cannot be made into an open redirect.
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return next
}

func (s *server) pageLogout() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if tok := sessionToken(r); tok != "" {
			if err := s.d.Identity.Logout(r.Context(), tok); err != nil && !fault.Is(err, fault.Unauthorized) && !fault.Is(err, fault.NotFound) {
				return err
			}
		}
		s.clearSessionCookie(w, r)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
}

type verifyData struct {
	Token  string
	Fields []formField
}

// pageVerifyEmail shows a button that confirms the token: the GET itself
// changes nothing, so link scanners in mail systems cannot use up the
// token.
func (s *server) pageVerifyEmail() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		v := s.newView("Verify your email address", s.optionalAuth(r))
		v.Data = verifyData{Token: r.URL.Query().Get("token"), Fields: []formField{fieldFor("email", "", true, v.Errors)}}
		return s.render(w, r, http.StatusOK, "verify_email", v)
	}
}

func (s *server) pageVerifyEmailPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		tok := r.PostForm.Get("token")
		var err error
		if tok == "" {
			err = fault.FieldError("token", "the verification link is incomplete; ask for a new one below")
		} else {
			err = s.d.Identity.VerifyEmail(r.Context(), tok)
		}
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				v := s.newView("Verify your email address", nil)
				if msg, ok := errs["token"]; ok {
					errs[""] = msg
				}
				v.Errors = errs
				v.Data = verifyData{Fields: []formField{fieldFor("email", "", true, errs)}}
				return s.render(w, r, status, "verify_email", v)
			})
		}
		return s.message(w, r, http.StatusOK, "Email address verified",
			"Thank you: your email address is verified.", &pageLink{Href: "/account", Text: "Go to your account"})
	}
}

// emailForm posts a form that asks for an email address alone and mails
// it (send): on a refusal the form is drawn again with the errors, else
// done answers.
func (s *server) emailForm(title, tmpl string, data func([]formField) any,
	send func(ctx context.Context, email string, m identity.Meta) error, done handler) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		email := r.PostForm.Get("email")
		if err := send(r.Context(), email, meta(r)); err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				v := s.newView(title, nil)
				v.Errors = errs
				v.Data = data([]formField{fieldFor("email", email, true, errs)})
				return s.render(w, r, status, tmpl, v)
			})
		}
		return done(w, r)
	}
}

func (s *server) pageResendVerificationPost() handler {
	return s.emailForm("Verify your email address", "verify_email",
		func(f []formField) any { return verifyData{Fields: f} }, s.d.Identity.ResendVerification,
		func(w http.ResponseWriter, r *http.Request) error {
			return s.message(w, r, http.StatusOK, "Check your inbox", msgResend, nil)
		})
}

type resetData struct {
	Sent   bool
	Token  string
	Fields []formField
}

func (s *server) pageResetPassword() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		v := s.newView("Reset your password", s.optionalAuth(r))
		q := r.URL.Query()
		d := resetData{Sent: q.Get("sent") != "", Token: q.Get("token")}
		if d.Token != "" {
			d.Fields = []formField{passwordField("password", "New password", "new-password", "", v.Errors)}
		} else {
			d.Fields = []formField{fieldFor("email", "", true, v.Errors)}
		}
		v.Data = d
		return s.render(w, r, http.StatusOK, "reset_password", v)
	}
}

func (s *server) pageResetPasswordPost() handler {
	return s.emailForm("Reset your password", "reset_password",
		func(f []formField) any { return resetData{Fields: f} }, s.d.Identity.RequestPasswordReset,
		func(w http.ResponseWriter, r *http.Request) error {
			http.Redirect(w, r, "/reset-password?sent=1", http.StatusSeeOther)
			return nil
		})
}

func (s *server) pageResetConfirmPost() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := parseForm(r); err != nil {
			return err
		}
		tok := r.PostForm.Get("token")
		var err error
		if tok == "" {
			err = fault.FieldError("token", "the reset link is incomplete; ask for a new one")
		} else {
			err = s.d.Identity.ResetPassword(r.Context(), tok, r.PostForm.Get("password"), meta(r))
		}
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				v := s.newView("Reset your password", nil)
				if msg, ok := errs["token"]; ok {
					errs[""] = msg
				}
				v.Errors = errs
				v.Data = resetData{Token: tok, Fields: []formField{passwordField("password", "New password", "new-password", "", errs)}}
				return s.render(w, r, status, "reset_password", v)
			})
		}
		if _, cerr := r.Cookie(SessionCookie); cerr == nil {
			s.clearSessionCookie(w, r)
		}
		http.Redirect(w, r, "/login?reset=1", http.StatusSeeOther)
		return nil
	}
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
	// Links are the services linked to the account; Picture is the URL
	// of the picture one gave at sign-up.
	Links   []identity.LinkedProvider
	Picture string
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
	case "signed-up":
		return "Your account was created with what the service you signed in with gave us, as the privacy notice lists."
	case "linked":
		return "The service is linked: signing in with it now opens this account."
	case "unlinked":
		return "The service is unlinked: signing in with it no longer opens this account."
	default:
		return ""
	}
}

// renderAccount draws the account page. form, when set, refills the
// profile inputs after a failed submission.
func (s *server) renderAccount(w http.ResponseWriter, r *http.Request, a auth, status int, errs map[string]string, form map[string]string) error {
	prof, err := s.d.Identity.Profile(r.Context(), a.P)
	if err != nil {
		return err
	}
	sessions, err := s.d.Identity.SessionsOf(r.Context(), a.P)
	if err != nil {
		return err
	}
	links, err := s.d.Identity.LinkedProviders(r.Context(), a.P.Account.SubjectID)
	if err != nil {
		return err
	}
	if errs == nil {
		errs = map[string]string{}
	}
	d := accountData{
		Verified:     prof.Account.EmailVerified,
		PendingEmail: prof.PendingEmail,
		Sessions:     sessionsJSON(sessions, a.P.Session.ID),
		Links:        links,
		Picture:      prof.Picture,
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
	return s.render(w, r, status, "account", v)
}

func (s *server) pageAccount() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.renderAccount(w, r, a, http.StatusOK, nil, nil)
	}
}

func (s *server) pageAccountProfilePost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		changes := map[string]string{}
		for k := range r.PostForm {
			if k != "current_password" {
				changes[k] = r.PostForm.Get(k)
			}
		}
		prof, err := s.d.Identity.UpdateProfile(r.Context(), a.P, changes, r.PostForm.Get("current_password"))
		if err != nil {
			err = renameField(err, map[string]string{"password": "current_password"})
			return redraw(err, func(status int, errs map[string]string) error {
				return s.renderAccount(w, r, a, status, errs, changes)
			})
		}
		done := "profile"
		if e, ok := changes["email"]; ok && prof.PendingEmail != "" && strings.EqualFold(strings.TrimSpace(e), prof.PendingEmail) {
			done = "email"
		}
		http.Redirect(w, r, "/account?done="+done, http.StatusSeeOther)
		return nil
	}
}

func (s *server) pageAccountPasswordPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		err := s.d.Identity.ChangePassword(r.Context(), a.P, r.PostForm.Get("password_current"), r.PostForm.Get("password_new"))
		if err != nil {
			return redraw(err, func(status int, errs map[string]string) error {
				// identity names the fields of ChangePassword new_password
				// and password (the current one, for re-authentication).
				for from, to := range map[string]string{"password": "password_current", "new_password": "password_new"} {
					if m, ok := errs[from]; ok {
						delete(errs, from)
						errs[to] = m
					}
				}
				return s.renderAccount(w, r, a, status, errs, nil)
			})
		}
		http.Redirect(w, r, "/account?done=password", http.StatusSeeOther)
		return nil
	}
}

func (s *server) pageRevokeSessionPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		id := r.PathValue("id")
		if err := s.d.Identity.RevokeSession(r.Context(), a.P.Account.SubjectID, id); err != nil {
			return err
		}
		if id == a.P.Session.ID {
			s.clearSessionCookie(w, r)
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return nil
		}
		http.Redirect(w, r, "/account?done=revoked", http.StatusSeeOther)
		return nil
	}
}

func (s *server) pageRevokeOthersPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if _, err := s.d.Identity.RevokeOtherSessions(r.Context(), a.P); err != nil {
			return err
		}
		http.Redirect(w, r, "/account?done=revoked-others", http.StatusSeeOther)
		return nil
	}
}
