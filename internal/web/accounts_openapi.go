package web

import (
	"slices"
	"strconv"
)

// accountsOps documents the accounts, sessions and profile routes in
// /openapi.json.
func accountsOps() map[string]apiOp {
	return map[string]apiOp{
		"POST /api/v1/accounts": {tag: "accounts", summary: "Sign up", request: "SignUpRequest", status: 202, response: "Accepted",
			problems: []int{400, 413, 415, 422, 429},
			desc: "Accepts exactly the registration fields the policy declares. The answer is the same whether or not the " +
				"address is registered; the owner of an existing address is mailed instead, and a new address gets a verification link."},
		"POST /api/v1/sessions": {tag: "sessions", summary: "Log in", request: "LoginRequest", status: 201, response: "SessionCreated",
			problems: []int{400, 401, 413, 415, 422, 429},
			desc:     "Returns a session token for the Authorization: Bearer header and sets the same token as the steward_session cookie."},
		"DELETE /api/v1/sessions/current": {tag: "sessions", summary: "Log out (end the current session)", auth: true, status: 204},
		"GET /api/v1/me":                  {tag: "me", summary: "The signed-in account and its profile", auth: true, status: 200, response: "Profile"},
		"PATCH /api/v1/me": {tag: "me", summary: "Correct self-editable profile fields", auth: true, request: "ProfilePatch", status: 200, response: "Profile",
			problems: []int{400, 403, 409, 413, 415, 422, 429},
			desc: "A JSON merge patch of profile fields. Fields the policy marks self-editable change at once; an email change takes " +
				"effect when the new address is verified. Outside the 10 minutes after a login, an email change needs current_password " +
				"(403 reauthentication_required otherwise). Other fields are refused with 403 forbidden."},
		"POST /api/v1/me/password": {tag: "me", summary: "Change the password", auth: true, request: "PasswordChange", status: 204,
			problems: []int{400, 403, 413, 415, 422, 429}},
		"GET /api/v1/me/sessions": {tag: "sessions", summary: "List the member's sessions", auth: true, status: 200, response: "SessionList"},
		"DELETE /api/v1/me/sessions/{id}": {tag: "sessions", summary: "Revoke one of the member's sessions", auth: true, status: 204,
			problems: []int{404}},
		"POST /api/v1/me/sessions/revoke-others": {tag: "sessions", summary: "Revoke every session but the current one", auth: true,
			status: 200, response: "Revoked"},
		"POST /api/v1/email-verifications": {tag: "accounts", summary: "Send a new verification link", request: "EmailRequest",
			status: 202, response: "Accepted", problems: []int{400, 413, 415, 422, 429},
			desc: "Answers the same whether or not the address belongs to an unverified account."},
		"POST /api/v1/email-verifications/confirm": {tag: "accounts", summary: "Verify an email address with the mailed token",
			request: "TokenRequest", status: 200, response: "Status", problems: []int{400, 404, 409, 413, 415, 422, 429}},
		"POST /api/v1/password-resets": {tag: "accounts", summary: "Mail a password reset link", request: "EmailRequest",
			status: 202, response: "Accepted", problems: []int{400, 413, 415, 422, 429},
			desc: "Answers the same whether or not an account uses the address."},
		"POST /api/v1/password-resets/confirm": {tag: "accounts", summary: "Set a new password with the mailed token; ends every session",
			request: "ResetConfirm", status: 200, response: "Status", problems: []int{400, 404, 409, 413, 415, 422, 429}},
	}
}

// accountsSchemas are the component schemas accountsOps name. Sign-up and
// profile schemas follow the policy in force, so the document names
// exactly the fields this deployment accepts.
func (s *server) accountsSchemas() map[string]any {
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	reg := s.d.Policy.Policy.Registration

	signUp := map[string]any{
		"password": map[string]any{"type": "string", "minLength": 15, "maxLength": 256,
			"description": "At least 15 characters; screened against common and breached passwords."},
	}
	required := []string{"email", "password"}
	for _, f := range reg.Fields {
		if f == "password" {
			continue
		}
		signUp[f] = str(labelOf(f))
		if slices.Contains(reg.Required, f) && !slices.Contains(required, f) {
			required = append(required, f)
		}
	}
	if _, ok := signUp["email"]; !ok {
		signUp["email"] = str("Email address")
	}
	signUp["email"] = map[string]any{"type": "string", "format": "email", "maxLength": 254}
	if reg.AgeCheck == "confirmation" {
		signUp["age_confirmed"] = map[string]any{"type": "boolean",
			"description": "The person confirms they are at least " + strconv.Itoa(s.d.Policy.Policy.MinimumAge) + " years old."}
	}

	patch := map[string]any{"current_password": str("Needed outside the 10 minutes after a login for an email change.")}
	for _, f := range reg.Fields {
		if f != "password" && s.d.Policy.Policy.SelfEditable(f) {
			patch[f] = str(labelOf(f))
		}
	}

	return map[string]any{
		"SignUpRequest": object(signUp, required...),
		"LoginRequest":  object(map[string]any{"email": str(""), "password": str("")}, "email", "password"),
		"SessionCreated": object(map[string]any{
			"token":      str("Send as Authorization: Bearer <token>."),
			"expires_at": dateTime,
			"session_id": str(""),
		}, "token", "expires_at", "session_id"),
		"Profile": object(map[string]any{
			"id":             str("The member's pseudonymous subject id."),
			"email":          map[string]any{"type": "string"},
			"email_verified": map[string]any{"type": "boolean"},
			"pending_email":  str("A new address waiting for verification."),
			"role":           str("Staff role, if any."),
			"fields":         map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
			"self_editable":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			"created_at":     dateTime,
		}, "id", "email", "email_verified", "fields", "self_editable"),
		"ProfilePatch": object(patch),
		"PasswordChange": object(map[string]any{
			"current_password": str(""),
			"new_password":     map[string]any{"type": "string", "minLength": 15, "maxLength": 256},
		}, "current_password", "new_password"),
		"Session": object(map[string]any{
			"id":                str(""),
			"created_at":        dateTime,
			"last_seen_at":      dateTime,
			"expires_at":        dateTime,
			"user_agent_family": str("Browser family only; the full user agent is not kept."),
			"network":           str("The client's network, truncated; the address is not kept."),
			"current":           map[string]any{"type": "boolean"},
		}, "id", "created_at", "expires_at", "current"),
		"SessionList":  object(map[string]any{"sessions": map[string]any{"type": "array", "items": ref("Session")}}, "sessions"),
		"Revoked":      object(map[string]any{"revoked": map[string]any{"type": "integer", "minimum": 0}}, "revoked"),
		"EmailRequest": object(map[string]any{"email": str("")}, "email"),
		"TokenRequest": object(map[string]any{"token": str("The token from the mailed link.")}, "token"),
		"ResetConfirm": object(map[string]any{
			"token":    str("The token from the mailed link."),
			"password": map[string]any{"type": "string", "minLength": 15, "maxLength": 256},
		}, "token", "password"),
	}
}
