package web

import (
	"net/http"
)

// handleSignInProviders lists the providers people may sign in with, for
// a site's own login page.
func (s *server) handleSignInProviders() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		return s.encode(w, http.StatusOK, map[string]any{"providers": s.d.Identity.Providers()})
	}
}

// handleMySignInLinks lists the providers linked to the member's account.
func (s *server) handleMySignInLinks() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		list, err := s.d.Identity.LinkedProviders(r.Context(), a.P.Account.SubjectID)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"links": list})
	}
}

// handleUnlinkSignIn removes the member's link to a provider.
func (s *server) handleUnlinkSignIn() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := s.d.Identity.Unlink(r.Context(), a.P, r.PathValue("provider")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
