package web

import (
	"encoding/json"
	"fmt"
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
	status   int    // success status
	response string // component schema of the success body, "" for none
	problems []int  // problem statuses besides the ones every operation has
	desc     string
}

// apiOps documents the operations, keyed by route pattern. Each capability
// keeps its entries in a function beside its handlers and adds it to this
// list.
func apiOps() map[string]apiOp {
	out := map[string]apiOp{}
	for _, part := range []map[string]apiOp{
		coreAPIOps(),
		consentOps(),
		analyticsOps(),
		rightsOps(),
	} {
		for k, v := range part {
			out[k] = v
		}
	}
	return out
}

// coreAPIOps documents the foundation's operations.
func coreAPIOps() map[string]apiOp {
	return map[string]apiOp{
		"GET /healthz": {tag: "operations", summary: "Liveness: the process answers", status: 200, response: "Status"},
		"GET /readyz": {tag: "operations", summary: "Readiness: the database answers", status: 200, response: "Status",
			problems: []int{503}},
		"GET /openapi.json": {tag: "operations", summary: "This document", status: 200, response: "OpenAPIDocument"},

		"POST /api/v1/accounts": {tag: "accounts", summary: "Sign up", request: "SignUpRequest", status: 202, response: "Accepted",
			problems: []int{400, 413, 415, 422, 429},
			desc: "Accepts exactly the registration fields the policy declares. The answer is the same whether or not the " +
				"address is registered; the owner of an existing address is mailed instead, and a new address gets a verification link."},
		"POST /api/v1/sessions": {tag: "sessions", summary: "Log in", request: "LoginRequest", status: 201, response: "SessionCreated",
			problems: []int{400, 401, 413, 415, 422, 429},
			desc:     "Returns a session token for the Authorization: Bearer header and sets the same token as the steward_session cookie."},
		"DELETE /api/v1/sessions/current": {tag: "sessions", summary: "Log out (end the current session)", auth: true, status: 204},
		"GET /api/v1/me":                  {tag: "me", summary: "The signed-in account and its profile", auth: true, status: 200, response: "Profile"},
		"PATCH /api/v1/me": {tag: "me", summary: "Correct self-editable profile fields", auth: true, request: "ProfilePatch", status: 200, response: "Profile",
			problems: []int{400, 403, 409, 413, 415, 422, 429},
			desc: "A JSON merge patch of profile fields. Fields the policy marks self-editable change at once; an email change takes " +
				"effect when the new address is verified. Outside the 10 minutes after a login, an email change needs current_password " +
				"(403 reauthentication_required otherwise). Other fields are refused with 403 forbidden."},
		"POST /api/v1/me/password": {tag: "me", summary: "Change the password", auth: true, request: "PasswordChange", status: 204,
			problems: []int{400, 403, 413, 415, 422, 429}},
		"GET /api/v1/me/sessions": {tag: "sessions", summary: "List the member's sessions", auth: true, status: 200, response: "SessionList"},
		"DELETE /api/v1/me/sessions/{id}": {tag: "sessions", summary: "Revoke one of the member's sessions", auth: true, status: 204,
			problems: []int{404}},
		"POST /api/v1/me/sessions/revoke-others": {tag: "sessions", summary: "Revoke every session but the current one", auth: true,
			status: 200, response: "Revoked"},
		"POST /api/v1/email-verifications": {tag: "accounts", summary: "Send a new verification link", request: "EmailRequest",
			status: 202, response: "Accepted", problems: []int{400, 413, 415, 422, 429},
			desc: "Answers the same whether or not the address belongs to an unverified account."},
		"POST /api/v1/email-verifications/confirm": {tag: "accounts", summary: "Verify an email address with the mailed token",
			request: "TokenRequest", status: 200, response: "Status", problems: []int{400, 404, 409, 413, 415, 422, 429}},
		"POST /api/v1/password-resets": {tag: "accounts", summary: "Mail a password reset link", request: "EmailRequest",
			status: 202, response: "Accepted", problems: []int{400, 413, 415, 422, 429},
			desc: "Answers the same whether or not an account uses the address."},
		"POST /api/v1/password-resets/confirm": {tag: "accounts", summary: "Set a new password with the mailed token; ends every session",
			request: "ResetConfirm", status: 200, response: "Status", problems: []int{400, 404, 409, 413, 415, 422, 429}},
		"GET /api/v1/policy": {tag: "policy", summary: "The compiled policy in force, with its version number and hash",
			status: 200, response: "PolicyDocument"},
	}
}

// documented reports whether a route belongs in the OpenAPI document.
func documented(pattern string) bool {
	_, path, _ := strings.Cut(pattern, " ")
	return strings.HasPrefix(path, "/api/v1/") || path == "/healthz" || path == "/readyz" || path == "/openapi.json"
}

func (s *server) handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.openapi)
	})
}

