package web

// rightsOps documents the rights-request routes in /openapi.json.
func rightsOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /api/v1/me/data": {tag: "rights", summary: "The access report: the Art. 15 cover sheet and every datum, with source and policy version",
			auth: true, status: 200, response: "AccessReport", problems: []int{403},
			desc: "Hands over everything, so it needs a privileged session (a login within the last 10 minutes); otherwise 403 " +
				"reauthentication_required — log in again, or ask for a copy with POST /api/v1/me/requests {type: access, password}."},
		"POST /api/v1/me/requests": {tag: "rights", summary: "File a rights request (access, portability, rectification, restriction, objection, erasure)",
			auth: true, request: "RightsRequestInput", status: 202, response: "RightsRequest", problems: []int{403, 404, 413, 422, 429},
			desc: "Access, portability and erasure need the password (or a login within the last 10 minutes): 403 reauthentication_required " +
				"otherwise. An account whose address was never confirmed files nothing (403 email_unverified): the answer goes to that address. " +
				"A restriction, and an objection to direct marketing, take effect at once. The due date is one month from receipt."},
		"GET /api/v1/me/requests": {tag: "rights", summary: "The member's requests with status, due date and result",
			auth: true, status: 200, response: "RightsRequestList"},
		"GET /api/v1/me/requests/{id}": {tag: "rights", summary: "One of the member's requests", auth: true, status: 200,
			response: "RightsRequest", problems: []int{404},
			desc: "Another member's request answers 404, like one that does not exist."},
		"GET /api/v1/me/requests/{id}/download": {tag: "rights", summary: "The ZIP of a finished access or portability request",
			auth: true, status: 200, problems: []int{403, 404, 409},
			desc: "Bound to the session that asked; another session must have logged in within the last 10 minutes (403 otherwise). " +
				"Expires after 7 days (404). The body is application/zip."},
		"POST /api/v1/requests": {tag: "rights", summary: "File a request without an account: a single-use code is mailed to the address",
			request: "EmailRightsRequestInput", status: 202, response: "FiledRequest", problems: []int{413, 422, 429},
			desc: "The answer is the same whether or not the address is known."},
		"POST /api/v1/requests/{id}/verify": {tag: "rights", summary: "Prove the address with the mailed code",
			request: "CodeInput", status: 200, response: "RightsRequest", problems: []int{403, 404, 409, 413, 422, 429},
			desc: "A wrong or expired code is 403, a code used twice 409, too many wrong codes 429 (the request closes). For access and " +
				"portability the answer carries a token, shown once, for the two routes below (Authorization: Bearer <token>)."},
		"GET /api/v1/requests/{id}": {tag: "rights", summary: "The status of an emailed request, for the bearer of its token",
			status: 200, response: "RightsRequest", problems: []int{404}},
		"GET /api/v1/requests/{id}/download": {tag: "rights", summary: "The ZIP of an emailed access or portability request, for the bearer of its token",
			status: 200, problems: []int{404, 409}},
		"GET /api/v1/admin/requests": {tag: "staff", summary: "The rights-request queue, by due date, overdue flagged (?all=1 for finished ones too)",
			auth: true, status: 200, response: "RightsQueue", problems: []int{403}},
		"GET /api/v1/admin/requests/{id}": {tag: "staff", summary: "One request with what the person wrote (audited)",
			auth: true, status: 200, response: "StaffRightsRequest", problems: []int{403, 404}},
		"POST /api/v1/admin/requests/{id}/approve": {tag: "staff", summary: "Approve a request waiting for review",
			auth: true, request: "Decision", status: 200, response: "StaffRightsRequest", problems: []int{403, 404, 409, 422}},
		"POST /api/v1/admin/requests/{id}/refuse": {tag: "staff", summary: "Refuse a request with the reason the person is told",
			auth: true, request: "Decision", status: 200, response: "StaffRightsRequest", problems: []int{403, 404, 409, 422},
			desc: "An objection to direct marketing cannot be refused (409)."},
		"POST /api/v1/admin/requests/{id}/extend": {tag: "staff", summary: "Extend the deadline by 1 or 2 months, within the first month, with a reason",
			auth: true, request: "Decision", status: 200, response: "StaffRightsRequest", problems: []int{403, 404, 409, 422}},
		"POST /api/v1/admin/subjects/{id}/under-age": {tag: "staff", summary: "Record that a member is under the minimum age: their account is erased",
			auth: true, request: "Decision", status: 202, response: "StaffRightsRequest", problems: []int{403, 404, 409, 422}},
	}
}

