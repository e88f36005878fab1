package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// TestDiscoveryThroughGateway: with discovery on, the gateway learns the
// operations it forwards (off the request path); the admin API answers
// the learned document and the report (shadow operations of a route
// without a document, sensitive data in responses), and the sensitive
// finding is a security event that names the class, never the value.
func TestDiscoveryThroughGateway(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"email":"carol.private@corp.example","plan":"gold"}`, strings.TrimPrefix(r.URL.Path, "/api/users/"))
	})
	cfg := baseConfig(up.hostPort(), "discovery: {sample: 1}\nadmin: {address: 127.0.0.1:0, token: '${env:RAMPART_ADMIN_TOKEN}'}\n")
	parsed, err := config.Parse([]byte(cfg), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parsed.AccessLog.Enabled = new(bool)
	rec := &pipeline.EventRecorder{}
	g, addr := startConfig(t, parsed, pipeline.Deps{Now: time.Now, Events: rec})
	for i := 0; i < 30; i++ {
		resp, _ := get(t, fmt.Sprintf("http://%s/api/users/%d", addr, 100+i), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	var draft string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, draft = get(t, api(g)+"/discovery/openapi", map[string]string{"Authorization": "Bearer " + adminToken})
		if strings.Contains(draft, `"Seen 30 times."`) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(draft, `"/api/users/{userId}"`) || !strings.Contains(draft, `"format": "email"`) {
		t.Fatalf("learned document: %s", draft)
	}
	_, report := get(t, api(g)+"/discovery/report", map[string]string{"Authorization": "Bearer " + adminToken})
	var rep struct {
		Shadow    []struct{ Route, Path string }
		Sensitive []struct{ Pointer, Class string } `json:"sensitive_data"`
	}
	if json.Unmarshal([]byte(report), &rep); len(rep.Shadow) != 1 || rep.Shadow[0].Path != "/api/users/{userId}" || len(rep.Sensitive) != 1 || rep.Sensitive[0].Class != "email" {
		t.Fatalf("report: %s", report)
	}
	found := 0
	for _, ev := range rec.Events() {
		if ev.Name == "discovery.sensitive_data" {
			found++
			if fmt.Sprint(ev) != "" && strings.Contains(fmt.Sprintf("%+v", ev), "carol.private") {
				t.Fatal("the event carries the value")
			}
		}
	}
	if found != 1 {
		t.Fatalf("%d sensitive data events, want 1", found)
	}
	if strings.Contains(draft+report, "carol.private") {
		t.Fatal("a value is in the document or report")
	}
}
