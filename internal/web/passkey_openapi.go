package web

// passkeyOps documents the passkey routes in /openapi.json.
func passkeyOps() map[string]apiOp {
	return map[string]apiOp{
		"POST /api/v1/me/second-factors/passkey/options": {tag: "me", summary: "Start adding a passkey (WebAuthn): the options for navigator.credentials.create",
			auth: true, request: "PasswordRequest", status: 200, response: "PasskeyOptions", problems: []int{400, 403, 409, 413, 415, 422, 429},
			desc: "Binary members are base64url. The challenge is kept for this session, for five minutes, and spent by the first answer. " +
				"The same rules as for an authenticator app: not while the session owes the account's existing factor, and only within 10 minutes of the password (send it in the body: 403 reauthentication_required otherwise). " +
				"409 when the site is not served over https."},
		"POST /api/v1/me/second-factors/passkey": {tag: "me", summary: "Add the passkey: the browser's answer to the creation options; returns recovery codes the first time",
			auth: true, request: "PasskeyCredential", status: 200, response: "RecoveryCodes", problems: []int{400, 401, 403, 409, 413, 415, 422, 429},
			desc: "A wrong or replayed answer, or one made for another origin, is a failed second-factor attempt (401), throttled and audited. The session counts as having given its second factor."},
		"POST /api/v1/sessions/current/second-factor/passkey/options": {tag: "sessions", summary: "Start giving the session's second factor with a passkey: the options for navigator.credentials.get",
			auth: true, status: 200, response: "PasskeyOptions", problems: []int{404, 409, 429},
			desc: "404 when the account has no passkey. The challenge is kept for this session, for five minutes, and spent by the first answer."},
		"POST /api/v1/sessions/current/second-factor/passkey": {tag: "sessions", summary: "Give the session's second factor with a passkey: the browser's answer to the options",
			auth: true, request: "PasskeyCredential", status: 204, problems: []int{400, 401, 409, 413, 415, 422, 429},
			desc: "Refused (401, audited, throttled per account like passwords) when the answer is for another origin or another challenge, was used already, or its signature counter did not move forward (a cloned authenticator)."},
	}
}

func passkeySchemas() map[string]any {
	return map[string]any{
		"PasskeyOptions": map[string]any{"type": "object", "required": []string{"publicKey"},
			"properties":  map[string]any{"publicKey": map[string]any{"type": "object"}},
			"description": "PublicKeyCredentialCreationOptions or PublicKeyCredentialRequestOptions (WebAuthn Level 3) in their JSON form, under publicKey."},
		"PasskeyCredential": map[string]any{"type": "object", "required": []string{"id", "rawId", "type", "response"},
			"properties": map[string]any{"id": map[string]any{"type": "string"}, "rawId": map[string]any{"type": "string"},
				"type": map[string]any{"type": "string", "enum": []string{"public-key"}}, "response": map[string]any{"type": "object"}},
			"description": "The PublicKeyCredential the browser returned, in its JSON form (PublicKeyCredential.toJSON())."},
	}
}
