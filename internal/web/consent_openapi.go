package web

// consentOps documents the member's consents and policy-change acceptance in /openapi.json.
func consentOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /.well-known/gpc.json": {tag: "consents", summary: "The Global Privacy Control support statement", status: 200,
			response: "GPCStatement", desc: "This site honours Sec-GPC: 1 as an opt-out of every sale/sharing and third-party-marketing purpose."},
		"GET /.well-known/steward/receipt-key": {tag: "consents", summary: "The public key consent receipts are signed with",
			status: 200, response: "ReceiptKey", mediaType: "application/jwk+json",
			desc: "An Ed25519 JSON Web Key; with ?format=pem the same key as a PEM file (application/x-pem-file). " +
				"`steward consent verify` checks receipts offline with it."},
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
	}
}

// consentSchemas are the component schemas consentOps name.
func consentSchemas() map[string]any {
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	boolean := map[string]any{"type": "boolean"}
	integer := map[string]any{"type": "integer"}
	strs := map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
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
	return map[string]any{
		"GPCStatement": object(map[string]any{"gpc": boolean, "lastUpdate": map[string]any{"type": "string", "format": "date"}}, "gpc", "lastUpdate"),
		"ReceiptKey": map[string]any{"type": "object", "description": "An Ed25519 public key as a JSON Web Key (RFC 8037).",
			"properties": map[string]any{"kty": map[string]any{"const": "OKP"}, "crv": map[string]any{"const": "Ed25519"}, "x": str("The key, base64url.")},
			"required":   []string{"kty", "crv", "x"}},
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
	}
}
