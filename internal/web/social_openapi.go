package web

// socialOps documents the routes of sign-in with other services in
// /openapi.json. The sign-in itself is a browser's: GET /login/{provider}
// and its callback are pages.
func socialOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /api/v1/sign-in-providers": {tag: "sessions", summary: "The services people may sign in with, and the claims each may import",
			status: 200, response: "SignInProviders",
			desc: "A browser signs in with one at GET /login/{id}; the claims listed are all a sign-in may keep, as the privacy policy declares."},
		"GET /api/v1/me/sign-in-links": {tag: "me", summary: "The services linked to the member's account", auth: true,
			status: 200, response: "SignInLinks"},
		"DELETE /api/v1/me/sign-in-links/{provider}": {tag: "me", summary: "Unlink a service from the member's account", auth: true,
			status: 204, problems: []int{404, 409},
			desc: "409 when it is the only way into an account without a password: set one first (POST /api/v1/password-resets)."},
	}
}

// socialSchemas are the component schemas socialOps name.
func socialSchemas() map[string]any {
	return map[string]any{
		"SignInProviders": object(map[string]any{
			"providers": map[string]any{"type": "array", "items": object(map[string]any{
				"id": str("In the sign-in path: /login/{id}"), "name": str("As people know the service"),
				"claims": map[string]any{"type": "array", "items": map[string]any{"type": "string", "enum": []string{"name", "email", "picture"}}},
			}, "id", "name", "claims")},
		}, "providers"),
		"SignInLinks": object(map[string]any{
			"links": map[string]any{"type": "array", "items": object(map[string]any{
				"provider": str("The service's id"), "name": str("As people know the service"),
				"created_at": map[string]any{"type": "string", "format": "date-time"},
			}, "provider", "name", "created_at")},
		}, "links"),
	}
}
