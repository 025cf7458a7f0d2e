package web

import (
	"encoding/json"
	"net/http"
	"steward/internal/fault"
	"steward/internal/identity"
	"time"
)

// acceptedBody is the answer to every request whose outcome must not tell
// whether an address is registered: sign-up, resend, password reset.
type acceptedBody struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func accepted(msg string) acceptedBody { return acceptedBody{Status: "accepted", Message: msg} }

const (
	msgSignUp = "If this address can be used, a message is on its way to it. Follow the link in it to continue."
	msgResend = "If an unverified account uses this address, a new verification link is on its way."
	msgReset  = "If an account uses this address, a password reset link is on its way."
)

// stringFields decodes the values of a flat JSON object of strings,
// naming the first field whose value is not a string. A field the policy
// does not declare is named as unknown rather than as a wrong type: the
// domain refuses it either way, and "must be a string" would suggest that
// a string would do.
func (s *server) stringFields(body map[string]json.RawMessage, skip ...string) (map[string]string, error) {
	out := make(map[string]string, len(body))
outer:
	for k, raw := range body {
		for _, sk := range skip {
			if k == sk {
				continue outer
			}
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			if s.d.Policy.Policy.CategoryOfField(k) == "" {
				return nil, badRequest(k, "unknown field "+k, nil)
			}
			return nil, badRequest(k, k+" must be a string", err)
		}
		out[k] = v
	}
	return out, nil
}

func (s *server) handleSignUp() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var body map[string]json.RawMessage
		if err := decode(r, &body); err != nil {
			return err
		}
		in := identity.SignUpInput{}
		if raw, ok := body["password"]; ok {
			if err := json.Unmarshal(raw, &in.Password); err != nil {
				return badRequest("password", "password must be a string", err)
			}
		}
		if raw, ok := body["age_confirmed"]; ok {
			if err := json.Unmarshal(raw, &in.AgeConfirmed); err != nil {
				return badRequest("age_confirmed", "age_confirmed must be true or false", err)
			}
		}
		fields, err := s.stringFields(body, "password", "age_confirmed")
		if err != nil {
			return err
		}
		in.Fields = fields
		if err := s.d.Identity.SignUp(r.Context(), in, meta(r)); err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, accepted(msgSignUp))
	}
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type sessionCreated struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	SessionID string    `json:"session_id"`
}

func (s *server) handleLogin() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in loginRequest
		if err := decode(r, &in); err != nil {
			return err
		}
		sess, tok, err := s.d.Identity.Login(r.Context(), in.Email, in.Password, meta(r))
		if err != nil {
			return err
		}
		s.setSessionCookie(w, r, tok, sess.ExpiresAt)
		return s.encode(w, http.StatusCreated, sessionCreated{Token: tok, ExpiresAt: sess.ExpiresAt, SessionID: sess.ID})
	}
}

func (s *server) handleLogout() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		if err := s.d.Identity.Logout(r.Context(), a.Token); err != nil {
			return err
		}
		s.clearSessionCookie(w, r)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// profileOut is the JSON shape of GET/PATCH /api/v1/me.
type profileOut struct {
	ID            string            `json:"id"`
	Email         string            `json:"email"`
	EmailVerified bool              `json:"email_verified"`
	PendingEmail  string            `json:"pending_email,omitempty"`
	Role          string            `json:"role,omitempty"`
	Fields        map[string]string `json:"fields"`
	SelfEditable  []string          `json:"self_editable"`
	CreatedAt     time.Time         `json:"created_at"`
}

func profileJSON(p identity.Profile) profileOut {
	out := profileOut{
		ID: p.Account.SubjectID, Email: p.Email, EmailVerified: p.Account.EmailVerified,
		PendingEmail: p.PendingEmail, Role: p.Account.Role, Fields: p.Fields, SelfEditable: []string{},
		CreatedAt: p.Account.CreatedAt,
	}
	if out.Fields == nil {
		out.Fields = map[string]string{}
	}
	for _, f := range p.Order {
		if p.Editable[f] {
			out.SelfEditable = append(out.SelfEditable, f)
		}
	}
	return out
}

func (s *server) handleMe() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		prof, err := s.d.Identity.Profile(r.Context(), a.P)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, profileJSON(prof))
	}
}

