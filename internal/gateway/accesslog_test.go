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
	"github.com/rampart-gw/rampart/internal/observe"
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
	if st, _ := os.Stat(logFile); st.Mode().Perm() != 0o600 {
		t.Errorf("access log mode %v, want 0600", st.Mode().Perm())
	}
}

// TestAccessLogReload: a reload applies a changed access_log section:
// lines after it go to the new output and none to the old; turning the
// log off stops it.
func TestAccessLogReload(t *testing.T) {
	up := newUpstream(t, nil)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	parse := func(access string) *config.Config {
		cfg, err := config.Parse([]byte(baseConfig(up.hostPort(), "")+"access_log: "+access+"\nsecurity_events: {enabled: false}\n"), "access.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	g, addr := startConfig(t, parse("{output: "+a+"}"), pipeline.Deps{Now: time.Now})
	get := func(path string) {
		t.Helper()
		if c := statusLines(rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); len(c) != 1 || c[0] != "200" {
			t.Fatalf("%s: %v", path, c)
		}
	}
	read := func(p string) string { s, _ := os.ReadFile(p); return string(s) }
	get("/api/first")
	waitUntil(t, "the first line in a.log", func() bool { return strings.Contains(read(a), `"/api/first"`) })
	if err := g.Reload(parse("{output: " + b + "}")); err != nil {
		t.Fatal(err)
	}
	get("/api/second")
	waitUntil(t, "the second line in b.log", func() bool { return strings.Contains(read(b), `"/api/second"`) })
	if strings.Contains(read(a), `"/api/second"`) {
		t.Error("a line after the reload reached the old output")
	}
	if err := g.Reload(parse("{enabled: false}")); err != nil {
		t.Fatal(err)
	}
	get("/api/third")
	time.Sleep(2 * observe.FlushEvery)
	if strings.Contains(read(a)+read(b), `"/api/third"`) {
		t.Error("a line was logged after the access log was turned off")
	}
}
