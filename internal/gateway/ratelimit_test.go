package gateway

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

func limitConfig(up, extra string) string {
	return `version: 1
listeners:
  - name: public
    address: 127.0.0.1:0
    trusted_proxies: [127.0.0.2]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up + `"}]}]
routes:
  - id: api
    prefix: /api
    upstream: svc
    public: true
    rate_limits:
      - {name: burst, rate: 1, per: 1h, burst: 3}
` + extra
}

// TestRateLimitBuckets: spoofed forwarding headers from an untrusted peer
// and path or method variants never give a fresh bucket; refusals are 429
// with Retry-After and RateLimit headers and never reach the upstream; a
// reload keeps the counters.
func TestRateLimitBuckets(t *testing.T) {
	up := newUpstream(t, nil)
	g, addr := startGateway(t, limitConfig(up.hostPort(), ""))
	variants := []string{
		"GET /api/a HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 1.1.1.1\r\n",
		"GET /api//a HTTP/1.1\r\nHost: gw\r\nX-Real-IP: 2.2.2.2\r\nForwarded: for=3.3.3.3\r\n",
		"GET /api/%61/ HTTP/1.1\r\nHost: gw\r\nTrue-Client-IP: 4.4.4.4\r\nX-Client-IP: 5.5.5.5\r\n",
		"POST /api/a HTTP/1.1\r\nHost: gw\r\nX-HTTP-Method-Override: GET\r\nX-Forwarded-For: 6.6.6.6\r\nContent-Length: 0\r\n",
		"GET /api/./b HTTP/1.1\r\nHost: GW\r\nX-Forwarded-For: 7.7.7.7\r\n",
	}
	var codes []string
	var last string
	for _, v := range variants {
		last = rawExchange(t, addr, v+"Connection: close\r\n\r\n")
		codes = append(codes, statusLines(last)...)
	}
	if strings.Join(codes, ",") != "200,200,200,429,429" {
		t.Fatalf("codes %v, want three allowed then 429", codes)
	}
	checkProblem(t, last, "ratelimit.exceeded")
	for _, h := range []string{"Retry-After: ", "Ratelimit-Policy: \"burst\";q=3;w=3600", "Ratelimit: \"burst\";r=0"} {
		if !strings.Contains(last, h) {
			t.Errorf("429 lacks %q:\n%s", h, last)
		}
	}
	if n := len(up.received()); n != 3 {
		t.Fatalf("upstream received %d requests, want 3", n)
	}
	// A reload (here, adding a route) keeps the exhausted bucket.
	cfg, err := config.Parse([]byte(limitConfig(up.hostPort(), "  - {id: other, path: /other, upstream: svc, public: true}\n")), "r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listeners[0].Address = "127.0.0.1:0"
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if c := statusLines(rawExchange(t, addr, "GET /api/z HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); len(c) != 1 || c[0] != "429" {
		t.Fatalf("after reload: %v, want 429 (counters kept)", c)
	}
}

// TestRateLimitPerIdentity: subject-keyed limits give each caller their own
// bucket, whatever IP they come from.
func TestRateLimitPerIdentity(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	cfg := `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
authn:
  jwt:
    - ` + hsIssuer("tier") + `
routes:
  - id: api
    prefix: /api
    upstream: svc
    auth: {jwt: [idp]}
    authorize: any_authenticated
    rate_limits:
      - {name: per-user, key: [subject], rate: 1, per: 1h, burst: 2}
`
	_, addr := startGateway(t, cfg)
	alice := hsToken(t, map[string]any{"sub": "alice"})
	bob := hsToken(t, map[string]any{"sub": "bob"})
	// A "premium" header is just a header: it cannot pick a tier or a key.
	send := func(tok string) string {
		c := statusLines(rawExchange(t, addr, "GET /api/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+tok+"\r\nX-Plan: premium\r\nConnection: close\r\n\r\n"))
		return strings.Join(c, ",")
	}
	got := []string{send(alice), send(alice), send(alice), send(bob), send(bob), send(bob)}
	if strings.Join(got, " ") != "200 200 429 200 200 429" {
		t.Fatalf("per-subject buckets: %v", got)
	}
}

// TestConcurrencyLimit: max_in_flight refuses requests beyond the bound.
func TestConcurrencyLimit(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	})
	cfg := strings.Replace(limitConfig(up.hostPort(), ""), "    rate_limits:\n      - {name: burst, rate: 1, per: 1h, burst: 3}\n", "    max_in_flight: 2\n", 1)
	_, addr := startGateway(t, cfg)
	done := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() {
			resp, err := http.Get("http://" + addr + "/api/slow")
			if err == nil {
				resp.Body.Close()
				done <- resp.StatusCode
			}
		}()
	}
	<-started
	<-started
	if c := statusLines(rawExchange(t, addr, "GET /api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); len(c) != 1 || c[0] != "429" {
		t.Fatalf("third concurrent request: %v", c)
	}
	close(release)
	<-done
	<-done
}

// TestConnectionsPerIP: a peer beyond max_connections_per_ip is closed at
// once; others are unaffected.
func TestConnectionsPerIP(t *testing.T) {
	up := newUpstream(t, nil)
	cfg := strings.Replace(limitConfig(up.hostPort(), ""), "    trusted_proxies: [127.0.0.2]\n", "    limits: {max_connections_per_ip: 2}\n", 1)
	_, addr := startGateway(t, cfg)
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	time.Sleep(50 * time.Millisecond)
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	third.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(third, "GET /api/x HTTP/1.1\r\nHost: gw\r\n\r\n")
	b := make([]byte, 16)
	if n, err := third.Read(b); err == nil {
		t.Fatalf("third connection from one IP served: %q", b[:n])
	}
	held[0].Close()
	time.Sleep(100 * time.Millisecond)
	resp := rawExchange(t, addr, "GET /api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	if c := statusLines(resp); len(c) != 1 || c[0] != "200" {
		t.Fatalf("after one closed: %v", c)
	}
}

// TestRateLimitTrustedProxyChain: behind a trusted proxy, each real client
// (right-most untrusted X-Forwarded-For or Forwarded entry) has its own
// bucket, and rotating the left part of the chain changes nothing.
func TestRateLimitTrustedProxyChain(t *testing.T) {
	up := newUpstream(t, nil)
	cfg := strings.Replace(limitConfig(up.hostPort(), ""), "trusted_proxies: [127.0.0.2]", "trusted_proxies: [127.0.0.1]", 1)
	_, addr := startGateway(t, cfg)
	send := func(hdr string) string {
		return strings.Join(statusLines(rawExchange(t, addr, "GET /api/x HTTP/1.1\r\nHost: gw\r\n"+hdr+"Connection: close\r\n\r\n")), "")
	}
	var a []string
	for i := 0; i < 4; i++ {
		// The attacker rotates what it controls: the left of the chain.
		a = append(a, send("X-Forwarded-For: 10.9.9."+string(rune('1'+i))+", 198.51.100.7\r\n"))
	}
	if strings.Join(a, " ") != "200 200 200 429" {
		t.Fatalf("one client behind the proxy: %v", a)
	}
	if c := send("X-Forwarded-For: 198.51.100.8\r\n"); c != "200" {
		t.Fatalf("another client: %s", c)
	}
	if c := send("Forwarded: for=198.51.100.7\r\n"); c != "429" {
		t.Fatalf("same client via Forwarded: %s", c)
	}
}

// TestRateLimitTiers: the tier comes from a verified claim only; a request
// header naming a better plan changes nothing.
func TestRateLimitTiers(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	cfg := `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
authn:
  jwt:
    - ` + hsIssuer("plan") + `
routes:
  - id: api
    prefix: /api
    upstream: svc
    auth: {jwt: [idp]}
    authorize: any_authenticated
    rate_limits:
      - name: per-user
        key: [subject]
        rate: 1
        per: 1h
        burst: 1
        tier_claim: plan
        tiers: {premium: {rate: 1, per: 1h, burst: 3}}
`
	_, addr := startGateway(t, cfg)
	send := func(tok string) string {
		return strings.Join(statusLines(rawExchange(t, addr, "GET /api/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+tok+"\r\nX-Plan: premium\r\nConnection: close\r\n\r\n")), "")
	}
	free := hsToken(t, map[string]any{"sub": "fred", "plan": "free"})
	premium := hsToken(t, map[string]any{"sub": "pat", "plan": "premium"})
	got := []string{send(free), send(free), send(premium), send(premium), send(premium), send(premium)}
	if strings.Join(got, " ") != "200 429 200 200 200 429" {
		t.Fatalf("tiers: %v", got)
	}
}
