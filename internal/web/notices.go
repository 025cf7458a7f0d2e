package web

// Staff notices over the API: broadcasts to everyone (a change of
// ownership, a breach) and the list of notices with their progress.

import (
	"net/http"
	"steward/internal/notice"
)

func (s *server) handleBroadcast() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in notice.BroadcastInput
		if err := decode(r, &in); err != nil {
			return err
		}
		n, err := s.d.Notices.Broadcast(r.Context(), a.P.Account.SubjectID, in)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, n)
	}
}

func (s *server) handleNotices() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		ns, err := s.d.Notices.List(r.Context())
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"notices": ns})
	}
}
