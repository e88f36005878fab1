package apidocs

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/openapi"
)

var update = flag.Bool("update", false, "rewrite the golden document")

func build(t *testing.T) (*Document, map[string]any) {
	t.Helper()
	t.Setenv("APIDOCS_TEST_KEYS", "apidocs-test-key-secret-0123456789abcdef")
	cfg, err := config.Load("testdata/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(d.JSON, &doc); err != nil {
		t.Fatalf("the JSON document does not parse: %v", err)
	}
	return d, doc
}

// TestGolden pins the merged document of testdata/gateway.yaml (JSON;
// the YAML encodes the same values). Rewrite with -update.
func TestGolden(t *testing.T) {
	d, _ := build(t)
	if *update {
		if err := os.WriteFile("testdata/gateway.golden.json", d.JSON, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/gateway.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.JSON, want) {
		t.Fatalf("the document differs from testdata/gateway.golden.json (go test ./internal/apidocs -run TestGolden -update, then review the diff)")
	}
	var fromJSON, fromYAML any
	json.Unmarshal(d.JSON, &fromJSON)
	if err := yaml.Unmarshal(d.YAML, &fromYAML); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fromJSON)
	b, _ := json.Marshal(fromYAML)
	if !bytes.Equal(a, b) {
		t.Fatal("the YAML and JSON documents differ")
	}
	// It is a valid OpenAPI document (our validator compiles it).
	if _, err := openapi.Compile(d.JSON, "", openapi.Options{}); err != nil {
		t.Fatalf("the published document does not compile: %v", err)
	}
}

// TestNothingInternal: no upstream address, internal host, documents'
// servers or security schemes, hidden route or internal extension is
// published.
func TestNothingInternal(t *testing.T) {
	d, _ := build(t)
	for _, leak := range []string{"internal.corp", "orders-1", "users-9", "/internal/batch", "internal-batch", "x-owner", "team-orders",
		"x-rampart-ownership", "basic", "keys.json", "apidocs-test-key"} {
		if bytes.Contains(d.JSON, []byte(leak)) || bytes.Contains(d.YAML, []byte(leak)) {
			t.Errorf("the published document contains %q", leak)
		}
	}
}

func op(t *testing.T, doc map[string]any, path, method string) map[string]any {
	t.Helper()
	paths := doc["paths"].(map[string]any)
	item, ok := paths[path].(map[string]any)
	if !ok {
		t.Fatalf("no path %s in %v", path, keys(paths))
	}
	o, ok := item[method].(map[string]any)
	if !ok {
		t.Fatalf("no %s %s", method, path)
	}
	return o
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestMerge: public paths (the documents' server base paths), renamed
// components with their references followed, renamed operation ids,
// security and scopes from the routes, the gateway's answers where they
// can happen, skeletons for routes without a document.
func TestMerge(t *testing.T) {
	d, doc := build(t)
	list := op(t, doc, "/v1/orders", "get")
	sec, _ := json.Marshal(list["security"])
	if string(sec) != `[{"corp":["orders:read"]},{"apiKey":[]},{"corp":["orders:admin"]}]` {
		t.Errorf("orders security %s", sec)
	}
	resps := list["responses"].(map[string]any)
	if resps["429"] == nil || resps["401"] == nil || resps["400"].(map[string]any)["$ref"] != "#/components/responses/Problem" {
		t.Errorf("orders responses %v", resps)
	}
	user := op(t, doc, "/v1/users/{userId}", "get")
	if user["operationId"] != "Users_get" || user["responses"].(map[string]any)["429"] != nil {
		t.Errorf("users operation %v", user)
	}
	if ref := user["responses"].(map[string]any)["404"].(map[string]any)["$ref"]; ref != "#/components/responses/UsersProblem" {
		t.Errorf("the users document's Problem response is %v", ref)
	}
	comps := doc["components"].(map[string]any)
	schemas := comps["schemas"].(map[string]any)
	if schemas["UsersProblem"] == nil || schemas["Problem"] == nil {
		t.Errorf("renamed schemas: %v", keys(schemas))
	}
	usersProblem, _ := json.Marshal(comps["responses"].(map[string]any)["UsersProblem"])
	if !strings.Contains(string(usersProblem), "#/components/schemas/UsersProblem") {
		t.Errorf("a renamed component's references were not followed: %s", usersProblem)
	}
	if paths := doc["paths"].(map[string]any); paths["/v1/users"] != nil {
		t.Error("POST /v1/users is published though no route serves it")
	}
	health := op(t, doc, "/healthz", "get")
	if s, _ := json.Marshal(health["security"]); string(s) != "[]" || health["responses"].(map[string]any)["401"] != nil {
		t.Errorf("the public skeleton: %v", health)
	}
	schemes := comps["securitySchemes"].(map[string]any)
	if schemes["corp"].(map[string]any)["type"] != "openIdConnect" || schemes["apiKey"].(map[string]any)["name"] != "X-Partner-Key" || schemes["internal"] != nil {
		t.Errorf("security schemes %v", schemes)
	}
	if !strings.Contains(strings.Join(d.Notes, "\n"), "POST /v1/users") {
		t.Errorf("notes %v", d.Notes)
	}
}

// TestCodesDocumented: every code the published document lists is one
// docs/security.md documents (which a test keeps in step with the code).
func TestCodesDocumented(t *testing.T) {
	sec, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gatewayResponses {
		for _, c := range g.codes {
			if !bytes.Contains(sec, []byte("`"+c+"`")) && !strings.HasPrefix(c, "waf.") {
				t.Errorf("%s (%s) is not in docs/security.md", c, g.status)
			}
		}
	}
}
