package web

import (
	"net/http"
	"strconv"

	"steward/internal/consent"
	"steward/internal/fault"
	"steward/internal/notice"
)

// This file serves notices: staff broadcasts (a change of ownership, a
// breach) and the member's side of policy changes that reduce rights (the
// pending changes and their acceptance).

func (s *server) handleBroadcast() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		var in notice.BroadcastInput
		if err := decode(r, &in); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		n, err := s.d.Notices.Broadcast(r.Context(), a.P.Account.SubjectID, in)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusAccepted, n)
	}
}

func (s *server) handleNotices() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		ns, err := s.d.Notices.List(r.Context(), s.d.DB)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusOK, map[string]any{"notices": ns})
	}
}

type policyChangesBody struct {
	Version int                    `json:"version"`
	Pending []notice.PendingChange `json:"pending"`
}

func (s *server) handlePolicyChanges() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		p, err := s.d.Notices.Pending(r.Context(), s.d.DB, a.P.Account.SubjectID)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusOK, policyChangesBody{Version: s.d.PolicyVersion, Pending: p})
	}
}

func (s *server) handleAcceptPolicy() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		n, err := strconv.Atoi(r.PathValue("version"))
		if err != nil || n < 1 {
			s.problemJSON(w, r, fault.FieldError("version", "the version must be a positive integer"))
			return
		}
		if err := s.d.Notices.Accept(r.Context(), a.P.Account.SubjectID, n, consent.MethodAPI, evidenceOf(r)); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}
