package gateway

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/testpki"
)

// withListenerAccess inserts lines into the first listener's section.
func withListenerAccess(cfg, lines string) string {
	return strings.Replace(cfg, "    address: 127.0.0.1:0\n", "    address: 127.0.0.1:0\n"+lines, 1)
}

// TestAccessSpoofedForwarding: the listener's IP firewall judges the
// resolved client address. From an untrusted peer, X-Forwarded-For and
// Forwarded are ignored (an attacker cannot claim an allowed address);
// behind a trusted proxy the right-most untrusted address counts (an
// attacker cannot prepend one). Refused requests never reach the service.
func TestAccessSpoofedForwarding(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, withListenerAccess(baseConfig(up.hostPort(), ""), "    access: {allow: [203.0.113.0/24, 127.0.0.2]}\n"))
	for _, h := range []string{"X-Forwarded-For: 203.0.113.5\r\n", "Forwarded: for=203.0.113.5\r\n", "X-Real-IP: 203.0.113.5\r\n"} {
		resp := rawExchangeFrom(t, "127.0.0.1", addr, "GET /api/x HTTP/1.1\r\nHost: gw\r\n"+h+"Connection: close\r\n\r\n")
		if got := strings.Join(statusLines(resp), ""); got != "403" {
			t.Fatalf("untrusted peer with %q: %s", strings.TrimSpace(h), got)
		}
		checkProblem(t, resp, "access.ip_denied")
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("the service received %d refused requests", n)
	}
	if got := statusLines(rawExchangeFrom(t, "127.0.0.2", addr, "GET /api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); strings.Join(got, "") != "200" {
		t.Fatalf("allowed peer: %v", got)
	}

	up2 := newUpstream(t, nil)
	cfg := withListenerAccess(baseConfig(up2.hostPort(), ""), "    trusted_proxies: [127.0.0.1]\n    access: {deny: [203.0.113.66]}\n")
	_, addr2 := startGateway(t, cfg)
	for xff, want := range map[string]string{
		"203.0.113.66":               "403", // the proxy says so
		"203.0.113.67":               "200",
		"203.0.113.66, 198.51.100.1": "200", // the left entry is the client's own claim
		"198.51.100.1, 203.0.113.66": "403",
	} {
		resp := rawExchangeFrom(t, "127.0.0.1", addr2, "GET /api/x HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: "+xff+"\r\nConnection: close\r\n\r\n")
		if got := strings.Join(statusLines(resp), ""); got != want {
			t.Errorf("behind the trusted proxy, X-Forwarded-For %q: %s, want %s", xff, got, want)
		}
	}
}

// TestAccessRouteAndAdmin: a route's allow list (with a deny list file)
// refuses other clients on that route only; the admin listener's refuses
// its other peers on every endpoint, probes included. (Re-reading a
// changed list file is tested in internal/ipfilter.)
func TestAccessRouteAndAdmin(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	up := newUpstream(t, nil)
	dir := t.TempDir()
	feed := filepath.Join(dir, "feed.txt")
	os.WriteFile(feed, []byte("# empty feed\n"), 0o600)
	cfg := baseConfig(up.hostPort(), `  - id: internal
    prefix: /internal
    upstream: svc
    public: true
    access: {allow: [10.0.0.0/8], deny_files: [`+feed+`]}
admin: {address: 127.0.0.1:0, token: '${env:RAMPART_ADMIN_TOKEN}', access: {allow: [127.0.0.5]}}
`)
	g, addr := startGateway(t, cfg)
	if resp, _ := get(t, "http://"+addr+"/internal/x", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("route allow list: %d", resp.StatusCode)
	}
	if resp, _ := get(t, "http://"+addr+"/api/x", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("another route: %d", resp.StatusCode)
	}
	admin := g.AdminAddr().String()
	resp := rawExchangeFrom(t, "127.0.0.1", admin, "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if got := strings.Join(statusLines(resp), ""); got != "403" || !strings.Contains(resp, "access.ip_denied") || !strings.Contains(resp, `"request_id"`) {
		t.Fatalf("admin from a refused peer: %s", resp)
	}
	if got := statusLines(rawExchangeFrom(t, "127.0.0.5", admin, "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")); strings.Join(got, "") != "200" {
		t.Fatalf("admin from the allowed peer: %v", got)
	}
}

