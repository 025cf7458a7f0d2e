package web

import (
	"errors"
	"net/http"

	"steward/internal/fault"
	"steward/internal/identity"
)

// handler is what every route's handler is: it decodes, calls a service
// and writes the answer, or returns an error without writing anything.
// The route table wraps it in api or page, which turn the error into the
// one response its kind of client expects.
type handler func(w http.ResponseWriter, r *http.Request) error

// authed is a handler that runs only for a signed-in member. The
// principal is passed as an argument rather than carried in the request
// context, so what a handler depends on shows in its signature.
type authed func(w http.ResponseWriter, r *http.Request, a auth) error

// api serves a JSON endpoint: an error becomes an RFC 9457
// application/problem+json response.
func (s *server) api(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.problemJSON(w, r, err)
		}
	})
}

// page serves a page or a browser form: an error becomes an HTML error
// page, or the form drawn again with the message beside its field when the
// handler returned redraw's error. A browser never gets problem+json here.
func (s *server) page(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.pageError(w, r, err)
		}
	})
}

// formError carries a form's failure to the page adapter together with the
// function that draws the form again.
type formError struct {
	err    error
	redraw func(status int, errs map[string]string) error
}

func (e *formError) Error() string { return e.err.Error() }
func (e *formError) Unwrap() error { return e.err }

// redraw returns err so that the page adapter draws the form again with
// the message beside the field the error names (or above the form), with
// the error's status. Server faults get the error page instead.
func redraw(err error, draw func(status int, errs map[string]string) error) error {
	return &formError{err: err, redraw: draw}
}

// pageError writes err for a browser.
func (s *server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *formError
	if errors.As(err, &fe) {
		p := problemOf(fe.err)
		if p.Status < 500 {
			p.Instance = infoOf(r).id
			s.logFailure(r, p, fe.err)
			setProblemHeaders(w, p, fe.err)
			if derr := fe.redraw(p.Status, map[string]string{p.Field: p.Detail}); derr == nil {
				return
			} else {
				err = derr
			}
		} else {
			err = fe.err
		}
	}
	s.errorPage(w, r, err)
}

// apiAuth guards a JSON endpoint: 401 problem without a valid session.
func (s *server) apiAuth(h authed) http.Handler {
	return s.apiAuthOwing(func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := owesSecondFactor(a); err != nil {
			return err
		}
		return h(w, r, a)
	})
}

// apiAuthOwing is apiAuth for the few endpoints a session that still owes
// its second factor may reach: giving or enrolling it, and signing out.
func (s *server) apiAuthOwing(h authed) http.Handler {
	return s.api(func(w http.ResponseWriter, r *http.Request) error {
		a, err := s.authenticate(r)
		if err != nil {
			return err
		}
		return h(w, r, a)
	})
}

// owesSecondFactor refuses a session that must still give or enrol a
// second factor: it reaches no personal data until it has.
func owesSecondFactor(a auth) error {
	switch a.P.SecondFactor {
	case identity.SecondFactorVerify:
		return fault.New(fault.SecondFactorNeeded, "give your second factor first (POST /api/v1/sessions/current/second-factor, or …/second-factor/passkey)")
	case identity.SecondFactorEnrol:
		return fault.New(fault.SecondFactorNeeded, "your role needs a second factor: add one first (an authenticator app, POST /api/v1/me/second-factors/totp, or a passkey, POST /api/v1/me/second-factors/passkey/options)")
	}
	return nil
}

// apiRole guards a staff JSON endpoint: 401 without a session, 403
// without one of roles (admin holds every role).
func (s *server) apiRole(h authed, roles ...string) http.Handler {
	return s.apiAuth(requireRole(h, roles))
}

// pageRole guards a staff page: signed in, and holding one of roles
// (admin holds every role).
func (s *server) pageRole(h authed, roles ...string) http.Handler {
	return s.pageAuth(requireRole(h, roles))
}