// handleUpdateMe applies a JSON merge patch of profile fields. Fields the
// policy lets the member edit change at once; an email change waits for
// the new address to be verified. current_password re-authenticates when
// the session is outside its privileged window.
func (s *server) handleUpdateMe() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var body map[string]json.RawMessage
		if err := decode(r, &body); err != nil {
			return err
		}
		var password string
		if raw, ok := body["current_password"]; ok {
			if err := json.Unmarshal(raw, &password); err != nil {
				return badRequest("current_password", "current_password must be a string", err)
			}
		}
		changes, err := s.stringFields(body, "current_password")
		if err != nil {
			return err
		}
		if len(changes) == 0 {
			return badRequest("", "name at least one field to change", nil)
		}
		prof, err := s.d.Identity.UpdateProfile(r.Context(), a.P, changes, password)
		if err != nil {
			return renameField(err, map[string]string{"password": "current_password"})
		}
		return s.encode(w, http.StatusOK, profileJSON(prof))
	}
}

type passwordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (s *server) handleChangePassword() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		var in passwordChange
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := s.d.Identity.ChangePassword(r.Context(), a.P, in.CurrentPassword, in.NewPassword); err != nil {
			return renameField(err, map[string]string{"password": "current_password"})
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

type sessionJSON struct {
	ID              string    `json:"id"`
	CreatedAt       time.Time `json:"created_at"`
	LastSeenAt      time.Time `json:"last_seen_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	UserAgentFamily string    `json:"user_agent_family"`
	Network         string    `json:"network"`
	Current         bool      `json:"current"`
}

func sessionsJSON(list []identity.Session, currentID string) []sessionJSON {
	out := make([]sessionJSON, 0, len(list))
	for _, ss := range list {
		out = append(out, sessionJSON{
			ID: ss.ID, CreatedAt: ss.CreatedAt, LastSeenAt: ss.LastSeenAt, ExpiresAt: ss.ExpiresAt,
			UserAgentFamily: ss.UserAgentFamily, Network: ss.Network, Current: ss.Current || ss.ID == currentID,
		})
	}
	return out
}

func (s *server) handleSessions() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		list, err := s.d.Identity.SessionsOf(r.Context(), a.P)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]any{"sessions": sessionsJSON(list, a.P.Session.ID)})
	}
}

func (s *server) handleRevokeSession() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		id := r.PathValue("id")
		if err := s.d.Identity.RevokeSession(r.Context(), a.P.Account.SubjectID, id); err != nil {
			return err
		}
		if id == a.P.Session.ID {
			s.clearSessionCookie(w, r)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *server) handleRevokeOthers() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) error {
		n, err := s.d.Identity.RevokeOtherSessions(r.Context(), a.P)
		if err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]int{"revoked": n})
	}
}

type emailRequest struct {
	Email string `json:"email"`
}

type tokenRequest struct {
	Token string `json:"token"`
}

type resetConfirm struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

func (s *server) handleSendVerification() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in emailRequest
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := s.d.Identity.ResendVerification(r.Context(), in.Email, meta(r)); err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, accepted(msgResend))
	}
}

func (s *server) handleConfirmVerification() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in tokenRequest
		if err := decode(r, &in); err != nil {
			return err
		}
		if in.Token == "" {
			return fault.FieldError("token", "token is required")
		}
		if err := s.d.Identity.VerifyEmail(r.Context(), in.Token); err != nil {
			return err
		}
		return s.encode(w, http.StatusOK, map[string]string{"status": "verified"})
	}
}

func (s *server) handleRequestReset() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in emailRequest
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := s.d.Identity.RequestPasswordReset(r.Context(), in.Email, meta(r)); err != nil {
			return err
		}
		return s.encode(w, http.StatusAccepted, accepted(msgReset))
	}
}

func (s *server) handleConfirmReset() handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in resetConfirm
		if err := decode(r, &in); err != nil {
			return err
		}
		if in.Token == "" {
			return fault.FieldError("token", "token is required")
		}
		if err := s.d.Identity.ResetPassword(r.Context(), in.Token, in.Password, meta(r)); err != nil {
			return err
		}
		// Every session ended with the reset, this browser's too.
		if _, err := r.Cookie(SessionCookie); err == nil {
			s.clearSessionCookie(w, r)
		}
		return s.encode(w, http.StatusOK, map[string]string{"status": "password_reset"})
	}
}