// TestAdminAPIBanAndReload: an operator bans a client through the admin
// API and the data listener refuses it at once; a viewer cannot; an
// admin's reload through the API is applied and names its principal.
func TestAdminAPIBanAndReload(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	t.Setenv("RAMPART_VIEWER_TOKEN", strings.Repeat("v", 40))
	t.Setenv("RAMPART_OPERATOR_TOKEN", strings.Repeat("o", 40))
	up := newUpstream(t, nil)
	cfgText := baseConfig(up.hostPort(), `abuse: {}
admin:
  address: 127.0.0.1:0
  token: '${env:RAMPART_ADMIN_TOKEN}'
  principals:
    - {name: grafana, token: '${env:RAMPART_VIEWER_TOKEN}', role: viewer}
    - {name: oncall, token: '${env:RAMPART_OPERATOR_TOKEN}', role: operator}
`)
	path := filepath.Join(t.TempDir(), "gw.yaml")
	os.WriteFile(path, []byte(cfgText), 0o600)
	g, addr := startGateway(t, cfgText)
	g.SetConfigFile(path)
	api := "http://" + g.AdminAddr().String() + "/api/v1"
	call := func(method, url, tok, body string) int {
		c, _ := adminCall(t, method, url, tok, body)
		return c
	}
	ban := `{"ip":"127.0.0.9","for":"5m"}`
	if c := call("POST", api+"/bans", strings.Repeat("v", 40), ban); c != http.StatusForbidden {
		t.Fatalf("a viewer's ban: %d", c)
	}
	if got := statusLines(rawExchangeFrom(t, "127.0.0.9", addr, "GET /api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); strings.Join(got, "") != "200" {
		t.Fatalf("before the ban: %v", got)
	}
	if c := call("POST", api+"/bans", strings.Repeat("o", 40), ban); c != http.StatusCreated {
		t.Fatalf("an operator's ban: %d", c)
	}
	if got := statusLines(rawExchangeFrom(t, "127.0.0.9", addr, "GET /api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); strings.Join(got, "") != "403" {
		t.Fatalf("after the ban: %v", got)
	}
	if c := call("DELETE", api+"/bans/127.0.0.9", strings.Repeat("o", 40), ""); c != http.StatusNoContent {
		t.Fatalf("lift: %d", c)
	}
	if c := call("POST", api+"/reload", strings.Repeat("o", 40), ""); c != http.StatusForbidden {
		t.Fatalf("an operator's reload: %d", c)
	}
	before := g.version.Load()
	if c := call("POST", api+"/reload", adminToken, ""); c != http.StatusNoContent || g.version.Load() != before+1 {
		t.Fatalf("an admin's reload: %d (version %d -> %d)", c, before, g.version.Load())
	}
	if tr := g.trigger.Load(); tr == nil || *tr != "api:admin" {
		t.Fatalf("reload trigger %v", tr)
	}
}

// TestAdminAPIKeys: an admin creates an API key through the API (shown
// once, stored encrypted, in effect at once), disables, enables and
// deletes it; the list never shows a key or its hash; a viewer cannot
// create one.
func TestAdminAPIKeys(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	t.Setenv("RAMPART_VIEWER_TOKEN", strings.Repeat("v", 40))
	t.Setenv("RAMPART_KEYS_SECRET", strings.Repeat("k", 40))
	t.Setenv("RAMPART_MASTER", strings.Repeat("ab", 32))
	dir := t.TempDir()
	up := newUpstream(t, nil)
	cfg := baseConfig(up.hostPort(), `  - id: partner
    prefix: /partner
    upstream: svc
    auth: {api_key: true}
    authorize: any_authenticated
authn:
  api_keys: {secret: '${env:RAMPART_KEYS_SECRET}', file: `+filepath.Join(dir, "keys.json")+`}
state: {master_key: '${env:RAMPART_MASTER}'}
admin:
  address: 127.0.0.1:0
  token: '${env:RAMPART_ADMIN_TOKEN}'
  principals: [{name: grafana, token: '${env:RAMPART_VIEWER_TOKEN}', role: viewer}]
`)
	g, addr := startGateway(t, cfg)
	api := "http://" + g.AdminAddr().String() + "/api/v1"
	call := func(method, url, tok, body string) (int, string) { return adminCall(t, method, url, tok, body) }
	if c, _ := call("POST", api+"/apikeys", strings.Repeat("v", 40), `{"consumer":"billing"}`); c != http.StatusForbidden {
		t.Fatalf("a viewer created a key: %d", c)
	}
	c, body := call("POST", api+"/apikeys", adminToken, `{"consumer":"billing","scopes":["reports:read"]}`)
	var created struct {
		Key     string
		Details struct{ Prefix string }
	}
	if json.Unmarshal([]byte(body), &created); c != http.StatusCreated || !strings.HasPrefix(created.Key, "rpk_") {
		t.Fatalf("create: %d %s", c, body)
	}
	use := func() int {
		resp, _ := get(t, "http://"+addr+"/partner/x", map[string]string{"X-Api-Key": created.Key})
		return resp.StatusCode
	}
	if c := use(); c != 200 {
		t.Fatalf("the new key at once: %d", c)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "keys.json"))
	if strings.Contains(string(raw), "billing") || strings.Contains(string(raw), created.Details.Prefix) {
		t.Fatal("the key store is readable on disk")
	}
	if c, list := call("GET", api+"/apikeys", strings.Repeat("v", 40), ""); c != 200 || !strings.Contains(list, created.Details.Prefix) ||
		strings.Contains(list, created.Key) || strings.Contains(list, `"hash"`) {
		t.Fatalf("list: %d %s", c, list)
	}
	key := api + "/apikeys/" + created.Details.Prefix
	for _, step := range []struct {
		method, body string
		want         int
	}{{"PATCH", `{"disabled":true}`, 401}, {"PATCH", `{"disabled":false}`, 200}, {"DELETE", "", 401}} {
		if c, b := call(step.method, key, adminToken, step.body); c != http.StatusNoContent {
			t.Fatalf("%s %s: %d %s", step.method, step.body, c, b)
		}
		if c := use(); c != step.want {
			t.Fatalf("after %s %s: %d, want %d", step.method, step.body, c, step.want)
		}
	}
	if c, _ := call("DELETE", key, adminToken, ""); c != http.StatusNotFound {
		t.Fatalf("deleting a deleted key: %d", c)
	}
}

// TestAdminAPIDrain: an operator drains an upstream's only target (new
// requests get 503, the plan shows it drained) and resumes it.
func TestAdminAPIDrain(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	up := newUpstream(t, nil)
	g, addr := startGateway(t, baseConfig(up.hostPort(), "admin: {address: 127.0.0.1:0, token: '${env:RAMPART_ADMIN_TOKEN}'}\n"))
	target := api(g) + "/upstreams/svc/targets/" + up.hostPort()
	patch := func(body string) int {
		c, _ := adminCall(t, "PATCH", target, adminToken, body)
		return c
	}
	if c := patch(`{"drained":true}`); c != http.StatusNoContent {
		t.Fatalf("drain: %d", c)
	}
	if resp, _ := get(t, "http://"+addr+"/api/x", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a drained target got a request: %d", resp.StatusCode)
	}
	if _, body := get(t, api(g)+"/plan", map[string]string{"Authorization": "Bearer " + adminToken}); !strings.Contains(body, `"drained":true`) {
		t.Fatalf("plan does not show the drain: %s", body)
	}
	if c := patch(`{"drained":false}`); c != http.StatusNoContent {
		t.Fatalf("resume: %d", c)
	}
	if resp, _ := get(t, "http://"+addr+"/api/x", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after resuming: %d", resp.StatusCode)
	}
	if c, _ := adminCall(t, "PATCH", api(g)+"/upstreams/nope/targets/x:1", adminToken, `{"drained":true}`); c != http.StatusNotFound {
		t.Fatalf("an unknown target: %d", c)
	}
}

// api is the admin API's base URL.
func api(g *Gateway) string { return "http://" + g.AdminAddr().String() + "/api/v1" }

// TestAdminMTLS: with tls and client_ca_file, the admin listener serves
// HTTPS and refuses a connection without a client certificate from those
// CAs, before any token is looked at.
func TestAdminMTLS(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	dir := t.TempDir()
	ca := testpki.NewCA(t, "admin-ca")
	certFile, keyFile := ca.Server(t, "127.0.0.1", "localhost").WriteFiles(t, dir, "admin")
	caFile := ca.WriteCA(t, dir, "ca")
	up := newUpstream(t, nil)
	g, _ := startGateway(t, baseConfig(up.hostPort(), "admin: {address: 127.0.0.1:0, token: '${env:RAMPART_ADMIN_TOKEN}', tls: {cert_file: "+
		certFile+", key_file: "+keyFile+", client_ca_file: "+caFile+"},\n"+
		"  principals: [{name: oncall, client_cert_san: operator-laptop, role: operator}]}\n"))
	url := "https://" + g.AdminAddr().String() + "/metrics"
	client := func(certs []tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: certs}}}
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if resp, err := client(nil).Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("no client certificate: %d", resp.StatusCode)
	}
	leaf := ca.Client(t, "operator-laptop")
	resp, err := client([]tls.Certificate{leaf.TLS}).Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("with a client certificate: %v", err)
	}
	resp.Body.Close()

	// The certificate is the principal oncall (operator) without any
	// token; another certificate from the same CA is no one.
	base := "https://" + g.AdminAddr().String() + "/api/v1"
	call := func(certs []tls.Certificate, method, path string) int {
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := client(certs).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := call([]tls.Certificate{leaf.TLS}, "GET", "/plan"); c != http.StatusOK {
		t.Fatalf("certificate principal reads the plan: %d", c)
	}
	if c := call([]tls.Certificate{leaf.TLS}, "POST", "/reload"); c != http.StatusForbidden {
		t.Fatalf("certificate principal (operator) reloads: %d", c)
	}
	if c := call([]tls.Certificate{ca.Client(t, "intern-laptop").TLS}, "GET", "/plan"); c != http.StatusUnauthorized {
		t.Fatalf("an unnamed certificate: %d", c)
	}
}

// adminCall sends a request to the admin API with a bearer token (and a
// JSON body when one is given) and returns the status and body.
func adminCall(t *testing.T, method, url, tok, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