// rightsSchemas are the component schemas rightsOps name.
func rightsSchemas() map[string]any {
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	strs := map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
	types := map[string]any{"type": "string", "enum": []string{"access", "portability", "rectification", "restriction", "objection", "erasure"}}
	input := map[string]any{
		"type":        types,
		"scope":       map[string]any{"type": "string", "enum": []string{"account", "category", "item", "content"}, "description": "Erasure only; default account."},
		"purposes":    map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "Objection: the purposes (or direct-marketing)."},
		"fields":      map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "Rectification: the wrong fields; erasure of scope category: the fields to erase."},
		"categories":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "Restriction: the categories (none: all); erasure of scope category: whole categories."},
		"items":       map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "Erasure of scope item: records as the access report names them (dataset/key)."},
		"corrections": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}, "description": "Rectification: field → corrected value."},
		"reason":      str("Rectification: why the data is wrong (required); objection: the grounds (required but for direct marketing)."),
		"restrict":    map[string]any{"type": "boolean", "description": "Rectification: restrict processing while it is assessed."},
		"lift":        map[string]any{"type": "boolean", "description": "Restriction: lift your own restriction."},
	}
	member := map[string]any{"password": str("Needed for access, portability and erasure unless the session logged in within 10 minutes.")}
	email := map[string]any{"email": map[string]any{"type": "string", "format": "email"}}
	for k, v := range input {
		member[k] = v
		email[k] = v
	}
	request := object(map[string]any{
		"id": str(""), "type": types, "scope": str(""),
		"status":      map[string]any{"type": "string", "enum": []string{"received", "verified", "in_progress", "completed", "refused", "expired"}},
		"channel":     map[string]any{"type": "string", "enum": []string{"account", "email", "staff"}},
		"received_at": dateTime, "due_at": dateTime, "overdue": map[string]any{"type": "boolean"},
		"verify_by": dateTime, "verified_at": dateTime, "completed_at": dateTime,
		"extended": map[string]any{"type": "boolean"}, "extension_reason": str(""),
		"needs_review": map[string]any{"type": "boolean"}, "refusal_reason": str("Told to the person."),
		"progress": map[string]any{"type": "integer", "minimum": 0, "maximum": 100},
		"params":   map[string]any{"type": "object"},
		"result":   map[string]any{"type": "object", "description": "What was done: for an erasure, what was erased, what was kept and why, and the verification."},
		"download": str("Where the ZIP of a finished access or portability request is."),
		"token":    str("Emailed requests: shown once on verification."),
	}, "id", "type", "status", "received_at", "due_at")
	staff := map[string]any{"allOf": []any{ref("RightsRequest"), map[string]any{"type": "object", "properties": map[string]any{
		"subject_id": str(""), "reason": str(""), "corrections": map[string]any{"type": "object"}, "filed_by": str(""), "handled_by": str(""),
	}}}}
	// RightsRequest is open to the staff fields through allOf.
	request["additionalProperties"] = true
	return map[string]any{
		"RightsRequestInput":      object(member, "type"),
		"EmailRightsRequestInput": object(email, "email", "type"),
		"RightsRequest":           request,
		"RightsRequestList":       object(map[string]any{"requests": map[string]any{"type": "array", "items": ref("RightsRequest")}}, "requests"),
		"StaffRightsRequest":      staff,
		"RightsQueue": object(map[string]any{"requests": map[string]any{"type": "array", "items": ref("StaffRightsRequest")},
			"overdue": map[string]any{"type": "integer"}}, "requests", "overdue"),
		"FiledRequest": object(map[string]any{"id": str(""), "status": map[string]any{"const": "received"}, "due_at": dateTime,
			"verify_by": map[string]any{"type": "string", "format": "date-time", "description": "The request expires if not verified by then."},
			"message":   str("")}, "id", "status", "due_at", "verify_by", "message"),
		"CodeInput": object(map[string]any{"code": str("The 8-digit code from the mail.")}, "code"),
		"Decision": object(map[string]any{"note": str("Approve, under-age: a note."), "reason": str("Refuse, extend: told to the person."),
			"months": map[string]any{"type": "integer", "enum": []int{1, 2}}}),
		"AccessReport": map[string]any{"type": "object", "required": []string{"format", "generated_at", "subject_id", "cover_sheet", "datasets"},
			"properties": map[string]any{
				"format": map[string]any{"const": "steward-access-report/1"}, "generated_at": dateTime, "subject_id": str(""),
				"cover_sheet": map[string]any{"type": "object", "description": "Purposes, categories, recipients (declared), transfers, retention, sources, rights, complaint, automated decisions."},
				"datasets": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
					"name": str("A stable dataset name."), "description": str(""), "origin": str(""), "categories": strs,
					"count": map[string]any{"type": "integer"}, "columns": map[string]any{"type": "array"},
					"rows": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
						"item": str("dataset/key, for an erasure of scope item."), "source": str(""), "source_label": str(""),
						"policy_version": map[string]any{"type": []string{"integer", "null"}}, "policy_version_basis": str(""),
						"fields": map[string]any{"type": "object"}}}},
				}}},
			}},
	}
}
