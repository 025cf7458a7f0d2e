package web

// openidOps documents the connected-applications routes in
// /openapi.json. The OpenID provider's own endpoints (below /oidc) are
// described by its discovery document, /oidc/.well-known/openid-configuration.
func openidOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /api/v1/me/applications": {tag: "me", summary: "The applications the member signed in to with their account", auth: true,
			status: 200, response: "ApplicationList",
			desc: "Each with the scopes it was asked for, what each releases, and whether a consent scope is in force."},
		"DELETE /api/v1/me/applications/{client}": {tag: "me", summary: "Disconnect an application", auth: true, status: 204, problems: []int{404},
			desc: "Its tokens stop working at once, its pending sign-ins go, and every consent given to it is withdrawn in the ledger."},
	}
}

func openidSchemas() map[string]any {
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	strs := map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
	boolean := map[string]any{"type": "boolean"}
	scope := object(map[string]any{"scope": str("As the application asks for it"), "purpose": str("The purpose the scope serves"),
		"why": str("The purpose in words"), "claims": strs, "consent": boolean, "in_force": boolean},
		"scope", "purpose", "why", "claims", "consent", "in_force")
	app := object(map[string]any{"client_id": str("The application's id in the privacy policy"), "name": str("As the policy names it"),
		"note": str(""), "country": str("Where it receives the data"), "scopes": map[string]any{"type": "array", "items": scope},
		"since": dateTime, "last_used": dateTime}, "client_id", "name", "country", "since")
	return map[string]any{
		"ApplicationList": object(map[string]any{"applications": map[string]any{"type": "array", "items": app}}, "applications"),
	}
}
