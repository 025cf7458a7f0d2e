package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"steward/internal/fault"
	"steward/internal/identity"
	"steward/internal/policy"
)

func (s *server) pageHome() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := s.newView("Welcome", s.optionalAuth(r))
		v.Data = struct{ Demo bool }{Demo: s.d.Config.DemoDir != nil}
		s.render(w, r, http.StatusOK, "home", v)
	})
}

// signUpData is what the sign-up page draws: the registration fields the
// policy declares (promise J1: exactly those) and the age question.
type signUpData struct {
	Sent         bool
	Fields       []formField
	AgeConfirm   bool
	AgeConfirmed bool
	MinimumAge   int
}

func (s *server) signUpForm(form url.Values, errs map[string]string) signUpData {
	reg := s.d.Policy.Registration
	d := signUpData{
		AgeConfirm:   reg.AgeCheck == policy.AgeConfirmation,
		AgeConfirmed: form.Get("age_confirmed") != "",
		MinimumAge:   s.d.Policy.MinimumAge,
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

func (s *server) pageSignUp() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := s.newView("Sign up", s.optionalAuth(r))
		d := s.signUpForm(url.Values{}, v.Errors)
		d.Sent = r.URL.Query().Get("sent") != ""
		v.Data = d
		s.render(w, r, http.StatusOK, "signup", v)
	})
}

func (s *server) pageSignUpPost() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		in := signUpInput(r.PostForm)
		if err := s.d.Identity.SignUp(r.Context(), in, meta(r)); err != nil {
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				v := s.newView("Sign up", nil)
				v.Errors = errs
				v.Data = s.signUpForm(r.PostForm, errs)
				s.render(w, r, status, "signup", v)
			})
			return
		}
		http.Redirect(w, r, "/signup?sent=1", http.StatusSeeOther)
	})
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
func (s *server) pageLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := s.newView("Log in", s.optionalAuth(r))
		q := r.URL.Query()
		if q.Get("reset") != "" {
			v.Notice = "Your password was changed and every session ended. Log in with the new password."
		}
		v.Data = s.loginForm(localPath(q.Get("next")), "", v.Errors)
		s.render(w, r, http.StatusOK, "login", v)
	})
}

type loginData struct {
	Next   string
	Fields []formField
}

func (s *server) loginForm(next, email string, errs map[string]string) loginData {
	return loginData{Next: next, Fields: []formField{
		fieldFor("email", email, true, errs),
		passwordField("password", "Password", "current-password", "", errs),
	}}
}

func (s *server) pageLoginPost() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		email, next := r.PostForm.Get("email"), localPath(r.PostForm.Get("next"))
		sess, tok, err := s.d.Identity.Login(r.Context(), email, r.PostForm.Get("password"), meta(r))
		if err != nil {
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				v := s.newView("Log in", nil)
				v.Errors = errs
				v.Data = s.loginForm(next, email, errs)
				s.render(w, r, status, "login", v)
			})
			return
		}
		s.setSessionCookie(w, r, tok, sess.ExpiresAt)
		if next == "" {
			next = "/account"
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
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

func (s *server) pageLogout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := sessionToken(r); tok != "" {
			if err := s.d.Identity.Logout(r.Context(), tok); err != nil && !fault.Is(err, fault.Unauthorized) && !fault.Is(err, fault.NotFound) {
				s.errorPage(w, r, err)
				return
			}
		}
		s.clearSessionCookie(w, r)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
}

type verifyData struct {
	Token  string
	Fields []formField
}

// pageVerifyEmail shows a button that confirms the token: the GET itself
// changes nothing, so link scanners in mail systems cannot use up the
// token.
func (s *server) pageVerifyEmail() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := s.newView("Verify your email address", s.optionalAuth(r))
		v.Data = verifyData{Token: r.URL.Query().Get("token"), Fields: []formField{fieldFor("email", "", true, v.Errors)}}
		s.render(w, r, http.StatusOK, "verify_email", v)
	})
}

func (s *server) pageVerifyEmailPost() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		tok := r.PostForm.Get("token")
		var err error
		if tok == "" {
			err = fault.FieldError("token", "the verification link is incomplete; ask for a new one below")
		} else {
			err = s.d.Identity.VerifyEmail(r.Context(), tok)
		}
		if err != nil {
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				v := s.newView("Verify your email address", nil)
				if msg, ok := errs["token"]; ok {
					errs[""] = msg
				}
				v.Errors = errs
				v.Data = verifyData{Fields: []formField{fieldFor("email", "", true, errs)}}
				s.render(w, r, status, "verify_email", v)
			})
			return
		}
		s.message(w, r, http.StatusOK, "Email address verified",
			"Thank you: your email address is verified.", &pageLink{Href: "/account", Text: "Go to your account"})
	})
}

func (s *server) pageResendVerificationPost() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		email := r.PostForm.Get("email")
		if err := s.d.Identity.ResendVerification(r.Context(), email, meta(r)); err != nil {
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				v := s.newView("Verify your email address", nil)
				v.Errors = errs
				v.Data = verifyData{Fields: []formField{fieldFor("email", email, true, errs)}}
				s.render(w, r, status, "verify_email", v)
			})
			return
		}
		s.message(w, r, http.StatusOK, "Check your inbox", msgResend, nil)
	})
}

type resetData struct {
	Sent   bool
	Token  string
	Fields []formField
}

func (s *server) pageResetPassword() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := s.newView("Reset your password", s.optionalAuth(r))
		q := r.URL.Query()
		d := resetData{Sent: q.Get("sent") != "", Token: q.Get("token")}
		if d.Token != "" {
			d.Fields = []formField{passwordField("password", "New password", "new-password", "", v.Errors)}
		} else {
			d.Fields = []formField{fieldFor("email", "", true, v.Errors)}
		}
		v.Data = d
		s.render(w, r, http.StatusOK, "reset_password", v)
	})
}

func (s *server) pageResetPasswordPost() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		email := r.PostForm.Get("email")
		if err := s.d.Identity.RequestPasswordReset(r.Context(), email, meta(r)); err != nil {
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				v := s.newView("Reset your password", nil)
				v.Errors = errs
				v.Data = resetData{Fields: []formField{fieldFor("email", email, true, errs)}}
				s.render(w, r, status, "reset_password", v)
			})
			return
		}
		http.Redirect(w, r, "/reset-password?sent=1", http.StatusSeeOther)
	})
}

func (s *server) pageResetConfirmPost() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.errorPage(w, r, err)
			return
		}
		tok := r.PostForm.Get("token")
		var err error
		if tok == "" {
			err = fault.FieldError("token", "the reset link is incomplete; ask for a new one")
		} else {
			err = s.d.Identity.ResetPassword(r.Context(), tok, r.PostForm.Get("password"), meta(r))
		}
		if err != nil {
			s.formFailed(w, r, err, func(status int, errs map[string]string) {
				v := s.newView("Reset your password", nil)
				if msg, ok := errs["token"]; ok {
					errs[""] = msg
				}
				v.Errors = errs
				v.Data = resetData{Token: tok, Fields: []formField{passwordField("password", "New password", "new-password", "", errs)}}
				s.render(w, r, status, "reset_password", v)
			})
			return
		}
		if _, cerr := r.Cookie(SessionCookie); cerr == nil {
			s.clearSessionCookie(w, r)
		}
		http.Redirect(w, r, "/login?reset=1", http.StatusSeeOther)
	})
}
