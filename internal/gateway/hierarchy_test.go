package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/verify"
)

// TestEdgeMicroService runs client → edge rampart → micro rampart →
// service (protected by verify). The full path works; a direct call to the
// micro-gateway without the edge's assertion, a direct call to the service,
// an assertion replayed for another path, replayed at all, or used after
// expiry, and one for another audience are all refused.
func TestEdgeMicroService(t *testing.T) {
	dir := t.TempDir()
	p := newIDP(t, nil)
	p.addKey("k1", true)
	edgeAddr, microAddr := freeAddr(t), freeAddr(t)

	var mu sync.Mutex
	var seen []string // assertions the service received
	var lastCaller *verify.Caller
	var rejects []string
	mw, err := verify.Middleware(verify.Options{
		JWKSURL: "http://" + microAddr + "/.well-known/rampart-jwks.json", AllowPlaintextJWKS: true,
		Issuer: "https://micro.test", Audience: "orders", ReplayCache: true, Leeway: time.Millisecond,
		OnReject: func(r *http.Request, reason error) { mu.Lock(); rejects = append(rejects, reason.Error()); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	service := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verify.FromContext(r.Context())
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Rampart-Assertion"))
		lastCaller = c
		mu.Unlock()
		io.WriteString(w, "orders for "+c.Subject)
	})))
	defer service.Close()
	recorder := newUpstream(t, nil)

	edge := fmt.Sprintf(`version: 1
listeners: [{name: edge, address: "%s"}]
assertion:
  issuer: https://edge.test
  key_file: %s
  jwks_path: /.well-known/rampart-jwks.json
upstreams:
  - {name: micro, allow_plaintext: true, targets: [{url: "http://%s"}]}
  - {name: probe, allow_plaintext: true, targets: [{url: "http://%s"}]}
authn:
  jwt:
    - {name: idp, issuer: "%s", audiences: [orders-api], algorithms: [ES256], jwks_url: "%s/jwks", allow_plaintext: true}
routes:
  - {id: orders, prefix: /orders, upstream: micro, auth: {jwt: [idp]}, authorize: {scopes_any: [orders:read]}}
  - {id: probe, prefix: /probe, upstream: probe, auth: {jwt: [idp]}, authorize: any_authenticated}
`, edgeAddr, filepath.Join(dir, "edge.key"), microAddr, recorder.hostPort(), p.srv.URL, p.srv.URL)
	micro := fmt.Sprintf(`version: 1
listeners: [{name: micro, address: "%s"}]
assertion:
  issuer: https://micro.test
  key_file: %s
  jwks_path: /.well-known/rampart-jwks.json
  ttl: 1s
upstreams:
  - {name: orders, allow_plaintext: true, targets: [{url: "%s"}]}
authn:
  jwt:
    - name: edge
      issuer: https://edge.test
      audiences: [micro]
      algorithms: [EdDSA]
      jwks_url: http://%s/.well-known/rampart-jwks.json
      allow_plaintext: true
      require_type: rampart-assertion+jwt
      require_binding: true
      min_refetch: 1s
routes:
  - id: orders
    prefix: /orders
    upstream: orders
    auth: {jwt: [edge], token_header: X-Rampart-Assertion}
    authorize: {scopes_all: [orders:read]}
`, microAddr, filepath.Join(dir, "micro.key"), service.URL, edgeAddr)
	startGateway(t, micro)
	startGateway(t, edge)

	call := func(base, path string, hdr map[string]string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	tok := p.token("k1", "alice", time.Minute)
	bearer := map[string]string{"Authorization": "Bearer " + tok}

	// The full path.
	var code int
	var body string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if code, body = call("http://"+edgeAddr, "/orders/42", bearer); code == 200 {
			break
		}
		time.Sleep(50 * time.Millisecond) // key sets still loading
	}
	if code != 200 || body != "orders for alice" {
		t.Fatalf("client → edge → micro → service: %d %q (service rejects: %v)", code, body, rejects)
	}
	mu.Lock()
	if lastCaller.Method != "jwt" || lastCaller.RequestID == "" {
		t.Errorf("caller %+v", lastCaller)
	}
	captured := seen[len(seen)-1]
	mu.Unlock()

	// A direct call to the micro-gateway, with the client's own token.
	if c, _ := call("http://"+microAddr, "/orders/42", bearer); c != 401 {
		t.Errorf("direct call to the micro-gateway: %d", c)
	}
	// A direct call to the service, with and without the client's token.
	if c, _ := call(service.URL, "/orders/42", bearer); c != 401 {
		t.Errorf("direct call to the service: %d", c)
	}
	// The captured micro assertion: for another path, replayed as is.
	fwd := map[string]string{"X-Rampart-Assertion": captured, "X-Forwarded-Host": "127.0.0.1"}
	if c, _ := call(service.URL, "/orders/43", fwd); c != 401 {
		t.Errorf("assertion replayed for another path: %d", c)
	}
	if c, _ := call(service.URL, "/orders/42", fwd); c != 401 {
		t.Errorf("assertion replayed: %d", c)
	}
	// An edge assertion for another audience (the probe upstream) at the
	// micro-gateway.
	if c, _ := call("http://"+edgeAddr, "/probe/x", bearer); c != 200 {
		t.Fatalf("probe: %d", c)
	}
	probeAssertion := recorder.received()[0].Header.Get("X-Rampart-Assertion")
	if c, _ := call("http://"+microAddr, "/probe/x", map[string]string{"X-Rampart-Assertion": probeAssertion}); c != 401 && c != 404 {
		t.Errorf("edge assertion for another audience at the micro-gateway: %d", c)
	}
	if c, _ := call("http://"+microAddr, "/orders/x", map[string]string{"X-Rampart-Assertion": probeAssertion}); c != 401 {
		t.Errorf("edge assertion for another audience and path: %d", c)
	}
	// Expiry: a fresh micro assertion (1 s TTL) used after it expired.
	call("http://"+edgeAddr, "/orders/44", bearer)
	mu.Lock()
	fresh := seen[len(seen)-1]
	mu.Unlock()
	time.Sleep(2100 * time.Millisecond)
	reqs := len(seen)
	if c, _ := call(service.URL, "/orders/44", map[string]string{"X-Rampart-Assertion": fresh, "X-Forwarded-Host": "127.0.0.1"}); c != 401 {
		t.Errorf("expired assertion: %d", c)
	}
	if len(seen) != reqs {
		t.Error("service handler ran for a refused request")
	}
	if !strings.Contains(strings.Join(rejects, " "), "authn.") {
		t.Errorf("reject reasons: %v", rejects)
	}
}
