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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
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
// through the admin API under traffic. The new key is published at once
// and signs only a JWKS cache period later, so a service that fetched the
// key set after the rotation and never refetches (MinRefetch of an hour)
// refuses nothing when the switch comes. The files are promoted at the
// next start, where the old key stays published; an operator may not
// rotate, and a rotation while one is staged is refused.
func TestAssertionKeyRotationThroughAPI(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	t.Setenv("RAMPART_OPERATOR_TOKEN", strings.Repeat("o", 40))
	t.Setenv("RAMPART_MASTER", strings.Repeat("ef", 32))
	var offset atomic.Int64 // the clock of the gateway and the service
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	dir := t.TempDir()
	addr := freeAddr(t)
	var kidsSeen sync.Map
	var service http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	var mw func(http.Handler) http.Handler
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, _, _ := strings.Cut(r.Header.Get("X-Rampart-Assertion"), ".")
		kidsSeen.Store(h, true)
		mw(service).ServeHTTP(w, r)
	}))
	defer front.Close()
	keyFile := filepath.Join(dir, "assertion.key")
	cfgYAML := assertionConfig(addr, keyFile, "", front.URL) + `state: {master_key: '${env:RAMPART_MASTER}'}
admin:
  address: 127.0.0.1:0
  token: '${env:RAMPART_ADMIN_TOKEN}'
  principals: [{name: oncall, token: '${env:RAMPART_OPERATOR_TOKEN}', role: operator}]
`
	cfg, err := config.Parse([]byte(cfgYAML), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := startConfig(t, cfg, pipeline.Deps{Now: now})
	if c, body := adminCall(t, "POST", api(g)+"/assertion/rotate", strings.Repeat("o", 40), ""); c != http.StatusForbidden {
		t.Fatalf("an operator rotated: %d %s", c, body)
	}
	c, body := adminCall(t, "POST", api(g)+"/assertion/rotate", adminToken, "")
	var rot struct {
		KID        string    `json:"kid"`
		CurrentKID string    `json:"current_kid"`
		SignsFrom  time.Time `json:"signs_from"`
	}
	if json.Unmarshal([]byte(body), &rot); c != http.StatusOK || rot.KID == "" || rot.KID == rot.CurrentKID || rot.SignsFrom.IsZero() {
		t.Fatalf("rotate: %d %s", c, body)
	}
	if c, body := adminCall(t, "POST", api(g)+"/assertion/rotate", adminToken, ""); c != http.StatusConflict || !strings.Contains(body, "admin.too_soon") {
		t.Fatalf("a rotation while one is staged: %d %s", c, body)
	}
	// The service starts now: it fetches the key set once (the new key is
	// in it) and will not refetch within the test.
	mw, err = verify.Middleware(verify.Options{
		JWKSURL: "http://" + addr + "/.well-known/rampart-jwks.json", AllowPlaintextJWKS: true,
		Issuer: "https://gw.test", Audience: "orders", MinRefetch: time.Hour, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr + "/orders/1"
	waitFor200(t, url)
	// Traffic before the switch, then after it (the clock jumps between
	// the two: an assertion in flight across a jump of minutes would
	// expire, which no real clock does).
	for phase, keys := range []int{1, 2} {
		if phase == 1 {
			offset.Store(int64(time.Until(rot.SignsFrom) + time.Second)) // the switch
		}
		stop := underLoad(3, 2*time.Millisecond, expect200(url))
		time.Sleep(300 * time.Millisecond)
		if r := stop(); r.failed != 0 || r.ok < 30 {
			t.Fatalf("phase %d: %d ok, %d failed %v", phase, r.ok, r.failed, r.failures)
		}
		n := 0
		kidsSeen.Range(func(any, any) bool { n++; return true })
		if n != keys {
			t.Fatalf("phase %d: assertions under %d keys, want %d", phase, n, keys)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.Shutdown(ctx)
	startConfig(t, cfg, pipeline.Deps{Now: now})
	_, jwks := get(t, "http://"+addr+"/.well-known/rampart-jwks.json", nil)
	if !strings.Contains(jwks, rot.KID) || !strings.Contains(jwks, rot.CurrentKID) {
		t.Fatalf("JWKS after the promotion at restart: %s", jwks)
	}
	if _, err := os.Stat(keyFile + ".next"); !os.IsNotExist(err) {
		t.Fatalf("the staged key file stays after the promotion: %v", err)
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
