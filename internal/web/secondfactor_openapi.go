package web

// secondFactorOps documents the second-factor routes in /openapi.json.
func secondFactorOps() map[string]apiOp {
	return map[string]apiOp{
		"POST /api/v1/sessions/current/second-factor": {tag: "sessions", summary: "Give the session's second factor (an authenticator code or a recovery code)",
			auth: true, request: "CodeRequest", status: 204, problems: []int{400, 401, 413, 415, 422, 429},
			desc: "A session of an account with a second factor reaches nothing else until it is given (403 second_factor_required). " +
				"A code is accepted once; wrong codes are throttled per account like passwords."},
		"GET /api/v1/me/second-factors": {tag: "me", summary: "The account's second factors, and whether its role requires one", auth: true,
			status: 200, response: "FactorList"},
		"POST /api/v1/me/second-factors/totp": {tag: "me", summary: "Start adding an authenticator app (TOTP, RFC 6238)", auth: true,
			request: "PasswordRequest", status: 201, response: "TOTPEnrolment", problems: []int{400, 403, 413, 415, 422, 429},
			desc: "Returns the key and its otpauth URL once; it becomes a factor when confirmed with a code. A session that has not " +
				"given the account's existing factor cannot add one, nor one whose password was not given in the last 10 minutes (send it in the body: 403 reauthentication_required otherwise). Staff whose role reaches personal data must add one before anything else."},
		"POST /api/v1/me/second-factors/totp/{id}/confirm": {tag: "me", summary: "Confirm an authenticator app with a code; returns recovery codes the first time",
			auth: true, request: "CodeRequest", status: 200, response: "RecoveryCodes", problems: []int{400, 401, 403, 404, 413, 415, 422, 429}},
		"DELETE /api/v1/me/second-factors/{id}": {tag: "me", summary: "Remove a second factor (needs the password)", auth: true,
			request: "PasswordRequest", status: 204, problems: []int{400, 403, 404, 409, 413, 415, 422, 429},
			desc: "Staff whose role requires a second factor cannot remove their last one (409)."},
	}
}

func secondFactorSchemas() map[string]any {
	str := map[string]any{"type": "string"}
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	return map[string]any{
		"CodeRequest": object(map[string]any{"code": map[string]any{"type": "string", "maxLength": 64,
			"description": "Six digits from the authenticator app, or a recovery code."}}, "code"),
		"PasswordRequest": object(map[string]any{"password": map[string]any{"type": "string", "maxLength": 256}}, "password"),
		"TOTPEnrolment":   object(map[string]any{"id": str, "secret": str, "otpauth_url": str}, "id", "secret", "otpauth_url"),
		"RecoveryCodes": object(map[string]any{"recovery_codes": map[string]any{"type": "array", "items": str,
			"description": "Shown once; empty when the account already has recovery codes."}}, "recovery_codes"),
		"FactorList": object(map[string]any{
			"required": map[string]any{"type": "boolean"},
			"factors": map[string]any{"type": "array", "items": object(map[string]any{"id": str, "kind": map[string]any{"type": "string", "enum": []string{"totp", "passkey"}},
				"name": str, "created_at": dateTime, "last_used_at": dateTime}, "id", "kind", "created_at")},
		}, "factors", "required"),
	}
}
