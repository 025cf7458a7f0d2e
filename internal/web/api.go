package web

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"steward/internal/fault"
	"steward/internal/identity"
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

func (s *server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.encode(w, r, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz answers 200 only while the database answers.
func (s *server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.d.DB.PingContext(ctx); err != nil {
			s.log.Warn("web: readiness check failed", "request_id", infoOf(r).id, "error", err.Error())
			writeJSON(w, "application/problem+json", http.StatusServiceUnavailable, problem{
				Type: problemTypeBase + "unavailable", Title: "Not ready", Status: http.StatusServiceUnavailable,
				Detail: "the database does not answer", Instance: infoOf(r).id,
			})
			return
		}
		s.encode(w, r, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// stringFields decodes the values of a flat JSON object of strings,
// naming the first field whose value is not a string.
func stringFields(body map[string]json.RawMessage, skip ...string) (map[string]string, error) {
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
			return nil, badRequest(k, k+" must be a string", err)
		}
		out[k] = v
	}
	return out, nil
}

func (s *server) handleSignUp() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]json.RawMessage
		if err := decode(r, &body); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		in := identity.SignUpInput{}
		if raw, ok := body["password"]; ok {
			if err := json.Unmarshal(raw, &in.Password); err != nil {
				s.problemJSON(w, r, badRequest("password", "password must be a string", err))
				return
			}
		}
		if raw, ok := body["age_confirmed"]; ok {
			if err := json.Unmarshal(raw, &in.AgeConfirmed); err != nil {
				s.problemJSON(w, r, badRequest("age_confirmed", "age_confirmed must be true or false", err))
				return
			}
		}
		fields, err := stringFields(body, "password", "age_confirmed")
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		in.Fields = fields
		if err := s.d.Identity.SignUp(r.Context(), in, meta(r)); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusAccepted, accepted(msgSignUp))
	})
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

func (s *server) handleLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in loginRequest
		if err := decode(r, &in); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		sess, tok, err := s.d.Identity.Login(r.Context(), in.Email, in.Password, meta(r))
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.setSessionCookie(w, r, tok, sess.ExpiresAt)
		s.encode(w, r, http.StatusCreated, sessionCreated{Token: tok, ExpiresAt: sess.ExpiresAt, SessionID: sess.ID})
	})
}

func (s *server) handleLogout() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		if err := s.d.Identity.Logout(r.Context(), a.Token); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.clearSessionCookie(w, r)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *server) handleMe() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		prof, err := s.d.Identity.Profile(r.Context(), a.P)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusOK, profileJSON(prof))
	}
}

// handleUpdateMe applies a JSON merge patch of profile fields. Fields the
// policy lets the member edit change at once; an email change waits for
// the new address to be verified. current_password re-authenticates when
// the session is outside its privileged window.
func (s *server) handleUpdateMe() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		var body map[string]json.RawMessage
		if err := decode(r, &body); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		var password string
		if raw, ok := body["current_password"]; ok {
			if err := json.Unmarshal(raw, &password); err != nil {
				s.problemJSON(w, r, badRequest("current_password", "current_password must be a string", err))
				return
			}
		}
		changes, err := stringFields(body, "current_password")
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		if len(changes) == 0 {
			s.problemJSON(w, r, badRequest("", "name at least one field to change", nil))
			return
		}
		prof, err := s.d.Identity.UpdateProfile(r.Context(), a.P, changes, password)
		if err != nil {
			s.problemJSON(w, r, renameField(err, map[string]string{"password": "current_password"}))
			return
		}
		s.encode(w, r, http.StatusOK, profileJSON(prof))
	}
}

type passwordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (s *server) handleChangePassword() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		var in passwordChange
		if err := decode(r, &in); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		if err := s.d.Identity.ChangePassword(r.Context(), a.P, in.CurrentPassword, in.NewPassword); err != nil {
			s.problemJSON(w, r, renameField(err, map[string]string{"password": "current_password"}))
			return
		}
		w.WriteHeader(http.StatusNoContent)
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
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		list, err := s.d.Identity.SessionsOf(r.Context(), a.P)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusOK, map[string]any{"sessions": sessionsJSON(list, a.P.Session.ID)})
	}
}

func (s *server) handleRevokeSession() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		id := r.PathValue("id")
		if err := s.d.Identity.RevokeSession(r.Context(), a.P.Account.SubjectID, id); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		if id == a.P.Session.ID {
			s.clearSessionCookie(w, r)
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *server) handleRevokeOthers() authed {
	return func(w http.ResponseWriter, r *http.Request, a auth) {
		n, err := s.d.Identity.RevokeOtherSessions(r.Context(), a.P)
		if err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusOK, map[string]int{"revoked": n})
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

func (s *server) handleSendVerification() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in emailRequest
		if err := decode(r, &in); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		if err := s.d.Identity.ResendVerification(r.Context(), in.Email, meta(r)); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusAccepted, accepted(msgResend))
	})
}

func (s *server) handleConfirmVerification() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in tokenRequest
		if err := decode(r, &in); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		if in.Token == "" {
			s.problemJSON(w, r, fault.FieldError("token", "token is required"))
			return
		}
		if err := s.d.Identity.VerifyEmail(r.Context(), in.Token); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusOK, map[string]string{"status": "verified"})
	})
}

func (s *server) handleRequestReset() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in emailRequest
		if err := decode(r, &in); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		if err := s.d.Identity.RequestPasswordReset(r.Context(), in.Email, meta(r)); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		s.encode(w, r, http.StatusAccepted, accepted(msgReset))
	})
}

func (s *server) handleConfirmReset() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in resetConfirm
		if err := decode(r, &in); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		if in.Token == "" {
			s.problemJSON(w, r, fault.FieldError("token", "token is required"))
			return
		}
		if err := s.d.Identity.ResetPassword(r.Context(), in.Token, in.Password, meta(r)); err != nil {
			s.problemJSON(w, r, err)
			return
		}
		// Every session ended with the reset, this browser's too.
		if _, err := r.Cookie(SessionCookie); err == nil {
			s.clearSessionCookie(w, r)
		}
		s.encode(w, r, http.StatusOK, map[string]string{"status": "password_reset"})
	})
}
