package web

// supportOps documents the support desk's routes in /openapi.json.
func supportOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /api/v1/me/support": {tag: "support", summary: "The member's support requests, the most recent first",
			auth: true, status: 200, response: "SupportList"},
		"POST /api/v1/me/support": {tag: "support", summary: "Open a support request, with files when sent as multipart/form-data",
			auth: true, request: "SupportOpen", form: "SupportOpenForm", status: 201, response: "SupportThread", problems: []int{422},
			desc: "A file's type is found from its bytes; files are stored sealed under the request's own key. A file over the " +
				"site's limit: 413."},
		"GET /api/v1/me/support/{id}": {tag: "support", summary: "One of the member's requests with its exchanges and their files",
			auth: true, status: 200, response: "SupportThread", problems: []int{404},
			desc: "Another member's request is not found (404): whether it exists is not theirs to know."},
		"POST /api/v1/me/support/{id}/messages": {tag: "support", summary: "Add to one of the member's requests (a closed one opens again)",
			auth: true, request: "SupportMessage", form: "SupportMessageForm", status: 201, response: "SupportThread", problems: []int{404, 422}},
		"GET /api/v1/me/support-files/{id}": {tag: "support", summary: "Download a file of one of the member's requests",
			auth: true, status: 200, mediaType: "application/octet-stream", problems: []int{404},
			desc: "Sent as an attachment of the type found from its bytes when it was stored, never to be shown inline."},
		"POST /api/v1/support": {tag: "support", summary: "Ask support with an email address alone (no account)",
			request: "SupportPublic", status: 202, response: "Accepted", problems: []int{422},
			desc: "The request is held, sealed, until the link mailed to the address is followed (the page /support/confirm); the " +
				"answer is the same whether or not the address is known. What nobody confirms is deleted unread."},
		"GET /api/v1/admin/support": {tag: "staff", summary: "The support queue, the longest waiting first, a page at a time (support, quality)",
			auth: true, status: 200, response: "SupportQueue", problems: []int{400, 403, 422},
			desc: "?status=open|answered|closed (default open and answered), ?assignee=a staff id or none, ?limit=1..200, " +
				"?after=the next cursor of the previous page. Titles are read for the purpose the staff member's role holds."},
		"GET /api/v1/admin/support/{id}": {tag: "staff", summary: "A request with its exchanges and files, read for the role's purpose (audited)",
			auth: true, status: 200, response: "SupportThread", problems: []int{403, 404},
			desc: "Recordings of calls are listed only for a role whose purpose uses them."},
		"GET /api/v1/admin/support/{id}/requester": {tag: "staff", summary: "Who opened a request: name and address (support staff; audited)",
			auth: true, status: 200, response: "SupportPerson", problems: []int{403, 404},
			desc: "A role whose purposes do not reach the requester's identity — a quality reviewer's — is refused with " +
				"purpose_denied, and the refusal is recorded in the audit log."},
		"POST /api/v1/admin/support/{id}/answers": {tag: "staff", summary: "Answer a request; the answer is mailed from the request's reply address",
			auth: true, request: "SupportMessage", form: "SupportMessageForm", status: 201, response: "SupportThread",
			problems: []int{403, 404, 422}},
		"POST /api/v1/admin/support/{id}/recordings": {tag: "staff", summary: "Attach a recorded call, with when the caller was told it is recorded",
			auth: true, form: "SupportRecordingForm", status: 201, response: "SupportThread", problems: []int{403, 404, 422},
			desc: "notice_given_at is required (400 without it). The file must be audio (MP3, WAV, Ogg, FLAC, M4A or WebM), " +
				"else 415."},
		"POST /api/v1/admin/support/{id}/status": {tag: "staff", summary: "Open, mark answered or close a request (audited)",
			auth: true, request: "SupportStatus", status: 204, problems: []int{403, 404, 422}},
		"POST /api/v1/admin/support/{id}/assign": {tag: "staff", summary: "Give a request to a staff member, or to nobody (audited)",
			auth: true, request: "SupportAssign", status: 204, problems: []int{403, 404, 422}},
		"POST /api/v1/admin/support/phone": {tag: "staff", summary: "Open a request for a caller, found or recorded by their address",
			auth: true, request: "SupportPhone", status: 201, response: "SupportOpened", problems: []int{403, 409, 422}},
		"GET /api/v1/admin/support-files/{id}": {tag: "staff", summary: "Download an attachment or a recording, for the role's purpose (audited)",
			auth: true, status: 200, mediaType: "application/octet-stream", problems: []int{403, 404}},
	}
}

