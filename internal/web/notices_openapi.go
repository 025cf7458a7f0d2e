package web

// noticesOps documents the staff notice routes in /openapi.json.
func noticesOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /api/v1/admin/notices": {tag: "staff", summary: "Policy-change and broadcast notices with their progress", auth: true,
			status: 200, response: "Notices", problems: []int{403}},
		"POST /api/v1/admin/notices": {tag: "staff", summary: "Send a notice to everyone (change of ownership, breach)", auth: true,
			request: "BroadcastInput", status: 202, response: "Notice", problems: []int{403, 422}},
	}
}

// noticesSchemas are the component schemas noticesOps name.
func noticesSchemas() map[string]any {
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	integer := map[string]any{"type": "integer"}
	arrayOf := func(schema string) map[string]any { return map[string]any{"type": "array", "items": ref(schema)} }
	noticeSchema := object(map[string]any{"id": str(""), "kind": str(""), "policy_version": integer, "subject": str(""), "text": str(""),
		"audience": str(""), "created_by": str(""), "status": str(""), "queued": integer, "skipped": integer, "created_at": dateTime, "completed_at": dateTime})
	return map[string]any{
		"Notice":  noticeSchema,
		"Notices": object(map[string]any{"notices": arrayOf("Notice")}, "notices"),
		"BroadcastInput": object(map[string]any{"kind": map[string]any{"type": "string", "enum": []string{"ownership", "breach", "other"}},
			"subject": map[string]any{"type": "string", "maxLength": 200}, "text": str("")}, "kind", "subject", "text"),
	}
}
