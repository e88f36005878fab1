package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/verify"
)

func assertionConfig(addr, keyFile, prev, service string) string {
	prevLine := ""
	if prev != "" {
		prevLine = "  previous_key_files: [" + prev + "]\n"
	}
	return fmt.Sprintf(`version: 1
listeners: [{name: public, address: "%s"}]
assertion:
  issuer: https://gw.test
  key_file: %s
%s  jwks_path: /.well-known/rampart-jwks.json
upstreams: [{name: orders, allow_plaintext: true, targets: [{url: "%s"}]}]
routes:
  - {id: orders, prefix: /orders, upstream: orders, public: true}
`, addr, keyFile, prevLine, service)
}

// TestAssertionKeyRotationUnderTraffic: rotating the gateway's signing key
// (the old key kept as a previous key) fails no request at a verify-protected
// service.
func TestAssertionKeyRotationUnderTraffic(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	mw, err := verify.Middleware(verify.Options{
		JWKSURL: "http://" + addr + "/.well-known/rampart-jwks.json", AllowPlaintextJWKS: true,
		Issuer: "https://gw.test", Audience: "orders", MinRefetch: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	service := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })))
	defer service.Close()
	keyA, keyB := filepath.Join(dir, "a.key"), filepath.Join(dir, "b.key")
	g, _ := startGateway(t, assertionConfig(addr, keyA, "", service.URL))
	url := "http://" + addr + "/orders/1"
	waitOK := time.Now().Add(5 * time.Second)
	for time.Now().Before(waitOK) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop := underLoad(3, 2*time.Millisecond, func() string {
		resp, err := http.Get(url)
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return resp.Status
		}
		return ""
	})
	time.Sleep(400 * time.Millisecond)
	cfg, err := config.Parse([]byte(assertionConfig("127.0.0.1:0", keyB, keyA, service.URL)), "rotate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listeners[0].Address = addr
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if r := stop(); r.failed != 0 || r.ok < 50 {
		t.Fatalf("key rotation: %d ok, %d failed %v", r.ok, r.failed, r.failures)
	}
	resp, err := http.Get("http://" + addr + "/.well-known/rampart-jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := strings.Count(string(body), `"kid"`); n != 2 {
		t.Errorf("JWKS after rotation publishes %d keys, want 2: %s", n, body)
	}
}