// supportSchemas are the component schemas supportOps name.
func supportSchemas() map[string]any {
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	integer := map[string]any{"type": "integer"}
	enum := func(vs ...string) map[string]any { return map[string]any{"type": "string", "enum": vs} }
	arrayOf := func(schema string) map[string]any { return map[string]any{"type": "array", "items": ref(schema)} }
	email := map[string]any{"type": "string", "format": "email"}
	binary := map[string]any{"type": "string", "contentMediaType": "application/octet-stream"}
	files := map[string]any{"type": "array", "items": binary}
	request := map[string]any{"id": str(""), "title": str(""), "channel": enum("web", "mail", "phone"),
		"status": enum("open", "answered", "closed"), "assignee": str("The staff member's id, when assigned."),
		"created_at": dateTime, "updated_at": dateTime, "closed_at": dateTime}
	thread := map[string]any{"messages": arrayOf("SupportExchange")}
	for k, v := range request {
		thread[k] = v
	}
	requestRequired := []string{"id", "title", "channel", "status", "created_at", "updated_at"}
	return map[string]any{
		"SupportRequest": object(request, requestRequired...),
		"SupportThread":  object(thread, append(requestRequired, "messages")...),
		"SupportExchange": object(map[string]any{"id": str(""), "direction": enum("in", "out"), "channel": enum("web", "mail", "phone"),
			"text": str(""), "spf": str("What a mail relay in front reported."), "dkim": str(""), "dmarc": str(""),
			"files": arrayOf("SupportFile"), "created_at": dateTime}, "id", "direction", "channel", "text", "created_at"),
		"SupportFile": object(map[string]any{"id": str(""), "kind": enum("attachment", "recording"), "name": str(""), "mime": str(""),
			"size": integer, "notice_given_at": dateTime, "created_at": dateTime}, "id", "kind", "name", "mime", "size", "created_at"),
		"SupportList":        object(map[string]any{"items": arrayOf("SupportRequest")}, "items"),
		"SupportQueue":       object(map[string]any{"items": arrayOf("SupportRequest"), "next": str("The after cursor of the next page; absent on the last.")}, "items"),
		"SupportOpen":        object(map[string]any{"title": str(""), "text": str("")}, "title", "text"),
		"SupportOpenForm":    object(map[string]any{"title": str(""), "text": str(""), "files": files}, "title", "text"),
		"SupportMessage":     object(map[string]any{"text": str("")}, "text"),
		"SupportMessageForm": object(map[string]any{"text": str("May be empty when files come with it."), "files": files}),
		"SupportRecordingForm": object(map[string]any{"notes": str(""),
			"notice_given_at": str("When the caller was told the call is recorded: RFC 3339, or YYYY-MM-DDTHH:MM in UTC."),
			"recording":       binary}, "notice_given_at", "recording"),
		"SupportPublic": object(map[string]any{"email": email, "title": str(""), "text": str("")}, "email", "title", "text"),
		"SupportStatus": object(map[string]any{"status": enum("open", "answered", "closed")}, "status"),
		"SupportAssign": object(map[string]any{"assignee": str("A staff member's id; empty for nobody.")}, "assignee"),
		"SupportPhone":  object(map[string]any{"email": email, "title": str(""), "notes": str("")}, "email", "title", "notes"),
		"SupportOpened": object(map[string]any{"id": str("")}, "id"),
		"SupportPerson": object(map[string]any{"name": str(""), "email": email}),
	}
}
