package web

// Second factors over the API: enrol an authenticator app, give a code
// for the session, list and remove factors.

import (
	"net/http"

	"steward/internal/identity"
)

type codeInput struct {
	Code string `json:"code"`
}

type passwordInput struct {
	Password string `json:"password"`
}

func (s *server) handleSecondFactors() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		fs, err := s.d.Identity.SecondFactors(r.Context(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		if fs == nil {
			fs = []identity.Factor{}
		}
		return s.encode(w, http.StatusOK, map[string]any{"factors": fs, "required": s.d.Identity.SecondFactorRequired(a.P.Account)})
	}
}

// handleBeginTOTP starts an enrolment. Adding a factor needs the password
// given recently: a body {"password": …} gives it now.
func (s *server) handleBeginTOTP() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		a, err := s.withPassword(r, a)
		if err != nil {
			return err
		}
		e, err := s.d.Identity.BeginTOTP(r.Context(), a.P)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		return s.encode(w, http.StatusCreated, e)
	}
}

// withPassword takes the password when the body gives one
// ({"password": …}) and returns the session as it stands after it.
func (s *server) withPassword(r *http.Request, a auth) (auth, error) {
	if r.ContentLength == 0 {
		return a, nil
	}
	var in passwordInput
	if err := decode(r, &in); err != nil {
		return a, err
	}
	if err := s.d.Identity.Reauthenticate(r.Context(), a.P, in.Password); err != nil {
		return a, err
	}
	p, err := s.d.Identity.Authenticate(r.Context(), a.Token)
	if err != nil {
		return a, err
	}
	a.P = p
	return a, nil
}

func (s *server) handleConfirmTOTP() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in codeInput
		if err := decode(r, &in); err != nil {
			return err
		}
		codes, err := s.d.Identity.ConfirmTOTP(r.Context(), a.P, r.PathValue("id"), in.Code, meta(r))
		if err != nil {
			return err
		}
		return s.recoveryCodes(w, codes)
	}
}

func (s *server) handleGiveSecondFactor() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in codeInput
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := s.d.Identity.VerifySecondFactor(r.Context(), a.P, in.Code, meta(r)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *server) handleRemoveSecondFactor() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in passwordInput
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := s.d.Identity.Reauthenticate(r.Context(), a.P, in.Password); err != nil {
			return err
		}
		p, err := s.d.Identity.Authenticate(r.Context(), a.Token)
		if err != nil {
			return err
		}
		if err := s.d.Identity.RemoveSecondFactor(r.Context(), p, r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// recoveryCodes answers a new second factor with the recovery codes it
// made (shown only now, so never cached).
func (s *server) recoveryCodes(w http.ResponseWriter, codes []string) error {
	if codes == nil {
		codes = []string{}
	}
	w.Header().Set("Cache-Control", "no-store")
	return s.encode(w, http.StatusOK, map[string]any{"recovery_codes": codes})
}
