package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
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
	waitFor200(t, url)
	stop := underLoad(3, 2*time.Millisecond, expect200(url))
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

// TestAssertionKeyRotationThroughAPI: an admin rotates the signing key
// through the admin API under traffic; a service verifying with the real
// middleware refuses nothing, the JWKS publishes the new key and the
// retired one (also after a restart), an operator may not rotate, and a
// second rotation within the overlap is refused.
func TestAssertionKeyRotationThroughAPI(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	t.Setenv("RAMPART_OPERATOR_TOKEN", strings.Repeat("o", 40))
	t.Setenv("RAMPART_MASTER", strings.Repeat("ef", 32))
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
	keyFile := filepath.Join(dir, "assertion.key")
	cfg := assertionConfig(addr, keyFile, "", service.URL) + `state: {master_key: '${env:RAMPART_MASTER}'}
admin:
  address: 127.0.0.1:0
  token: '${env:RAMPART_ADMIN_TOKEN}'
  principals: [{name: oncall, token: '${env:RAMPART_OPERATOR_TOKEN}', role: operator}]
`
	g, _ := startGateway(t, cfg)
	url := "http://" + addr + "/orders/1"
	waitFor200(t, url)
	// The service fetched the key set just now; an unknown kid makes it
	// refetch once MinRefetch has passed since.
	time.Sleep(300 * time.Millisecond)
	stop := underLoad(3, 2*time.Millisecond, expect200(url))
	time.Sleep(300 * time.Millisecond)
	if c, body := adminCall(t, "POST", api(g)+"/assertion/rotate", strings.Repeat("o", 40), ""); c != http.StatusForbidden {
		t.Fatalf("an operator rotated: %d %s", c, body)
	}
	c, body := adminCall(t, "POST", api(g)+"/assertion/rotate", adminToken, "")
	var rot struct {
		KID        string `json:"kid"`
		RetiredKID string `json:"retired_kid"`
	}
	if json.Unmarshal([]byte(body), &rot); c != http.StatusOK || rot.KID == "" || rot.RetiredKID == "" || rot.KID == rot.RetiredKID {
		t.Fatalf("rotate: %d %s", c, body)
	}
	time.Sleep(600 * time.Millisecond)
	if r := stop(); r.failed != 0 || r.ok < 50 {
		t.Fatalf("rotation through the API: %d ok, %d failed %v", r.ok, r.failed, r.failures)
	}
	jwks := func() string {
		_, b := get(t, "http://"+addr+"/.well-known/rampart-jwks.json", nil)
		return b
	}
	if b := jwks(); !strings.Contains(b, rot.KID) || !strings.Contains(b, rot.RetiredKID) {
		t.Fatalf("JWKS after rotation: %s", b)
	}
	if c, body := adminCall(t, "POST", api(g)+"/assertion/rotate", adminToken, ""); c != http.StatusConflict || !strings.Contains(body, "admin.too_soon") {
		t.Fatalf("a second rotation within the overlap: %d %s", c, body)
	}
	for _, f := range []string{keyFile, keyFile + ".retired"} {
		raw, _ := os.ReadFile(f)
		if strings.Contains(string(raw), "PRIVATE KEY") {
			t.Errorf("%s is a plaintext private key", f)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.Shutdown(ctx)
	startGateway(t, cfg)
	if b := jwks(); !strings.Contains(b, rot.KID) || !strings.Contains(b, rot.RetiredKID) {
		t.Fatalf("JWKS after restart: %s", b)
	}
}

// waitFor200 waits up to 5 s for url to answer 200.
func waitFor200(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: no 200 within 5 s", url)
}

// expect200 is a load step: GET url, "" when it answers 200, else why
// not.
func expect200(url string) func() string {
	return func() string {
		resp, err := http.Get(url)
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return resp.Status
		}
		return ""
	}
}
