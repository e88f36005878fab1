package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/testredis"
)

// redisServer is a private redis-server for one test.
type redisServer = testredis.Server

// startRedis starts redis-server on addr ("" for a free port).
func startRedis(t *testing.T, addr string) *redisServer { return testredis.Start(t, addr) }

func redisLimitConfig(up, redisAddr, listen string) string {
	return fmt.Sprintf(`version: 1
listeners: [{name: public, address: "%s"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://%s"}]}]
rate_limiting:
  redis: {addresses: ["%s"], timeout: 200ms}
routes:
  - id: shared
    prefix: /shared
    upstream: svc
    public: true
    rate_limits:
      - {name: shared, key: [route], rate: 100, per: 1s, burst: 10}
  - id: open
    prefix: /open
    upstream: svc
    public: true
    rate_limits:
      - {name: open, key: [route], rate: 1, per: 1h, burst: 5, on_store_error: fail_open}
  - id: closed
    prefix: /closed
    upstream: svc
    public: true
    rate_limits:
      - {name: closed, key: [route], rate: 1, per: 1h, burst: 5, on_store_error: fail_closed}
`, listen, up, redisAddr)
}

// TestRedisSharedLimit: three instances sharing one Redis hold one limit
// within 2% over the window.
func TestRedisSharedLimit(t *testing.T) {
	rs := startRedis(t, "")
	up := newUpstream(t, nil)
	var addrs []string
	for i := 0; i < 3; i++ {
		_, a := startGateway(t, redisLimitConfig(up.hostPort(), rs.Addr, "127.0.0.1:0"))
		addrs = append(addrs, a)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var allowed, refused, other atomic.Int64
	var first, last atomic.Int64
	stop := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				resp, err := client.Get("http://" + addrs[w%3] + "/shared/x")
				if err != nil {
					other.Add(1)
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					now := time.Now().UnixNano()
					first.CompareAndSwap(0, now)
					last.Store(now)
					allowed.Add(1)
				case 429:
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if other.Load() != 0 {
		t.Fatalf("%d unexpected answers", other.Load())
	}
	window := time.Duration(last.Load() - first.Load())
	want := 10 + window.Seconds()*100
	got := float64(allowed.Load())
	if got < want*0.98-1 || got > want*1.02+1 {
		t.Fatalf("allowed %v over %v across 3 instances, want %.0f ± 2%% (refused %d)", got, window, want, refused.Load())
	}
	t.Logf("allowed %v, expected %.1f, refused %d", got, want, refused.Load())
}

// TestRedisOutageAndRestart: when Redis dies, fail_open limits fall back
// to the local store and fail_closed ones refuse with 503; when it
// returns, shared limiting resumes; counters survive a gateway restart.
func TestRedisOutageAndRestart(t *testing.T) {
	rs := startRedis(t, "")
	up := newUpstream(t, nil)
	cfgText := redisLimitConfig(up.hostPort(), rs.Addr, "127.0.0.1:0")
	cfg, err := config.Parse([]byte(cfgText), "r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessLog.Enabled = new(bool)
	g1, err := New(cfg, pipeline.Deps{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := g1.Start(); err != nil {
		t.Fatal(err)
	}
	a1 := g1.Addr("public").String()
	code := func(addr, path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; i < 5; i++ {
		if c := code(a1, "/open/x"); c != 200 {
			t.Fatalf("open %d: %d", i, c)
		}
	}
	if c := code(a1, "/open/x"); c != 429 {
		t.Fatalf("open over the limit: %d", c)
	}
	// Restart the gateway: the Redis counter is still exhausted.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	g1.Shutdown(ctx)
	cancel()
	_, a2 := startGateway(t, cfgText)
	if c := code(a2, "/open/x"); c != 429 {
		t.Fatalf("after a gateway restart: %d, want 429 (counter in Redis)", c)
	}
	// Kill Redis.
	rs.Stop()
	if c := code(a2, "/closed/x"); c != 503 {
		t.Fatalf("fail_closed with Redis down: %d, want 503", c)
	}
	opened := 0
	for i := 0; i < 8; i++ {
		if code(a2, "/open/x") == 200 {
			opened++
		}
	}
	if opened != 5 {
		t.Fatalf("fail_open with Redis down: %d allowed, want the local burst of 5", opened)
	}
	// Redis returns (empty: a fresh instance on the same port).
	startRedis(t, rs.Addr)
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		if code(a2, "/closed/x") == 200 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("shared limiting did not recover when Redis returned")
}

// TestQuotas: a daily quota per subject refuses with 429 quota.exceeded and
// Retry-After until the end of the UTC day; with Redis it is shared by
// instances and survives restarts.
func TestQuotas(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	cfg := func(redisLine string) string {
		return `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
authn:
  jwt:
    - ` + hsIssuer() + `
` + redisLine + `routes:
  - id: api
    prefix: /api
    upstream: svc
    auth: {jwt: [idp]}
    authorize: any_authenticated
    quotas: [{limit: 3, period: day}]
`
	}
	alice := hsToken(t, map[string]any{"sub": "alice"})
	bob := hsToken(t, map[string]any{"sub": "bob"})
	send := func(addr, tok string) string {
		resp := rawExchange(t, addr, "GET /api/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+tok+"\r\nConnection: close\r\n\r\n")
		c := statusLines(resp)
		if len(c) == 1 && c[0] == "429" {
			checkProblem(t, resp, "quota.exceeded")
			if !strings.Contains(resp, "Retry-After: ") {
				t.Error("no Retry-After")
			}
		}
		return strings.Join(c, ",")
	}
	_, local := startGateway(t, cfg(""))
	got := []string{send(local, alice), send(local, alice), send(local, alice), send(local, alice), send(local, bob)}
	if strings.Join(got, " ") != "200 200 200 429 200" {
		t.Fatalf("local quota: %v", got)
	}
	rs := startRedis(t, "")
	line := "rate_limiting:\n  redis: {addresses: [\"" + rs.Addr + "\"]}\n"
	_, a1 := startGateway(t, cfg(line))
	_, a2 := startGateway(t, cfg(line))
	got = []string{send(a1, alice), send(a2, alice), send(a1, alice), send(a2, alice)}
	if strings.Join(got, " ") != "200 200 200 429" {
		t.Fatalf("shared quota across two instances: %v", got)
	}
	_, a3 := startGateway(t, cfg(line)) // a "restarted" instance
	if c := send(a3, alice); c != "429" {
		t.Fatalf("quota after restart: %s", c)
	}
}

// startSentinel runs a Redis Sentinel watching master under the name
// "rampart" and returns its address.
func startSentinel(t *testing.T, master string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	mh, mp, _ := net.SplitHostPort(master)
	dir := t.TempDir()
	conf := dir + "/sentinel.conf"
	if err := os.WriteFile(conf, []byte("port "+port+"\nbind 127.0.0.1\ndir "+dir+"\nsentinel monitor rampart "+mh+" "+mp+" 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitDial(t, addr, "sentinel")
	return addr
}

// TestRedisSentinel: limits work through Sentinel (master_name), shared by
// two instances.
func TestRedisSentinel(t *testing.T) {
	rs := startRedis(t, "")
	sentinel := startSentinel(t, rs.Addr)
	up := newUpstream(t, nil)
	cfg := `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
rate_limiting:
  redis: {addresses: ["` + sentinel + `"], master_name: rampart, timeout: 500ms}
routes:
  - id: api
    prefix: /api
    upstream: svc
    public: true
    rate_limits: [{key: [route], rate: 1, per: 1h, burst: 3, on_store_error: fail_closed}]
`
	_, a1 := startGateway(t, cfg)
	_, a2 := startGateway(t, cfg)
	if got := statusesAt(t, "/api/x", a1, a2, a1, a2); strings.Join(got, " ") != "200 200 200 429" {
		t.Fatalf("through Sentinel: %v", got)
	}
}

// TestRedisCluster: limits and quotas work on a three-master Redis
// Cluster, shared by two instances.
func TestRedisCluster(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("RAMPART_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server not found")
		}
		t.Skip("redis-server not installed")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed")
	}
	var nodes []string
	for i := 0; i < 3; i++ {
		addr := freeAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		dir := t.TempDir()
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", dir,
			"--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		nodes = append(nodes, addr)
	}
	for _, n := range nodes {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if c, err := net.Dial("tcp", n); err == nil {
				c.Close()
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	args := append([]string{"--cluster", "create"}, nodes...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("cluster create: %v\n%s", err, out)
	}
	_, p0, _ := net.SplitHostPort(nodes[0])
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command(cli, "-p", p0, "cluster", "info").Output()
		if strings.Contains(string(out), "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	up := newUpstream(t, nil)
	cfg := `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
rate_limiting:
  redis: {addresses: ["` + strings.Join(nodes, `", "`) + `"], timeout: 500ms}
routes:
  - id: api
    prefix: /api
    upstream: svc
    public: true
    rate_limits: [{key: [route], rate: 1, per: 1h, burst: 3, on_store_error: fail_closed}]
  - id: per-ip
    prefix: /ip
    upstream: svc
    public: true
    rate_limits: [{key: [client_ip, route], rate: 1, per: 1h, burst: 2, on_store_error: fail_closed}]
`
	_, a1 := startGateway(t, cfg)
	_, a2 := startGateway(t, cfg)
	got := append(statusesAt(t, "/api/x", a1, a2, a1, a2), statusesAt(t, "/ip/x", a2, a1, a2)...)
	if strings.Join(got, " ") != "200 200 200 429 200 200 429" {
		t.Fatalf("through Cluster: %v", got)
	}
}

// waitDial waits up to 5 s until addr accepts connections.
func waitDial(t *testing.T, addr, what string) { testredis.WaitDial(t, addr, what) }

// TestReadinessAgreesWithRoutes: while Redis is down and for as long as
// limit checks stay paused after it comes back, /readyz reports not ready;
// whenever it reports ready, a fail_closed route answers (no 503). One
// source of truth: the store's own state.
func TestReadinessAgreesWithRoutes(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	rs := startRedis(t, "")
	up := newUpstream(t, nil)
	cfg := strings.Replace(redisLimitConfig(up.hostPort(), rs.Addr, "127.0.0.1:0"), "rate: 1, per: 1h, burst: 5, on_store_error: fail_closed", "rate: 1000, per: 1s, burst: 1000, on_store_error: fail_closed", 1) +
		"admin: {address: 127.0.0.1:0, token: '${env:RAMPART_ADMIN_TOKEN}'}\n"
	g, addr := startGateway(t, cfg)
	admin := g.AdminAddr().String()
	route := func() string {
		return strings.Join(statusLines(rawExchange(t, addr, "GET /closed/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")), "")
	}
	if c, _, body := adminGet(t, admin, "/readyz", ""); c != 200 || route() != "200" {
		t.Fatalf("before: readyz %d %s", c, body)
	}
	rs.Stop()
	for i := 0; i < 8; i++ {
		route() // failures open the store's circuit
	}
	if c, _, body := adminGet(t, admin, "/readyz", ""); c != 503 {
		t.Fatalf("Redis down: readyz %d %s", c, body)
	}
	startRedis(t, rs.Addr)
	deadline := time.Now().Add(6 * time.Second)
	ready := false
	for time.Now().Before(deadline) && !ready {
		c, _, _ := adminGet(t, admin, "/readyz", "")
		ready = c == 200
		if got := route(); ready && got != "200" {
			t.Fatalf("readyz said ready, the fail_closed route answered %s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ready {
		t.Fatal("never ready again after Redis came back")
	}
}

// TestNewReleasesOnFailure: a config that fails to compile after the
// Redis client, the abuse guard's subscription and the event stream
// were opened leaves none of them running.
func TestNewReleasesOnFailure(t *testing.T) {
	rs := startRedis(t, "")
	spec := filepath.Join(t.TempDir(), "spec.yaml")
	os.WriteFile(spec, []byte("not: an OpenAPI document\n"), 0o600)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://127.0.0.1:9"}]}]
rate_limiting:
  redis: {addresses: ["%s"]}
abuse: {}
routes:
  - {id: r, prefix: /, upstream: svc, public: true, openapi: {spec: %s}}
`, rs.Addr, spec)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessLog.Enabled = new(bool)
	before := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		if _, err := New(cfg, pipeline.Deps{}); err == nil {
			t.Fatal("a config with a broken OpenAPI document compiled")
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Fatalf("%d goroutines left running after 5 failed starts (%d before)", n, before)
	}
}
