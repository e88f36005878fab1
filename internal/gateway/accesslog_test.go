package gateway

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// TestAccessLogRedaction: credentials in headers and the query string never
// reach the access log; the line carries the documented fields.
func TestAccessLogRedaction(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	logFile := filepath.Join(t.TempDir(), "access.log")
	cfg, err := config.Parse([]byte(baseConfig(up.hostPort(), "access_log:\n  output: "+logFile+"\n")), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, pipeline.Deps{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	addr := g.Addr("public").String()
	get(t, "http://"+addr+"/api/x?access_token=SECRET1&page=2&api_key=SECRET2", map[string]string{
		"Authorization": "Bearer SECRET3", "Cookie": "session=SECRET4", "X-Api-Key": "SECRET5", "Proxy-Authorization": "Basic SECRET6",
	})
	get(t, "http://"+addr+"/nothing?token=SECRET7", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "SECRET") {
		t.Fatalf("secret in access log:\n%s", raw)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), raw)
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(lines[1]), &second)
	if first["query"] != "access_token=REDACTED&page=2&api_key=REDACTED" || first["route"] != "api" || first["status"] != 200.0 || first["upstream"] == "" {
		t.Errorf("first line: %s", lines[0])
	}
	if second["code"] != "router.not_found" || second["status"] != 404.0 {
		t.Errorf("second line: %s", lines[1])
	}
	// One rule for every output: a served request has no code; an
	// unrouted one is route "none" with the path and host it asked for,
	// and no upstream.
	if _, ok := first["code"]; ok {
		t.Errorf("served request logs a code: %s", lines[0])
	}
	if second["route"] != config.NoRoute || second["path"] != "/nothing" || second["host"] == "" || second["upstream"] != nil {
		t.Errorf("unrouted request: %s", lines[1])
	}
	if st, _ := os.Stat(logFile); st.Mode().Perm() != 0o600 {
		t.Errorf("access log mode %v, want 0600", st.Mode().Perm())
	}
}
