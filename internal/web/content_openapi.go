package web

// contentOps documents the routes of what members post in /openapi.json.
func contentOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /api/v1/threads/{site}": {tag: "content", summary: "A public thread (?thread=/page/path): its visible public items",
			status: 200, response: "Thread", problems: []int{422},
			desc: "Each item shows its author's display name and nothing else of the author. Private and hidden items, and the items " +
				"of an author whose processing is restricted, are not shown."},
		"POST /api/v1/threads/{site}/comments": {tag: "content", summary: "Comment with a name and an email address alone (no account)",
			request: "GuestComment", status: 202, response: "GuestAccepted", problems: []int{403, 409, 413, 422},
			desc: "From the site's declared origins (CORS, no credentials) or a client that sends no Origin. Nothing shows until the " +
				"link mailed to the address is followed; the answer is the same whether or not the address is known. The author has " +
				"the rights of anyone without an account: requests by email at /privacy/request."},
		"OPTIONS /api/v1/threads/{site}/comments": {tag: "content", summary: "CORS preflight of the guest comment endpoint", status: 204,
			problems: []int{403}},
		"GET /api/v1/me/content": {tag: "content", summary: "The member's own items, hidden and private ones included, and moderators' decisions on them",
			auth: true, status: 200, response: "MyContent"},
		"POST /api/v1/me/content": {tag: "content", summary: "Post a comment or a post (public unless visibility says private)",
			auth: true, request: "Draft", status: 201, response: "Item", problems: []int{413, 422}},
		"PATCH /api/v1/me/content/{id}": {tag: "content", summary: "Change the text or the visibility of one of the member's items",
			auth: true, request: "ContentEdit", status: 200, response: "Item", problems: []int{404, 409, 413, 422},
			desc: "An item the policy keeps for the archive (a published work) cannot change: 409, and the message says why."},
		"DELETE /api/v1/me/content/{id}": {tag: "content", summary: "Delete one of the member's items with its files; its keys are destroyed",
			auth: true, status: 204, problems: []int{404, 409},
			desc: "An item the policy keeps for the archive is not deleted: 409, and the message says why."},
		"POST /api/v1/me/content/{id}/files": {tag: "content", summary: "Attach a photo or video (?name=): the raw file is the request body",
			auth: true, status: 201, response: "File", problems: []int{404, 409, 413, 415, 422},
			desc: "The type is found from the bytes, never from the name or the header. Location and device metadata are removed " +
				"before the file is stored (images are re-encoded with their orientation applied; MP4 and QuickTime files lose their " +
				"user-data and metadata boxes); a file that cannot be cleaned is refused. Larger than the site's limit: 413."},
		"PUT /api/v1/me/picture": {tag: "content", summary: "Set the member's profile picture: the raw image is the request body",
			auth: true, status: 200, response: "File", problems: []int{413, 415, 422},
			desc: "Cleaned like any photo; its thumbnail shows beside the member's public posts and comments, where the policy allows."},
		"PUT /api/v1/me/content-settings": {tag: "content", summary: "Who sees what the member posts when they do not say (public or private)",
			auth: true, request: "ContentSettings", status: 200, response: "ContentSettings", problems: []int{413, 422}},
		"DELETE /api/v1/me/picture": {tag: "content", summary: "Remove the member's profile picture", auth: true, status: 204},
		"GET /api/v1/files/{id}": {tag: "content", summary: "A file of a visible public item, or one of the member's own",
			status: 200, mediaType: "application/octet-stream", problems: []int{404}},
		"GET /api/v1/files/{id}/thumbnail": {tag: "content", summary: "A photo's thumbnail (JPEG)",
			status: 200, mediaType: "image/jpeg", problems: []int{404}},
		"POST /api/v1/content/{id}/reports": {tag: "content", summary: "Report a public item to the moderators, with a reason",
			request: "ReportInput", status: 202, problems: []int{404, 413, 422},
			desc: "Nothing of the reporter is kept."},
		"GET /api/v1/admin/moderation": {tag: "staff", summary: "Reported items, oldest report first (moderators)",
			auth: true, status: 200, response: "ModerationQueue", problems: []int{403}},
		"POST /api/v1/admin/moderation/{id}": {tag: "staff", summary: "Hide, restore or remove an item, with a reason and a note for its author (audited)",
			auth: true, request: "ModerationInput", status: 204, problems: []int{403, 404, 413, 422}},
	}
}

