package web

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// apiOp documents one API operation in /openapi.json. Every route under
// /api/v1 needs one (a test walks the route table and the document both
// ways); a capability that adds routes adds their entries here.
type apiOp struct {
	summary  string
	tag      string
	auth     bool   // needs a session (Bearer token or cookie)
	request  string // component schema of the JSON body, "" for none
	form     string // component schema of a multipart/form-data body (files), beside the JSON one or alone
	status   int    // success status
	response string // component schema of the success body, "" for none
	problems []int  // problem statuses besides the ones every operation has
	desc     string
	// mediaType is the success body's type when it is not
	// application/json.
	mediaType string
	// security names the schemes of a route that is neither public nor
	// for a signed-in member (auth); a public route leaves both unset.
	security []string
}

// apiSection is one capability's part of /openapi.json: its operations,
// keyed by route pattern, and the component schemas they name. Each
// capability keeps its section in its x_openapi.go file.
type apiSection struct {
	ops     map[string]apiOp
	schemas map[string]any
}

// apiSections lists every capability's section.
func (s *server) apiSections() []apiSection {
	return []apiSection{
		{opsOps(), opsSchemas()},
		{accountsOps(), s.accountsSchemas()},
		{socialOps(), socialSchemas()},
		{policyOps(), policySchemas()},
		{consentOps(), consentSchemas()},
		{newslettersOps(), newslettersSchemas()},
		{noticesOps(), noticesSchemas()},
		{rightsOps(), rightsSchemas()},
		{analyticsOps(), analyticsSchemas()},
		{contentOps(), contentSchemas()},
		{supportOps(), supportSchemas()},
		{secondFactorOps(), secondFactorSchemas()},
		{passkeyOps(), passkeySchemas()},
		{paymentsOps(), paymentsSchemas()},
		{sharingOps(), sharingSchemas()},
		{openidOps(), openidSchemas()},
		{retentionOps(), retentionSchemas()},
		{disclosureOps(), disclosureSchemas()},
	}
}

// apiOps documents the operations, keyed by route pattern.
func (s *server) apiOps() map[string]apiOp {
	out := map[string]apiOp{}
	for _, sec := range s.apiSections() {
		maps.Copy(out, sec.ops)
	}
	return out
}

// documented reports whether a route belongs in the OpenAPI document:
// every route meant for programs rather than people.
func documented(pattern string) bool {
	_, path, _ := strings.Cut(pattern, " ")
	return strings.HasPrefix(path, "/api/v1/") || strings.HasPrefix(path, "/.well-known/") ||
		path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/openapi.json"
}

// openAPIDocument builds the OpenAPI 3.1 document of the documented
// routes. Sign-up and profile schemas follow the policy in force, so the
// document names exactly the fields this deployment accepts.
func (s *server) openAPIDocument() ([]byte, error) {
	ops := map[string]apiOp{}
	schemas := sharedSchemas()
	for _, sec := range s.apiSections() {
		maps.Copy(ops, sec.ops)
		maps.Copy(schemas, sec.schemas)
	}
	paths := map[string]map[string]any{}
	for _, rt := range s.routeTab {
		pat := rt.pattern()
		if !documented(pat) {
			continue
		}
		op, ok := ops[pat]
		if !ok {
			// TestOpenAPIMatchesRoutes fails on this; the server still
			// starts, with a bare entry.
			op = apiOp{summary: pat, tag: "undocumented", status: 200}
		}
		if paths[rt.path] == nil {
			paths[rt.path] = map[string]any{}
		}
		paths[rt.path][strings.ToLower(rt.method)] = s.operation(rt, op)
	}
	info := map[string]any{
		"title":   "Steward API",
		"version": "1",
		"description": "The JSON API of " + s.siteName() + "'s Steward: accounts, sessions and the privacy policy in force. " +
			"Errors are RFC 9457 problem details (application/problem+json) whose type ends in a stable code.",
	}
	doc := map[string]any{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
		"info":              info,
		"paths":             paths,
		"components": map[string]any{
			"schemas":   schemas,
			"responses": problemResponses(),
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer",
					"description": "The token returned by POST /api/v1/sessions."},
				"cookie": map[string]any{"type": "apiKey", "in": "cookie", "name": SessionCookie,
					"description": "The same token as a cookie, for browsers. Unsafe cross-origin requests are refused."},
				"metrics": map[string]any{"type": "http", "scheme": "bearer",
					"description": "The operator's metrics token (--metrics-token). Scrapers on loopback or in a trusted proxy network need none."},
				"stripeSignature": map[string]any{"type": "apiKey", "in": "header", "name": "Stripe-Signature",
					"description": "The processor's HMAC-SHA256 signature of the timestamp and the exact body, under the endpoint secret."},
				"webhookSignature": map[string]any{"type": "apiKey", "in": "header", "name": "webhook-signature",
					"description": "A recipient's Standard Webhooks signature (with webhook-id and webhook-timestamp) under its endpoint secret."},
				"recipientKey": map[string]any{"type": "http", "scheme": "bearer",
					"description": "The API key of a recipient that pulls (from the environment variable the policy names)."},
			},
		},
	}
	if s.base != nil {
		doc["servers"] = []any{map[string]any{"url": strings.TrimRight(s.base.String(), "/")}}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("web: encode OpenAPI document: %w", err)
	}
	return b, nil
}

