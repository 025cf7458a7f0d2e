package web

// newslettersOps documents the newsletter routes in /openapi.json.
func newslettersOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /api/v1/me/newsletters": {tag: "newsletters", summary: "The open lists and the member's subscriptions", auth: true, status: 200, response: "MyNewsletters"},
		"PUT /api/v1/me/newsletters/{list}": {tag: "newsletters", summary: "Subscribe the member's own address", auth: true,
			request: "MemberSubscribe", status: 200, response: "SubscribeResult", problems: []int{404, 409, 422, 429}},
		"DELETE /api/v1/me/newsletters/{list}": {tag: "newsletters", summary: "Unsubscribe the member", auth: true, status: 204, problems: []int{404}},
		"GET /api/v1/newsletters":              {tag: "newsletters", summary: "The lists open for subscription", status: 200, response: "Newsletters"},
		"POST /api/v1/newsletters/{list}/subscriptions": {tag: "newsletters", summary: "Subscribe by email; a confirmation mail follows on double opt-in lists",
			request: "SubscribeRequest", status: 202, response: "Accepted", problems: []int{404, 422, 429},
			desc: "The answer is the same for every address. A signed-in member may omit email to subscribe their own address."},
		"POST /api/v1/admin/newsletters": {tag: "staff", summary: "Add a list (always double opt-in, never tracked)", auth: true,
			request: "ListInput", status: 201, response: "Newsletter", problems: []int{403, 409, 422}},
		"GET /api/v1/admin/newsletters/{list}/campaigns": {tag: "staff", summary: "A list's campaigns and their progress", auth: true,
			status: 200, response: "Campaigns", problems: []int{403, 404}},
		"POST /api/v1/admin/newsletters/{list}/campaigns": {tag: "staff", summary: "Send a campaign", auth: true,
			request: "CampaignInput", status: 202, response: "Campaign", problems: []int{403, 404, 409, 422},
			desc: "Queued in batches through the outbox; each confirmed subscriber is checked against the policy guard when their batch runs."},
		"POST /api/v1/admin/newsletters/unsubscriptions": {tag: "staff", summary: "Unsubscribe someone who asked by mail or phone", auth: true,
			request: "StaffUnsubscribe", status: 202, response: "Accepted", problems: []int{403, 404, 422}},
	}
}

// newslettersSchemas are the component schemas newslettersOps name.
func newslettersSchemas() map[string]any {
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	boolean := map[string]any{"type": "boolean"}
	integer := map[string]any{"type": "integer"}
	anyObj := map[string]any{"type": "object"}
	arrayOf := func(schema string) map[string]any { return map[string]any{"type": "array", "items": ref(schema)} }
	newsletterSchema := object(map[string]any{"id": str(""), "name": str(""), "description": str(""), "purpose": str(""),
		"double_opt_in": boolean, "tracking_offered": boolean}, "id", "name", "purpose")
	campaign := object(map[string]any{"id": str(""), "list_id": str(""), "subject": str(""), "text": str(""), "html": str(""),
		"created_by": str(""), "status": str(""), "queued": integer, "skipped": integer, "created_at": dateTime, "completed_at": dateTime})
	return map[string]any{
		"Newsletter":    newsletterSchema,
		"Newsletters":   object(map[string]any{"newsletters": arrayOf("Newsletter")}, "newsletters"),
		"MyNewsletters": object(map[string]any{"lists": arrayOf("Newsletter"), "subscriptions": map[string]any{"type": "array", "items": anyObj}}, "lists", "subscriptions"),
		"MemberSubscribe": object(map[string]any{"tracking": map[string]any{"type": "boolean",
			"description": "Opt in to open/click counting, honoured only where the policy allows it for the list."}}),
		"SubscribeResult": object(map[string]any{"status": map[string]any{"type": "string", "enum": []string{"pending", "confirmed"}}}, "status"),
		"SubscribeRequest": object(map[string]any{
			"email":       map[string]any{"type": "string", "format": "email", "maxLength": 254},
			"source_page": map[string]any{"type": "string", "maxLength": 500, "description": "Where the form was, kept as evidence."},
			"tracking":    boolean,
		}),
		"ListInput": object(map[string]any{"id": str(""), "name": str(""), "description": str(""), "purpose": str("A consent-based purpose of the policy.")},
			"id", "name", "purpose"),
		"Campaign":  campaign,
		"Campaigns": object(map[string]any{"campaigns": arrayOf("Campaign")}, "campaigns"),
		"CampaignInput": object(map[string]any{"subject": map[string]any{"type": "string", "maxLength": 200},
			"text": str("Plain text; the unsubscribe and preferences links are added."), "html": str("Optional HTML part.")}, "subject", "text"),
		"StaffUnsubscribe": object(map[string]any{"email": str(""), "list": str("A list id; empty for every list.")}, "email"),
	}
}