// openAPIDocument builds the OpenAPI 3.1 document of the documented
// routes. Sign-up and profile schemas follow the policy in force, so the
// document names exactly the fields this deployment accepts.
func (s *server) openAPIDocument() ([]byte, error) {
	ops := withConsent(apiOps(), consentOps())
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
			"schemas":   withConsent(withConsent(withConsent(s.schemas(), consentSchemas()), analyticsSchemas()), rightsSchemas()),
			"responses": problemResponses(),
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer",
					"description": "The token returned by POST /api/v1/sessions."},
				"cookie": map[string]any{"type": "apiKey", "in": "cookie", "name": SessionCookie,
					"description": "The same token as a cookie, for browsers. Unsafe cross-origin requests are refused."},
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
	if op.request != "" {
		o["requestBody"] = map[string]any{
			"required": true,
			"content":  map[string]any{"application/json": map[string]any{"schema": ref(op.request)}},
		}
	}
	success := map[string]any{"description": http.StatusText(op.status)}
	if op.response != "" {
		success["content"] = map[string]any{"application/json": map[string]any{"schema": ref(op.response)}}
	}
	responses := map[string]any{strconv.Itoa(op.status): success}
	problems := slices.Clone(op.problems)
	problems = append(problems, 500)
	if op.auth {
		problems = append(problems, 401)
		o["security"] = []any{map[string]any{"bearer": []any{}}, map[string]any{"cookie": []any{}}}
	}
	if op.request != "" {
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

func (s *server) schemas() map[string]any {
	dateTime := map[string]any{"type": "string", "format": "date-time"}
	reg := s.d.Policy.Registration

	signUp := map[string]any{
		"password": map[string]any{"type": "string", "minLength": 15, "maxLength": 256,
			"description": "At least 15 characters; screened against common and breached passwords."},
	}
	required := []string{"email", "password"}
	for _, f := range reg.Fields {
		if f == "password" {
			continue
		}
		signUp[f] = str(labelOf(f))
		if slices.Contains(reg.Required, f) && !slices.Contains(required, f) {
			required = append(required, f)
		}
	}
	if _, ok := signUp["email"]; !ok {
		signUp["email"] = str("Email address")
	}
	signUp["email"] = map[string]any{"type": "string", "format": "email", "maxLength": 254}
	if reg.AgeCheck == "confirmation" {
		signUp["age_confirmed"] = map[string]any{"type": "boolean",
			"description": "The person confirms they are at least " + strconv.Itoa(s.d.Policy.MinimumAge) + " years old."}
	}

	patch := map[string]any{"current_password": str("Needed outside the 10 minutes after a login for an email change.")}
	for _, f := range reg.Fields {
		if f != "password" && s.d.Policy.SelfEditable(f) {
			patch[f] = str(labelOf(f))
		}
	}

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
		"Status":          object(map[string]any{"status": str("")}, "status"),
		"Accepted":        object(map[string]any{"status": map[string]any{"const": "accepted"}, "message": str("")}, "status", "message"),
		"OpenAPIDocument": map[string]any{"type": "object"},
		"SignUpRequest":   object(signUp, required...),
		"LoginRequest":    object(map[string]any{"email": str(""), "password": str("")}, "email", "password"),
		"SessionCreated": object(map[string]any{
			"token":      str("Send as Authorization: Bearer <token>."),
			"expires_at": dateTime,
			"session_id": str(""),
		}, "token", "expires_at", "session_id"),
		"Profile": object(map[string]any{
			"id":             str("The member's pseudonymous subject id."),
			"email":          map[string]any{"type": "string"},
			"email_verified": map[string]any{"type": "boolean"},
			"pending_email":  str("A new address waiting for verification."),
			"role":           str("Staff role, if any."),
			"fields":         map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
			"self_editable":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			"created_at":     dateTime,
		}, "id", "email", "email_verified", "fields", "self_editable"),
		"ProfilePatch": object(patch),
		"PasswordChange": object(map[string]any{
			"current_password": str(""),
			"new_password":     map[string]any{"type": "string", "minLength": 15, "maxLength": 256},
		}, "current_password", "new_password"),
		"Session": object(map[string]any{
			"id":                str(""),
			"created_at":        dateTime,
			"last_seen_at":      dateTime,
			"expires_at":        dateTime,
			"user_agent_family": str("Browser family only; the full user agent is not kept."),
			"network":           str("The client's network, truncated; the address is not kept."),
			"current":           map[string]any{"type": "boolean"},
		}, "id", "created_at", "expires_at", "current"),
		"SessionList":  object(map[string]any{"sessions": map[string]any{"type": "array", "items": ref("Session")}}, "sessions"),
		"Revoked":      object(map[string]any{"revoked": map[string]any{"type": "integer", "minimum": 0}}, "revoked"),
		"EmailRequest": object(map[string]any{"email": str("")}, "email"),
		"TokenRequest": object(map[string]any{"token": str("The token from the mailed link.")}, "token"),
		"ResetConfirm": object(map[string]any{
			"token":    str("The token from the mailed link."),
			"password": map[string]any{"type": "string", "minLength": 15, "maxLength": 256},
		}, "token", "password"),
		"PolicyDocument": object(map[string]any{
			"version":        map[string]any{"type": "integer", "minimum": 1, "description": "The published version number."},
			"hash":           str("SHA-256 of the policy's canonical form."),
			"effective_date": map[string]any{"type": "string", "format": "date"},
			"policy":         map[string]any{"type": "object", "description": "The compiled policy, built-in purposes included."},
		}, "version", "hash", "effective_date", "policy"),
	}
}
