package web

// opsOps documents the operations endpoints in /openapi.json.
func opsOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /healthz": {tag: "operations", summary: "Liveness: the process answers", status: 200, response: "Status"},
		"GET /readyz": {tag: "operations", summary: "Readiness: the database answers", status: 200, response: "Status",
			problems: []int{503}},
		"GET /openapi.json": {tag: "operations", summary: "This document", status: 200, response: "OpenAPIDocument"},
		"GET /metrics": {tag: "operations", summary: "Prometheus metrics (operators only)", status: 200, response: "Metrics",
			mediaType: "text/plain; version=0.0.4", security: []string{"metrics"}, problems: []int{403},
			desc: "Answered only to scrapers on loopback or in a trusted proxy network (--trusted-proxies), or with the " +
				"operator's metrics token as a Bearer token; anyone else gets 403. Route labels are patterns, never paths."},
	}
}

// opsSchemas are the component schemas opsOps name.
func opsSchemas() map[string]any {
	return map[string]any{
		"OpenAPIDocument": map[string]any{"type": "object"},
		"Metrics":         map[string]any{"type": "string", "description": "The Prometheus text exposition format."},
	}
}
