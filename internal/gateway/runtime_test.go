package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// TestRuntimeStateSurvivesRestart: revocations, drains and bans made
// through the admin API are in force again after a restart, read from
// the encrypted runtime state file; a grep of the whole state directory
// (runtime state, API key store, current and retired assertion keys)
// finds none of them, no key and no private key in plaintext.
func TestRuntimeStateSurvivesRestart(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	t.Setenv("RAMPART_MASTER", strings.Repeat("cd", 32))
	dir := t.TempDir()
	up := newUpstream(t, nil)
	t.Setenv("RAMPART_KEYS_SECRET", strings.Repeat("k", 40))
	cfg := baseConfig(up.hostPort(), `state: {master_key: '${env:RAMPART_MASTER}', runtime_file: `+filepath.Join(dir, "runtime.state")+`}
abuse: {ban_for: 1m}
admin: {address: 127.0.0.1:0, token: '${env:RAMPART_ADMIN_TOKEN}'}
authn:
  api_keys: {secret: '${env:RAMPART_KEYS_SECRET}', file: `+filepath.Join(dir, "keys.json")+`}
assertion: {issuer: https://gw.test, key_file: `+filepath.Join(dir, "assertion.key")+`}
`)
	g, _ := startGateway(t, cfg)
	code, created := adminCall(t, "POST", api(g)+"/apikeys", adminToken, `{"consumer":"billing-batch","scopes":["reports:read"]}`)
	var key struct{ Key string }
	if json.Unmarshal([]byte(created), &key); code != http.StatusCreated || key.Key == "" {
		t.Fatalf("create an API key: %d %s", code, created)
	}
	// The secret is the key's last 43 characters (base64url of 32 bytes,
	// which may itself hold "_": splitting at the last one made this a
	// single letter now and then, found by chance in ciphertext).
	secretPart := key.Key[len(key.Key)-43:]
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/assertion/rotate", ""},
		{"POST", "/revocations", `{"jti":"leaked-7f3a9c","for":"1h"}`},
		{"POST", "/revocations", `{"issuer":"https://idp.example","subject":"mallory@example.com","for":"1h"}`},
		{"PATCH", "/upstreams/svc/targets/" + up.hostPort(), `{"drained":true}`},
		{"POST", "/bans", `{"ip":"203.0.113.9","for":"1h"}`},
	} {
		if code, body := adminCall(t, c.method, api(g)+c.path, adminToken, c.body); code >= 300 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, code, body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if d == nil || d.IsDir() {
			return nil
		}
		raw, _ := os.ReadFile(path)
		for _, s := range []string{"leaked-7f3a9c", "mallory", "203.0.113.9", up.hostPort(), "PRIVATE KEY", key.Key, secretPart, "billing-batch"} {
			if strings.Contains(string(raw), s) {
				t.Errorf("%s holds %q in plaintext", path, s)
			}
		}
		return nil
	})

	g2, addr := startGateway(t, cfg)
	revs := g2.state.Load().JTIs.List(time.Now())
	if len(revs) != 2 {
		t.Fatalf("revocations after restart: %+v", revs)
	}
	if resp, _ := get(t, "http://"+addr+"/api/x", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("the drained target got a request after restart: %d", resp.StatusCode)
	}
	if _, body := get(t, api(g2)+"/bans", map[string]string{"Authorization": "Bearer " + adminToken}); !strings.Contains(body, "203.0.113.9") {
		t.Fatalf("ban lost over a restart: %s", body)
	}
}

// TestRuntimeStateFileCorrupt: a runtime state file that does not
// decrypt stops the start with an error naming the key and the file; it
// never starts empty (a revoked token would work again).
func TestRuntimeStateFileCorrupt(t *testing.T) {
	t.Setenv("RAMPART_MASTER", strings.Repeat("cd", 32))
	file := filepath.Join(t.TempDir(), "runtime.state")
	if err := os.WriteFile(file, []byte("RAMPART\x00ENC1 not really"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := newUpstream(t, nil)
	cfg, err := config.Parse([]byte(baseConfig(up.hostPort(), `state: {master_key: '${env:RAMPART_MASTER}', runtime_file: `+file+"}\n")), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, pipeline.Deps{})
	if err == nil || !strings.Contains(err.Error(), "state.runtime_file") || !strings.Contains(err.Error(), file) {
		t.Fatalf("want an error naming state.runtime_file and %s, got %v", file, err)
	}
}
