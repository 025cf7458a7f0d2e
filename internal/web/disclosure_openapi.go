package web

// disclosureOps documents the disclosure routes in /openapi.json.
func disclosureOps() map[string]apiOp {
	return map[string]apiOp{
		"POST /api/v1/me/partner-orders": {tag: "disclosures", summary: "An order through a partner brand: discloses the partner's declared fields (J12)",
			auth: true, request: "PartnerOrder", status: 201, response: "Disclosure", problems: []int{400, 403, 404, 415, 422},
			desc: "The fields the policy declares for the partner are read from the member's profile and disclosed to it on the order's " +
				"contract; the partner receives them as a signed webhook and knows the member only by its own reference. The disclosure " +
				"appears in the member's access report."},
		"GET /api/v1/me/disclosures": {tag: "disclosures", summary: "Who received the member's data, when and why",
			auth: true, status: 200, response: "MyDisclosures", problems: []int{403}},
		"GET /api/v1/admin/disclosures": {tag: "staff", summary: "The register of disclosures, filtered by recipient, purpose, basis, subject and dates",
			auth: true, status: 200, response: "Disclosures", problems: []int{400, 403}},
		"GET /api/v1/admin/recipients": {tag: "staff", summary: "The declared recipients, how each is reached and its deliveries",
			auth: true, status: 200, response: "Recipients", problems: []int{403}},
		"GET /api/v1/admin/deliveries": {tag: "staff", summary: "Deliveries to recipients, by recipient and status",
			auth: true, status: 200, response: "Deliveries", problems: []int{400, 403}},
		"GET /api/v1/admin/deliveries/{id}": {tag: "staff", summary: "One delivery with its log of attempts",
			auth: true, status: 200, response: "Delivery", problems: []int{403, 404}},
		"POST /api/v1/admin/deliveries/{id}/told": {tag: "staff", summary: "Record that a recipient without an endpoint was told by hand",
			auth: true, status: 200, response: "Delivery", problems: []int{403, 404, 409}},
		"GET /api/v1/admin/requests/{id}/recipients": {tag: "staff", summary: "Who was told of a completed request's change, and who acknowledged (Art. 19)",
			auth: true, status: 200, response: "RequestRecipients", problems: []int{403, 404}},
		"GET /api/v1/admin/legal-requests": {tag: "staff", summary: "The register of legal requests",
			auth: true, status: 200, response: "LegalRequests", problems: []int{400, 403}},
		"POST /api/v1/admin/legal-requests": {tag: "staff", summary: "Record a legal request with its decision and notification decision (J16)",
			auth: true, request: "LegalInput", status: 201, response: "LegalRequest", problems: []int{400, 403, 409, 415, 422}},
		"GET /api/v1/admin/legal-requests/{id}": {tag: "staff", summary: "One legal request",
			auth: true, status: 200, response: "LegalRequest", problems: []int{403, 404}},
		"POST /api/v1/admin/legal-requests/{id}/decision": {tag: "staff", summary: "Decide a legal request, with the reason",
			auth: true, request: "LegalDecision", status: 200, response: "LegalRequest", problems: []int{400, 403, 404, 415, 422}},
		"POST /api/v1/admin/legal-requests/{id}/notification": {tag: "staff", summary: "Change when the people concerned are told (extend a delay, now, never)",
			auth: true, request: "LegalNotification", status: 200, response: "LegalRequest", problems: []int{400, 403, 404, 409, 415, 422}},
		"POST /api/v1/admin/legal-requests/{id}/disclosures": {tag: "staff", summary: "Disclose a subject's categories to the request's authority, the request as the basis",
			auth: true, request: "LegalDisclosure", status: 201, response: "Disclosure", problems: []int{400, 403, 404, 415, 422}},
		"POST /api/v1/recipients/{id}/acknowledgements": {tag: "recipients", summary: "A recipient acknowledges events it acted on",
			request: "Ack", status: 200, response: "Acked", problems: []int{400, 401, 409, 413, 415, 422}, security: []string{"webhookSignature", "recipientKey"},
			desc: "Signed like the webhooks the recipient receives (webhook-id, webhook-timestamp within five minutes, webhook-signature " +
				"v1,<base64 HMAC-SHA256 of id.timestamp.body>), and a message id is accepted once: a replay answers 409. A recipient that " +
				"pulls sends its API key as a Bearer token instead."},
		"GET /api/v1/recipients/{id}/events": {tag: "recipients", summary: "A recipient that pulls fetches its events, until it acknowledges them",
			status: 200, response: "Events", problems: []int{400, 401}, security: []string{"recipientKey"}},
		"GET /api/v1/transparency": {tag: "disclosures", summary: "The public transparency report: legal requests by kind, jurisdiction and outcome per half-year (M13)",
			status: 200, response: "TransparencyReport", problems: []int{400}},
	}
}

