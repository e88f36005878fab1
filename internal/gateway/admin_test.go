package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

const adminToken = "admin-token-0123456789abcdef0123456789abcdef"

// adminGet fetches an admin endpoint with an optional bearer token.
func adminGet(t *testing.T, addr, path, token string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestAdminListener: probes answer without a token; /metrics needs the
// admin token (401 with a Bearer challenge otherwise, wrong tokens
// included); the metrics count requests by route, method and status class,
// refusals by stage and code, and reloads.
func TestAdminListener(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	up := newUpstream(t, nil)
	yaml := baseConfig(up.hostPort(), `  - {id: search, path: /search, upstream: svc, public: true, waf: {paranoia: 1}}
admin:
  address: 127.0.0.1:0
  token: ${env:RAMPART_ADMIN_TOKEN}
`)
	g, addr := startGateway(t, yaml)
	admin := g.AdminAddr().String()

	if code, _, body := adminGet(t, admin, "/healthz", ""); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, _, body := adminGet(t, admin, "/readyz", ""); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("readyz: %d %s", code, body)
	}
	for _, tok := range []string{"", "wrong", adminToken[:len(adminToken)-1], adminToken + "x"} {
		code, hdr, body := adminGet(t, admin, "/metrics", tok)
		if code != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") || strings.Contains(body, "rampart_") {
			t.Fatalf("metrics with token %q: %d %v", tok, code, hdr)
		}
	}
	if code, _, _ := adminGet(t, admin, "/debug/pprof/", adminToken); code != 404 {
		t.Fatalf("unknown admin path: %d", code)
	}
	// The data listeners do not serve admin endpoints.
	if c := statusLines(rawExchange(t, addr, "GET /metrics HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); strings.Join(c, "") != "404" {
		t.Fatalf("/metrics on the data listener: %v", c)
	}

	for i := 0; i < 3; i++ {
		rawExchange(t, addr, "GET /api/items HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	}
	rawExchange(t, addr, "POST /api/items HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	rawExchange(t, addr, "GET /search?q=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	cfg, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}

	code, _, body := adminGet(t, admin, "/metrics", adminToken)
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{
		`rampart_requests_total{method="GET",route="api",status_class="2xx"} 3`,
		`rampart_requests_total{method="POST",route="api",status_class="2xx"} 1`,
		`rampart_requests_total{method="GET",route="none",status_class="4xx"} 1`,
		`rampart_requests_total{method="GET",route="search",status_class="4xx"} 1`,
		`rampart_decisions_total{code="router.not_found",stage="router"} 1`,
		`rampart_decisions_total{code="waf.sqli",stage="waf"} 1`,
		`rampart_config_reloads_total{result="success"} 1`,
		`rampart_config_version 2`,
		`rampart_upstream_healthy{target="` + up.hostPort() + `",upstream="svc"} 1`,
		`rampart_request_duration_seconds_count{route="api"} 4`,
		`rampart_upstream_duration_seconds_count{route="api"} 4`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, path := range []string{"/dashboard/", "/api/v1/plan", "/api/v1/openapi.json"} {
		resp := rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+adminToken+"\r\nConnection: close\r\n\r\n")
		if strings.Contains(resp, `"hash"`) || strings.Contains(resp, "csrf-token") || strings.Contains(resp, "rotateAssertionKey") {
			t.Fatalf("%s on the data listener answers as the admin listener:\n%s", path, resp)
		}
	}
}

// TestMetricNames pins the metric names and label names (a golden list):
// dashboards and alerts depend on them. Regenerate with -update.
func TestMetricNames(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	up := newUpstream(t, nil)
	yaml := abuseConfig(up.hostPort(), "") + "admin: {address: 127.0.0.1:0, token: '${env:RAMPART_ADMIN_TOKEN}'}\n"
	g, addr := startGateway(t, yaml)
	rawExchange(t, addr, "GET /public/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	rawExchange(t, addr, "GET /nothing HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	cfg, _ := config.Parse([]byte(yaml), "test.yaml")
	_ = g.Reload(cfg)
	g.metrics.JWKSFailure("idp")
	families, err := g.metrics.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "rampart_") {
			continue
		}
		labels := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		var names []string
		for l := range labels {
			names = append(names, l)
		}
		sort.Strings(names)
		lines = append(lines, f.GetName()+" "+strings.ToLower(f.GetType().String())+" {"+strings.Join(names, ",")+"}")
	}
	sort.Strings(lines)
	got := strings.Join(lines, "\n") + "\n"
	path := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Fatalf("metric names changed (rerun with -update and document the change):\n%s", got)
	}
}