func ref(schema string) map[string]any {
	return map[string]any{"$ref": "#/components/schemas/" + schema}
}

func (s *server) operation(rt route, op apiOp) map[string]any {
	o := map[string]any{
		"operationId": operationID(rt),
		"summary":     op.summary,
		"tags":        []string{op.tag},
	}
	if op.desc != "" {
		o["description"] = op.desc
	}
	var params []any
	for _, seg := range strings.Split(rt.path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			name := strings.Trim(seg, "{}")
			params = append(params, map[string]any{"name": name, "in": "path", "required": true,
				"schema": map[string]any{"type": "string"}})
		}
	}
	if params != nil {
		o["parameters"] = params
	}
	if op.request != "" || op.form != "" {
		content := map[string]any{}
		if op.request != "" {
			content["application/json"] = map[string]any{"schema": ref(op.request)}
		}
		if op.form != "" {
			content["multipart/form-data"] = map[string]any{"schema": ref(op.form)}
		}
		o["requestBody"] = map[string]any{"required": true, "content": content}
	}
	success := map[string]any{"description": http.StatusText(op.status)}
	if op.response != "" {
		mt := op.mediaType
		if mt == "" {
			mt = "application/json"
		}
		success["content"] = map[string]any{mt: map[string]any{"schema": ref(op.response)}}
	}
	responses := map[string]any{strconv.Itoa(op.status): success}
	problems := slices.Clone(op.problems)
	// Every request may be refused for a body over the limit (limitBody),
	// whatever its method, and may fail.
	problems = append(problems, 413, 500)
	switch {
	case op.auth:
		problems = append(problems, 401)
		o["security"] = []any{map[string]any{"bearer": []any{}}, map[string]any{"cookie": []any{}}}
	case len(op.security) > 0:
		var req []any
		for _, name := range op.security {
			req = append(req, map[string]any{name: []any{}})
		}
		o["security"] = req
	default:
		o["security"] = []any{} // public: no credentials
	}
	if op.request != "" || op.form != "" {
		problems = append(problems, 400, 413, 415)
	}
	if rt.method != "GET" && rt.method != "HEAD" {
		problems = append(problems, 403) // cross-origin browser requests
	}
	sort.Ints(problems)
	for _, st := range slices.Compact(problems) {
		responses[strconv.Itoa(st)] = map[string]any{"$ref": "#/components/responses/Problem" + strconv.Itoa(st)}
	}
	o["responses"] = responses
	return o
}

// operationID derives a stable id such as post_api_v1_me_sessions_revoke_others.
func operationID(rt route) string {
	r := strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_", ".", "_")
	return strings.ToLower(rt.method) + strings.TrimSuffix(r.Replace(rt.path), "_")
}

func problemResponses() map[string]any {
	out := map[string]any{}
	for _, st := range []int{400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 503} {
		resp := map[string]any{
			"description": http.StatusText(st),
			"content":     map[string]any{"application/problem+json": map[string]any{"schema": ref("Problem")}},
		}
		if st == 429 {
			resp["headers"] = map[string]any{"Retry-After": map[string]any{
				"description": "Seconds to wait before trying again.",
				"schema":      map[string]any{"type": "integer"},
			}}
		}
		out["Problem"+strconv.Itoa(st)] = resp
	}
	return out
}

func str(desc string) map[string]any {
	m := map[string]any{"type": "string"}
	if desc != "" {
		m["description"] = desc
	}
	return m
}

func object(props map[string]any, required ...string) map[string]any {
	m := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		m["required"] = required
	}
	return m
}

// sharedSchemas are the component schemas of every capability.
func sharedSchemas() map[string]any {
	return map[string]any{
		"Problem": map[string]any{
			"type": "object",
			"properties": map[string]any{
				"type":     map[string]any{"type": "string", "format": "uri", "description": problemTypeBase + "<code>"},
				"title":    str(""),
				"status":   map[string]any{"type": "integer"},
				"detail":   str("A message safe to show to the person."),
				"instance": str("The request id, also in the X-Request-Id header and the server log."),
				"field":    str("The input field the problem is about, when there is one."),
			},
			"required": []string{"type", "title", "status"},
		},
		"Status":   object(map[string]any{"status": str("")}, "status"),
		"Accepted": object(map[string]any{"status": map[string]any{"const": "accepted"}, "message": str("")}, "status", "message"),
	}
}
