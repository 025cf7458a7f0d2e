package web

import "maps"

// consentOps documents issue 5's API routes in /openapi.json.
func consentOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /api/v1/me/consents": {tag: "consents", summary: "The member's consents, their history with signed receipts, and pending policy changes",
			auth: true, status: 200, response: "Consents",
			desc: "A Sec-GPC: 1 header on this or any request of a signed-in member is recorded once as an opt-out of every sale/sharing and third-party-marketing purpose."},
		"PUT /api/v1/me/consents/{purpose}": {tag: "consents", summary: "Give, withdraw or refuse consent to a purpose; returns the record with its signed receipt",
			auth: true, request: "ConsentChange", status: 200, response: "ConsentRecord", problems: []int{404, 422},
			desc: "The receipt is signed with the deployment's Ed25519 key, served at /.well-known/steward/receipt-key."},
		"GET /api/v1/me/policy-changes": {tag: "consents", summary: "Policy changes that reduced the member's rights and wait for their acceptance",
			auth: true, status: 200, response: "PolicyChanges"},
		"POST /api/v1/me/policy-changes/{version}/acceptance": {tag: "consents", summary: "Accept the policy version in force",
			auth: true, status: 204, problems: []int{422}},
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
		"GET /api/v1/admin/notices": {tag: "staff", summary: "Policy-change and broadcast notices with their progress", auth: true,
			status: 200, response: "Notices", problems: []int{403}},
		"POST /api/v1/admin/notices": {tag: "staff", summary: "Send a notice to everyone (change of ownership, breach)", auth: true,
			request: "BroadcastInput", status: 202, response: "Notice", problems: []int{403, 422}},
	}
}

// consentSchemas are the component schemas consentOps name.
func consentSchemas() map[string]any {
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	boolean := map[string]any{"type": "boolean"}
	integer := map[string]any{"type": "integer"}
	strs := map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
	anyObj := map[string]any{"type": "object"}
	arrayOf := func(schema string) map[string]any { return map[string]any{"type": "array", "items": ref(schema)} }
	evidence := object(map[string]any{"userAgentFamily": str("Browser family only."), "network": str("The client network (/24 or /48), never the address.")})
	record := object(map[string]any{
		"id": str(""), "subject_id": str(""), "purpose": str(""), "scope": str("list:ID for a newsletter list"),
		"state":            map[string]any{"type": "string", "enum": []string{"given", "withdrawn", "refused"}},
		"method":           map[string]any{"type": "string", "enum": []string{"form", "api", "email_link", "gpc", "staff"}},
		"collection_point": str(""), "policy_version": integer, "policy_hash": str(""), "notice_hash": str(""),
		"actor": str(""), "evidence": evidence, "created_at": dateTime,
		"receipt": map[string]any{"type": "object", "description": "The signed consent receipt (Kantara CR v1.1 fields + ISO/IEC TS 27560 record fields, Ed25519 signature over its RFC 8785 canonical form)."},
	}, "id", "purpose", "state", "method", "created_at", "receipt")
	pending := object(map[string]any{"version": integer, "effective_date": dateTime, "reasons": strs, "url": str("")})
	newsletterSchema := object(map[string]any{"id": str(""), "name": str(""), "description": str(""), "purpose": str(""),
		"double_opt_in": boolean, "tracking_offered": boolean}, "id", "name", "purpose")
	campaign := object(map[string]any{"id": str(""), "list_id": str(""), "subject": str(""), "text": str(""), "html": str(""),
		"created_by": str(""), "status": str(""), "queued": integer, "skipped": integer, "created_at": dateTime, "completed_at": dateTime})
	noticeSchema := object(map[string]any{"id": str(""), "kind": str(""), "policy_version": integer, "subject": str(""), "text": str(""),
		"audience": str(""), "created_by": str(""), "status": str(""), "queued": integer, "skipped": integer, "created_at": dateTime, "completed_at": dateTime})
	return map[string]any{
		"ConsentRecord": record,
		"Consents": object(map[string]any{
			"consents": map[string]any{"type": "array", "items": object(map[string]any{
				"purpose": str(""), "description": str(""), "notice": str(""), "basis": str(""), "gpc": boolean,
				"state":    map[string]any{"type": "string", "enum": []string{"given", "withdrawn", "refused", "not_asked"}},
				"in_force": boolean, "latest": ref("ConsentRecord")})},
			"records":                arrayOf("ConsentRecord"),
			"gpc":                    object(map[string]any{"signal": boolean, "purposes": strs, "statement": str("")}),
			"pending_policy_changes": map[string]any{"type": "array", "items": pending},
			"receipt_key":            str("Where the public key receipts are signed with is served."),
		}, "consents", "records", "gpc", "pending_policy_changes", "receipt_key"),
		"ConsentChange": object(map[string]any{"state": map[string]any{"type": "string", "enum": []string{"given", "withdrawn", "refused"}}}, "state"),
		"PolicyChanges": object(map[string]any{"version": integer, "pending": map[string]any{"type": "array", "items": pending}}, "version", "pending"),
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
		"Notice":           noticeSchema,
		"Notices":          object(map[string]any{"notices": arrayOf("Notice")}, "notices"),
		"BroadcastInput": object(map[string]any{"kind": map[string]any{"type": "string", "enum": []string{"ownership", "breach", "other"}},
			"subject": map[string]any{"type": "string", "maxLength": 200}, "text": str("")}, "kind", "subject", "text"),
	}
}

// withConsent adds issue 5's operations and schemas to the layer's own.
func withConsent[V any](base, extra map[string]V) map[string]V {
	maps.Copy(base, extra)
	return base
}
