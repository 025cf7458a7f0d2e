package web

// sharingOps documents the shared-account routes in /openapi.json.
func sharingOps() map[string]apiOp {
	return map[string]apiOp{
		"POST /api/v1/me/shared-accounts": {tag: "me", summary: "Invite a sub-account or an authorised user to share data with this account",
			auth: true, request: "Invitation", status: 202, response: "Delegation", problems: []int{400, 403, 413, 415, 422},
			desc: "A link is mailed to the address; nothing is shared until its holder accepts, signed in to the account of that address. " +
				"A sub-account's holder lets this account read the granted categories of theirs; an authorised user may read this account's."},
		"GET /api/v1/me/shared-accounts": {tag: "me", summary: "The shares this account takes part in", auth: true, status: 200, response: "DelegationList"},
		"POST /api/v1/me/invitations/accept": {tag: "me", summary: "Accept a mailed invitation", auth: true, request: "TokenRequest",
			status: 200, response: "Delegation", problems: []int{400, 403, 404, 409, 413, 415, 422}},
		"DELETE /api/v1/me/shared-accounts/{id}": {tag: "me", summary: "Stop a share (either side); it takes effect at the next read",
			auth: true, status: 204, problems: []int{404}},
		"GET /api/v1/shared-accounts/{id}": {tag: "me", summary: "Read what another account shares with this one (categories=a,b narrows it)",
			auth: true, status: 200, response: "SharedFields", problems: []int{403, 404},
			desc: "Read through the door for running the account, within the grant only; every read and refusal is audited with both accounts."},
		"POST /api/v1/shared-accounts/{id}/requests": {tag: "me", summary: "File a rights request for a sub-account whose holder allowed it (may_request)",
			auth: true, request: "RightsRequestInput", status: 202, response: "RightsRequest", problems: []int{400, 403, 404, 413, 415, 422},
			desc: "The request is the sub-account's own: it appears among theirs and its answer and any download go to them. " +
				"Access, portability and erasure need the primary's password or a recent login, as for their own."},
	}
}

func sharingSchemas() map[string]any {
	str := map[string]any{"type": "string"}
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	cats := map[string]any{"type": "array", "items": str}
	delegation := object(map[string]any{"id": str, "kind": map[string]any{"type": "string", "enum": []string{"sub-account", "authorised-user"}},
		"status": map[string]any{"type": "string", "enum": []string{"invited", "active", "revoked"}}, "subject": str, "reader": str, "primary": str,
		"grant":      object(map[string]any{"categories": cats, "may_request": map[string]any{"type": "boolean"}}, "categories"),
		"created_at": dateTime, "accepted_at": dateTime, "revoked_at": dateTime}, "id", "kind", "status", "primary", "grant", "created_at")
	return map[string]any{
		"Invitation": object(map[string]any{"kind": map[string]any{"type": "string", "enum": []string{"sub-account", "authorised-user"}},
			"email": map[string]any{"type": "string", "format": "email"}, "categories": cats, "may_request": map[string]any{"type": "boolean"}},
			"kind", "email", "categories"),
		"Delegation":     delegation,
		"DelegationList": object(map[string]any{"delegations": map[string]any{"type": "array", "items": delegation}}, "delegations"),
		"SharedFields":   object(map[string]any{"fields": map[string]any{"type": "object", "additionalProperties": str}}, "fields"),
	}
}
