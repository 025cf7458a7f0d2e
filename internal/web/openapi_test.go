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
				if strings.HasPrefix(rt.path, "/api/") && !documentedOps[rt.pattern()] {
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
			ops2 := apiOps()
			for _, rt := range e.srv.routeTab {
				if strings.HasPrefix(rt.path, "/api/") {
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
