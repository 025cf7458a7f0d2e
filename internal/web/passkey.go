package web

// Passkeys over the API: the options for navigator.credentials.create or
// .get, and the browser's answer, to add a passkey or give it for the
// session. The page's passkey.js calls these.

import (
	"encoding/json"
	"net/http"
)

// handleBeginPasskeyRegistration returns the creation options. Adding a
// factor needs the password given recently: a body {"password": …} gives
// it now.
func (s *server) handleBeginPasskeyRegistration() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		a, err := s.withPassword(r, a)
		if err != nil {
			return err
		}
		opts, err := s.d.Identity.BeginPasskeyRegistration(r.Context(), a.P)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		return s.encode(w, http.StatusOK, opts)
	}
}

func (s *server) handleFinishPasskeyRegistration() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in json.RawMessage
		if err := decode(r, &in); err != nil {
			return err
		}
		codes, err := s.d.Identity.FinishPasskeyRegistration(r.Context(), a.P, in, meta(r))
		if err != nil {
			return err
		}
		return s.recoveryCodes(w, codes)
	}
}

func (s *server) handleBeginPasskeyLogin() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		opts, err := s.d.Identity.BeginPasskeyLogin(r.Context(), a.P)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		return s.encode(w, http.StatusOK, opts)
	}
}

func (s *server) handleFinishPasskeyLogin() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in json.RawMessage
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := s.d.Identity.FinishPasskeyLogin(r.Context(), a.P, in, meta(r)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