func disclosureSchemas() map[string]any {
	str := map[string]any{"type": "string"}
	integer := map[string]any{"type": "integer"}
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	strs := map[string]any{"type": "array", "items": str}
	arr := func(ref string) map[string]any {
		return map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/" + ref}}
	}
	disclosure := object(map[string]any{"id": str, "recipient": str, "recipient_ref": str, "purpose": str, "categories": strs, "fields": strs,
		"basis": str, "basis_ref": str, "actor": str, "disclosed_at": dateTime, "subject_id": str, "delivery": str},
		"id", "recipient", "recipient_ref", "purpose", "categories", "fields", "basis", "actor", "disclosed_at")
	attempt := object(map[string]any{"at": dateTime, "status_code": integer, "error": str}, "at", "status_code")
	delivery := object(map[string]any{"id": str, "recipient": str, "event": str, "disclosure": str, "rights_request": str,
		"status":   map[string]any{"type": "string", "enum": []string{"pending", "delivered", "acknowledged", "failed", "manual"}},
		"attempts": integer, "last_error": str, "created_at": dateTime, "delivered_at": dateTime, "acknowledged_at": dateTime,
		"handled_by": str, "log": map[string]any{"type": "array", "items": attempt}}, "id", "recipient", "event", "status", "attempts", "created_at")
	legal := object(map[string]any{"id": str, "kind": str, "jurisdiction": str, "authority": str, "recipient": str, "subjects": strs,
		"categories": strs, "received_at": dateTime, "deadline": dateTime, "decision": str, "decision_reason": str, "notify": str,
		"notify_after": dateTime, "notify_reason": str, "notified": map[string]any{"type": "object", "additionalProperties": str},
		"recorded_by": str, "updated_at": dateTime}, "id", "kind", "jurisdiction", "authority", "subjects", "categories", "decision", "notify")
	row := object(map[string]any{"kind": str, "jurisdiction": str, "decision": str, "requests": integer, "accounts_affected": str},
		"kind", "jurisdiction", "decision", "requests", "accounts_affected")
	period := object(map[string]any{"period": str, "from": dateTime, "to": dateTime, "final": map[string]any{"type": "boolean"},
		"requests": integer, "accounts_affected": str, "rows": map[string]any{"type": "array", "items": row}, "published_at": str},
		"period", "from", "to", "final", "requests", "accounts_affected", "rows")
	return map[string]any{
		"PartnerOrder": object(map[string]any{"recipient": str, "purpose": str}, "recipient"),
		"Disclosure":   disclosure,
		"Disclosures":  object(map[string]any{"disclosures": arr("Disclosure")}, "disclosures"),
		"MyDisclosures": object(map[string]any{"disclosures": map[string]any{"type": "array", "items": object(map[string]any{
			"recipient": str, "recipient_name": str, "role": str, "country": str, "purpose": str, "categories": strs, "fields": strs,
			"basis": str, "disclosed_at": dateTime}, "recipient", "purpose", "disclosed_at")}}, "disclosures"),
		"Recipients": object(map[string]any{"recipients": map[string]any{"type": "array", "items": object(map[string]any{
			"id": str, "name": str, "role": str, "country": str, "purposes": strs, "categories": strs, "fields": strs,
			"delivery": map[string]any{"type": "string", "enum": []string{"webhook", "pull", "by-hand"}}, "webhook": str,
			"deliveries": map[string]any{"type": "object", "additionalProperties": integer}}, "id", "name", "role", "delivery")}}, "recipients"),
		"Delivery":          delivery,
		"Deliveries":        object(map[string]any{"deliveries": arr("Delivery")}, "deliveries"),
		"RequestRecipients": object(map[string]any{"recipients": arr("Delivery")}, "recipients"),
		"LegalRequest":      legal,
		"LegalRequests":     object(map[string]any{"legal_requests": arr("LegalRequest")}, "legal_requests"),
		"LegalInput": object(map[string]any{"kind": map[string]any{"type": "string", "enum": []string{"subpoena", "court-order", "emergency", "other"}},
			"jurisdiction": str, "authority": str, "recipient": str, "subjects": strs, "categories": strs, "deadline": dateTime,
			"decision":        map[string]any{"type": "string", "enum": []string{"pending", "complied", "partly", "refused"}},
			"decision_reason": str, "notify": map[string]any{"type": "string", "enum": []string{"now", "delay", "never"}},
			"notify_after": dateTime, "notify_reason": str,
			"hold": object(map[string]any{"category": str, "until": dateTime, "reason": str}, "reason")},
			"kind", "jurisdiction", "authority", "subjects", "categories", "notify"),
		"LegalDecision":     object(map[string]any{"decision": str, "reason": str}, "decision"),
		"LegalNotification": object(map[string]any{"notify": str, "notify_after": dateTime, "reason": str}, "notify"),
		"LegalDisclosure":   object(map[string]any{"subject": str, "categories": strs}, "subject", "categories"),
		"Ack":               object(map[string]any{"events": strs}, "events"),
		"Acked":             object(map[string]any{"acknowledged": strs}, "acknowledged"),
		"Events": object(map[string]any{"events": map[string]any{"type": "array", "items": object(map[string]any{
			"id": str, "body": map[string]any{"type": "object"}}, "id", "body")}}, "events"),
		"TransparencyReport": object(map[string]any{"controller": str, "generated_at": str, "note": str,
			"periods": map[string]any{"type": "array", "items": period}}, "controller", "generated_at", "periods", "note"),
	}
}