// contentSchemas are the component schemas contentOps name.
func contentSchemas() map[string]any {
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	integer := map[string]any{"type": "integer"}
	boolean := map[string]any{"type": "boolean"}
	enum := func(vs ...string) map[string]any { return map[string]any{"type": "string", "enum": vs} }
	arrayOf := func(schema string) map[string]any { return map[string]any{"type": "array", "items": ref(schema)} }
	reasons := enum("spam", "abuse", "illegal", "privacy", "other")
	file := object(map[string]any{"id": str(""), "kind": enum("photo", "video", "picture"), "mime": str(""), "size": integer, "width": integer,
		"height": integer, "thumbnail": boolean, "created_at": dateTime}, "id", "kind", "mime", "size", "created_at")
	itemProps := map[string]any{"id": str(""), "kind": enum("comment", "post"), "site": str(""), "thread": str(""), "parent_id": str(""),
		"body": str(""), "visibility": enum("public", "private"), "status": enum("visible", "hidden", "removed"), "created_at": dateTime,
		"edited_at": dateTime, "files": arrayOf("File"), "archived": boolean, "why": str("")}
	reported := map[string]any{"reports": integer, "reasons": map[string]any{"type": "array", "items": reasons}, "first_reported": dateTime}
	for k, v := range itemProps {
		reported[k] = v
	}
	return map[string]any{
		"File": file,
		"Item": object(itemProps, "id", "kind", "site", "thread", "body", "visibility", "status", "created_at"),
		"PublicItem": object(map[string]any{"id": str(""), "parent_id": str(""), "author": str(""), "picture": str(""), "body": str(""), "created_at": dateTime,
			"files": arrayOf("File")}, "id", "author", "body", "created_at"),
		"Thread": object(map[string]any{"items": arrayOf("PublicItem")}, "items"),
		"ModerationDecision": object(map[string]any{"item_id": str(""), "action": enum("hide", "restore", "remove"), "reason": reasons,
			"note": str(""), "at": dateTime}, "item_id", "action", "reason", "at"),
		"MyContent": object(map[string]any{"items": arrayOf("Item"), "decisions": arrayOf("ModerationDecision"),
			"default_visibility": enum("public", "private")}, "items", "decisions", "default_visibility"),
		"ContentSettings": object(map[string]any{"default_visibility": enum("public", "private")}, "default_visibility"),
		"Draft": object(map[string]any{"kind": enum("comment", "post"), "site": str(""), "thread": str(""), "parent_id": str(""),
			"body": str(""), "visibility": enum("public", "private")}, "kind", "site", "thread", "body"),
		"ContentEdit": object(map[string]any{"body": str(""), "visibility": enum("public", "private")}),
		"ReportInput": object(map[string]any{"reason": reasons}, "reason"),
		"GuestComment": object(map[string]any{"thread": str(""), "parent_id": str(""), "name": str(""), "email": map[string]any{"type": "string", "format": "email"},
			"body": str("")}, "thread", "name", "email", "body"),
		"GuestAccepted":   object(map[string]any{"status": str(""), "message": str("")}, "status", "message"),
		"ModerationInput": object(map[string]any{"action": enum("hide", "restore", "remove"), "reason": reasons, "note": str("")}, "action", "reason"),
		"ReportedItem":    object(reported, "id", "kind", "body", "status", "reports", "reasons"),
		"ModerationQueue": object(map[string]any{"items": arrayOf("ReportedItem")}, "items"),
	}
}