// TestReadyzRedisDown: with the shared store unreachable the gateway is
// not ready (503, the failing check named) while liveness stays 200.
func TestReadyzRedisDown(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	up := newUpstream(t, nil)
	g, _ := startGateway(t, baseConfig(up.hostPort(), `rate_limiting:
  redis: {addresses: ["127.0.0.1:1"]}
admin:
  address: 127.0.0.1:0
  token: ${env:RAMPART_ADMIN_TOKEN}
`))
	admin := g.AdminAddr().String()
	if code, _, body := adminGet(t, admin, "/readyz", ""); code != 503 || !strings.Contains(body, `"redis":"unreachable"`) {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if code, _, _ := adminGet(t, admin, "/healthz", ""); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
}

// TestAdminConfigErrors: the admin token must be a secret reference of at
// least 32 bytes, and a non-loopback address needs allow_remote.
func TestAdminConfigErrors(t *testing.T) {
	t.Setenv("SHORT_TOKEN", "short")
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	for name, c := range map[string]struct{ admin, want string }{
		"literal":  {"admin: {token: " + adminToken + "}\n", "admin.token: literal secret"},
		"short":    {"admin: {token: '${env:SHORT_TOKEN}'}\n", "admin.token: must be at least 32 bytes"},
		"remote":   {"admin: {address: 0.0.0.0:9901, token: '${env:RAMPART_ADMIN_TOKEN}'}\n", "admin.address"},
		"no token": {"admin: {address: 127.0.0.1:9901}\n", "admin.token"},
	} {
		_, err := config.Parse([]byte(baseConfig("127.0.0.1:9", c.admin)), "gw.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "gw.yaml:") {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	if _, err := config.Parse([]byte(baseConfig("127.0.0.1:9", "admin: {address: 0.0.0.0:9901, allow_remote: true, token: '${env:RAMPART_ADMIN_TOKEN}'}\n")), "gw.yaml"); err == nil || !strings.Contains(err.Error(), "admin.tls: a non-loopback admin listener needs tls") {
		t.Errorf("allow_remote without tls: %v", err)
	}
	tlsSection := "tls: {cert_file: ../../examples/tls/gateway.crt, key_file: ../../examples/tls/gateway.key}"
	cfg, err := config.Parse([]byte(baseConfig("127.0.0.1:9", "admin: {address: 0.0.0.0:9901, allow_remote: true, "+tlsSection+", token: '${env:RAMPART_ADMIN_TOKEN}'}\n")), "gw.yaml")
	if err != nil || len(cfg.Warnings) == 0 || !strings.Contains(cfg.Warnings[len(cfg.Warnings)-1].Error(), "admin.tls.client_ca_file") {
		t.Errorf("allow_remote with tls, without mTLS: %v %v", err, cfg)
	}
}

// TestGrafanaDashboard: the Grafana dashboard in docs/ is valid JSON and
// queries only metrics the gateway exports (the golden list).
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "metrics.golden"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, line := range strings.Split(string(golden), "\n") {
		if name, _, ok := strings.Cut(line, " "); ok {
			known[name] = true
		}
	}
	re := regexp.MustCompile(`rampart_[a-z_]+`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range re.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
				if !known[base] {
					t.Errorf("panel %q queries %s, which the gateway does not export", p.Title, m)
				}
				n++
			}
		}
	}
	if len(dash.Panels) < 8 || n < 10 {
		t.Fatalf("dashboard too small: %d panels, %d metric references", len(dash.Panels), n)
	}
}
