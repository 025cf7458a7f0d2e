package web

// policyOps documents the published policy's JSON in /openapi.json.
func policyOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /api/v1/policy": {tag: "policy", summary: "The compiled policy in force, with its version number and hash",
			status: 200, response: "PolicyDocument"},
	}
}

// policySchemas are the component schemas policyOps name.
func policySchemas() map[string]any {
	return map[string]any{
		"PolicyDocument": object(map[string]any{
			"version":        map[string]any{"type": "integer", "minimum": 1, "description": "The published version number."},
			"hash":           str("SHA-256 of the policy's canonical form."),
			"effective_date": map[string]any{"type": "string", "format": "date"},
			"policy":         map[string]any{"type": "object", "description": "The compiled policy, built-in purposes included."},
		}, "version", "hash", "effective_date", "policy"),
	}
}
