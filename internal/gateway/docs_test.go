package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestPublishedDocs: the API document is served in JSON and YAML on the
// listeners docs names (GET and HEAD only), describes the routes with
// the gateway's answers, and holds no upstream address.
func TestPublishedDocs(t *testing.T) {
	up := newUpstream(t, nil)
	g, addr := startGateway(t, baseConfig(up.hostPort(), "docs: {listeners: [public], title: Test API, servers: [\"https://api.example.com\"]}\n"))
	_ = g
	resp, body := get(t, "http://"+addr+"/api-docs/openapi.json", nil)
	var doc struct {
		OpenAPI string
		Info    struct{ Title string }
		Paths   map[string]map[string]any
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("openapi.json: %d %s", resp.StatusCode, body)
	}
	if doc.OpenAPI != "3.1.0" || doc.Info.Title != "Test API" || len(doc.Paths) == 0 {
		t.Fatalf("document %+v", doc)
	}
	if strings.Contains(body, up.hostPort()) {
		t.Fatal("the published document names the upstream")
	}
	resp, yml := get(t, "http://"+addr+"/api-docs/openapi.yaml", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" || !strings.HasPrefix(yml, "openapi: 3.1.0") {
		t.Fatalf("openapi.yaml: %d %s", resp.StatusCode, yml)
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/api-docs/openapi.json", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 405 {
		t.Fatalf("POST: %v %v", resp, err)
	}
}
