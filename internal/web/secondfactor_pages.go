package web

// The second-factor page: a session that owes its second factor gives a
// code here, or — staff without one, or a member adding one — enrols an
// authenticator app and receives recovery codes once.

import (
	"bytes"
	"encoding/base64"
	"html/template"
	"image/png"
	"net/http"
	"slices"

	"github.com/pquerna/otp"

	"steward/internal/fault"
	"steward/internal/identity"
)

type secondFactorData struct {
	Next     string
	Verify   bool // the session owes the account's factor
	Required bool // the account's role needs one
	Enrol    identity.TOTPEnrolment
	QR       template.URL // a data: URL of the otpauth QR code, made here
	Codes    []string
	Factors  []identity.Factor
	// Password asks for the password first: adding a factor needs it
	// given recently.
	Password bool
	// Passkeys: the site can use them (https); HasPasskey: the account
	// has one to give. passkey.js shows their buttons.
	Passkeys   bool
	HasPasskey bool
	// Start offers to make a key (the page a GET draws).
	Start bool
}

func (s *server) pageSecondFactor() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		return s.renderSecondFactor(w, r, a, http.StatusOK, localPath(r.URL.Query().Get("next")), nil, false)
	}
}

// pageSecondFactorBeginPost makes a new authenticator key and shows it:
// the page a GET draws only offers to (a GET writes nothing).
func (s *server) pageSecondFactorBeginPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		return s.renderSecondFactor(w, r, a, http.StatusOK, localPath(r.PostForm.Get("next")), nil, true)
	}
}

// renderSecondFactor draws the page: the code to give, or the enrolment
// — a new key when begin (only on a POST), otherwise the button that
// asks for one.
func (s *server) renderSecondFactor(w http.ResponseWriter, r *http.Request, a auth, status int, next string, errs map[string]string, begin bool) error {
	d := secondFactorData{Next: next, Verify: a.P.SecondFactor == identity.SecondFactorVerify, Required: s.d.Identity.SecondFactorRequired(a.P.Account),
		Passkeys: s.d.Identity.PasskeysEnabled()}
	var err error
	if d.Factors, err = s.d.Identity.SecondFactors(r.Context(), a.P.Account.SubjectID); err != nil {
		return err
	}
	d.HasPasskey = d.Passkeys && slices.ContainsFunc(d.Factors, func(f identity.Factor) bool { return f.Kind == identity.FactorPasskey })
	switch {
	case d.Verify:
	case !begin:
		d.Start = true
	default:
		d.Enrol, err = s.d.Identity.BeginTOTP(r.Context(), a.P)
		switch {
		case fault.Is(err, fault.ReauthNeeded):
			d.Password = true
		case err != nil:
			return err
		default:
			d.QR = qrDataURL(d.Enrol.URL)
		}
	}
	v := s.newView("Second factor", &a)
	for k, e := range errs {
		v.Errors[k] = e
	}
	v.Data = d
	w.Header().Set("Cache-Control", "no-store")
	return s.render(w, r, status, "second_factor", v)
}

// qrDataURL draws an otpauth URL as a QR code ("" if it cannot). The URL
// is a PNG this server encoded, so the template may trust it.
func qrDataURL(u string) template.URL {
	key, err := otp.NewKeyFromURL(u)
	if err != nil {
		return ""
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return ""
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return ""
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes()))
}

func (s *server) pageSecondFactorVerifyPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		next := localPath(r.PostForm.Get("next"))
		if err := s.d.Identity.VerifySecondFactor(r.Context(), a.P, r.PostForm.Get("code"), meta(r)); err != nil {
			if fault.Is(err, fault.Unauthorized) {
				return s.renderSecondFactor(w, r, a, http.StatusUnprocessableEntity, next, map[string]string{"code": problemOf(err).Detail}, false)
			}
			return err
		}
		if next == "" {
			next = "/account"
			if a.P.Account.Staff() {
				next = "/admin"
			}
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
}

func (s *server) pageSecondFactorEnrolPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		codes, err := s.d.Identity.ConfirmTOTP(r.Context(), a.P, r.PostForm.Get("id"), r.PostForm.Get("code"), meta(r))
		if err != nil {
			if fault.Is(err, fault.Unauthorized) || fault.Is(err, fault.NotFound) {
				return s.renderSecondFactor(w, r, a, http.StatusUnprocessableEntity, localPath(r.PostForm.Get("next")),
					map[string]string{"code": "That code is not right: scan the new code below and try again."}, true)
			}
			return err
		}
		v := s.newView("Second factor added", &a)
		v.Data = secondFactorData{Codes: codes, Next: localPath(r.PostForm.Get("next"))}
		w.Header().Set("Cache-Control", "no-store")
		return s.render(w, r, http.StatusOK, "second_factor", v)
	}
}

// pageSecondFactorPasswordPost takes the password before a factor is
// added, then shows the enrolment.
func (s *server) pageSecondFactorPasswordPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		next := localPath(r.PostForm.Get("next"))
		if err := s.d.Identity.Reauthenticate(r.Context(), a.P, r.PostForm.Get("password")); err != nil {
			if fault.Is(err, fault.Unauthorized) || fault.Is(err, fault.ReauthNeeded) || fault.Is(err, fault.Invalid) {
				return s.renderSecondFactor(w, r, a, http.StatusUnprocessableEntity, next, map[string]string{"password": "That password is not right."}, true)
			}
			return err
		}
		a.P.Session.AuthAt = s.d.Clock.Now() // just proved: the enrolment may begin
		return s.renderSecondFactor(w, r, a, http.StatusOK, next, nil, true)
	}
}
