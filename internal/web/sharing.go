package web

// Shared accounts over the API: a primary holder invites a sub-account or
// an authorised user, the invitee accepts, either side lists and revokes,
// and the reader reads what was shared with them.

import (
	"net/http"
	"strings"

	"steward/internal/identity"
)

type invitation struct {
	Kind       string   `json:"kind"`
	Email      string   `json:"email"`
	Categories []string `json:"categories"`
	MayRequest bool     `json:"may_request"`
}

type tokenInput struct {
	Token string `json:"token"`
}

func (s *server) handleInvite() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in invitation
		if err := decode(r, &in); err != nil {
			return err
		}
		d, err := s.d.Identity.Invite(r.Context(), a.P, in.Kind, in.Email, identity.Grant{Categories: in.Categories, MayRequest: in.MayRequest})
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, d)
	}
}

func (s *server) handleDelegations() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		ds, err := s.d.Identity.Delegations(r.Context(), a.P)
		if err != nil {
			return err
		}
		if ds == nil {
			ds = []identity.Delegation{}
		}
		return s.encode(w, http.StatusOK, map[string]any{"delegations": ds})
	}
}

func (s *server) handleAcceptInvitation() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in tokenInput
		if err := decode(r, &in); err != nil {
			return err
		}
		d, err := s.d.Identity.AcceptInvitation(r.Context(), a.P, in.Token)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, d)
	}
}

func (s *server) handleRevokeDelegation() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := s.d.Identity.RevokeDelegation(r.Context(), a.P, r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// handleReadShared reads an account shared with the caller: the
// categories query parameter (comma-separated) narrows it.
func (s *server) handleReadShared() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var cats []string
		if c := r.URL.Query().Get("categories"); c != "" {
			cats = strings.Split(c, ",")
		}
		fields, err := s.d.Identity.ReadShared(r.Context(), a.P, r.PathValue("id"), cats)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"fields": fields})
	}
}

// pageAcceptInvitation shows the button that accepts a mailed invitation:
// opening the link changes nothing by itself.
func (s *server) pageAcceptInvitation() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		v := s.newView("Accept an invitation", &a)
		v.Data = r.URL.Query().Get("token")
		return s.render(w, r, http.StatusOK, "sharing_accept", v)
	}
}

func (s *server) pageAcceptInvitationPost() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := parseForm(r); err != nil {
			return err
		}
		d, err := s.d.Identity.AcceptInvitation(r.Context(), a.P, r.PostForm.Get("token"))
		if err != nil {
			return err
		}
		what := "They may now see your " + strings.Join(d.Grant.Categories, ", ") + " data."
		if d.Kind == identity.DelegateAuthorised {
			what = "You may now see their " + strings.Join(d.Grant.Categories, ", ") + " data."
		}
		return s.message(w, r, http.StatusOK, "Invitation accepted", what+" Either of you can stop sharing at any time.", nil)
	}
}

// handleFileForShared files a rights request for a sub-account whose
// holder let the primary file them (may_request). The request is the
// sub-account's own: it appears in their requests, its mails and any
// download go to them; the primary gets its id and status.
func (s *server) handleFileForShared() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var b requestBody
		if err := decode(r, &b); err != nil {
			return err
		}
		if b.Email != "" {
			return badRequest("email", "the request is about the sub-account in the path; leave email out", nil)
		}
		subjectID := r.PathValue("id")
		if err := s.d.Identity.MayRequestFor(r.Context(), a.P, subjectID); err != nil {
			return err
		}
		req, err := s.d.Rights.FileFor(r.Context(), s.requester(a, b.Password), subjectID, b.filing())
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, s.requestOut(req, ""))
	}
}
