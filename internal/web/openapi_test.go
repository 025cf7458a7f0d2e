package web

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPIMatchesRoutes walks the route table and the served document
// both ways: every API route is documented, every documented operation is
// routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"mixi.yaml", "jmir.yaml"} {
		t.Run(file, func(t *testing.T) {
			e := sqliteEnv(t, envOptions{policyFile: file})
			r := e.do(nil, "GET", "/openapi.json", nil)
			if r.StatusCode != 200 {
				t.Fatalf("GET /openapi.json = %d", r.StatusCode)
			}
			var doc struct {
				OpenAPI string                                `json:"openapi"`
				Paths   map[string]map[string]json.RawMessage `json:"paths"`
			}
			r.json(t, &doc)
			if doc.OpenAPI != "3.1.0" {
				t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
			}
			documentedOps := map[string]bool{}
			for path, ops := range doc.Paths {
				for method := range ops {
					documentedOps[strings.ToUpper(method)+" "+path] = true
				}
			}
			routed := map[string]bool{}
			for _, rt := range e.srv.routeTab {
				routed[rt.pattern()] = true
				if documented(rt.pattern()) && !documentedOps[rt.pattern()] {
					t.Errorf("route %s is not in /openapi.json", rt.pattern())
				}
			}
			var ops []string
			for op := range documentedOps {
				ops = append(ops, op)
				if !routed[op] {
					t.Errorf("/openapi.json documents %s, which is not routed", op)
				}
			}
			sort.Strings(ops)
			if len(ops) < 15 {
				t.Errorf("only %d operations documented: %v", len(ops), ops)
			}
			// apiOps has an entry for every API route, and no stale ones.
			ops2 := e.srv.apiOps()
			for _, rt := range e.srv.routeTab {
				if documented(rt.pattern()) {
					if _, ok := ops2[rt.pattern()]; !ok {
						t.Errorf("route %s has no entry in apiOps", rt.pattern())
					}
				}
			}
			for pat := range ops2 {
				if !routed[pat] {
					t.Errorf("apiOps documents %s, which is not routed", pat)
				}
			}
		})
	}
}

// TestOpenAPIValid validates the document with kin-openapi.
func TestOpenAPIValid(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"mixi.yaml", "jmir.yaml"} {
		t.Run(file, func(t *testing.T) {
			e := sqliteEnv(t, envOptions{policyFile: file})
			body := e.do(nil, "GET", "/openapi.json", nil).body
			loader := openapi3.NewLoader()
			doc, err := loader.LoadFromData(body)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if !doc.IsOpenAPI31OrLater() {
				t.Errorf("document is not OpenAPI 3.1")
			}
			if err := doc.Validate(context.Background()); err != nil {
				t.Fatalf("validate: %v", err)
			}
			// The sign-up schema names exactly the policy's registration
			// fields (J1), plus the password and the age question.
			su := doc.Components.Schemas["SignUpRequest"].Value
			for _, f := range e.policy.Registration.Fields {
				if _, ok := su.Properties[f]; !ok && f != "password" {
					t.Errorf("SignUpRequest lacks the registration field %s", f)
				}
			}
			if su.AdditionalProperties.Has == nil || *su.AdditionalProperties.Has {
				t.Errorf("SignUpRequest must refuse undeclared fields")
			}
			// Every operation's problems are problem+json.
			for path, item := range doc.Paths.Map() {
				for method, op := range item.Operations() {
					for code, ref := range op.Responses.Map() {
						if code >= "400" && ref.Value.Content.Get("application/problem+json") == nil {
							t.Errorf("%s %s %s is not problem+json", method, path, code)
						}
					}
				}
			}
		})
	}
}

// TestOpenAPILintRules holds the document to the rules an independent
// linter (Redocly CLI's recommended set) checks, so it stays clean between
// runs of that tool: every operation says what credentials it takes
// (security: [] for public ones), answers at least one 4xx, has an
// operationId and a summary; the well-known and operator endpoints are
// documented; and servers is present when the base URL is known.
func TestOpenAPILintRules(t *testing.T) {
	t.Parallel()
	e := sqliteEnv(t, envOptions{})
	var doc struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Paths map[string]map[string]struct {
			OperationID string                     `json:"operationId"`
			Summary     string                     `json:"summary"`
			Security    *[]map[string][]string     `json:"security"`
			Responses   map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
		Components struct {
			SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
		} `json:"components"`
	}
	e.do(nil, "GET", "/openapi.json", nil).json(t, &doc)
	if len(doc.Servers) == 0 || doc.Servers[0].URL == "" {
		t.Errorf("servers is empty although the base URL is %q", e.srv.d.Config.BaseURL)
	}
	ids := map[string]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			name := strings.ToUpper(method) + " " + path
			if op.Security == nil {
				t.Errorf("%s has no security key (public operations need security: [])", name)
			} else {
				for _, req := range *op.Security {
					for scheme := range req {
						if _, ok := doc.Components.SecuritySchemes[scheme]; !ok {
							t.Errorf("%s names the undefined security scheme %q", name, scheme)
						}
					}
				}
			}
			has4xx := false
			for code := range op.Responses {
				has4xx = has4xx || (len(code) == 3 && code[0] == '4')
			}
			if !has4xx {
				t.Errorf("%s documents no 4xx response", name)
			}
			if op.Summary == "" {
				t.Errorf("%s has no summary", name)
			}
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", name)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s and %s share the operationId %s", name, other, op.OperationID)
			}
			ids[op.OperationID] = name
		}
	}
	for _, want := range []string{"/.well-known/gpc.json", "/.well-known/steward/receipt-key", "/metrics", "/healthz", "/readyz"} {
		if _, ok := doc.Paths[want]; !ok {
			t.Errorf("%s is not documented", want)
		}
	}
}
