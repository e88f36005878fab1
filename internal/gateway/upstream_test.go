package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func upstreamConfig(targets []string, upstreamExtra, routeExtra string) string {
	var tb strings.Builder
	for _, t := range targets {
		fmt.Fprintf(&tb, "      - url: http://%s\n", t)
	}
	return `version: 1
listeners:
  - name: public
    address: 127.0.0.1:0
upstreams:
  - name: svc
    allow_plaintext: true
    targets:
` + tb.String() + upstreamExtra + `
routes:
  - id: r
    prefix: /
    upstream: svc
    public: true
` + routeExtra
}

func TestUnreachableUpstream(t *testing.T) {
	t.Parallel()
	_, addr := startGateway(t, upstreamConfig([]string{freeAddr(t)}, "", ""))
	resp := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	if c := statusLines(resp); len(c) != 1 || c[0] != "502" {
		t.Fatalf("codes %v:\n%s", c, resp)
	}
	checkProblem(t, resp, "upstream.unreachable")
}

func TestHangingUpstream(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	_, addr := startGateway(t, upstreamConfig([]string{up.hostPort()}, "", "    timeouts: {response: 300ms}\n"))
	start := time.Now()
	resp := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	if c := statusLines(resp); len(c) != 1 || c[0] != "504" {
		t.Fatalf("codes %v:\n%s", c, resp)
	}
	checkProblem(t, resp, "upstream.timeout")
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("took %v, want about the 300ms response timeout", d)
	}
}

// TestRetryIdempotentOnly: a GET whose first target refuses the connection
// is retried on the next target; a POST is never retried.
func TestRetryIdempotentOnly(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	dead := freeAddr(t)
	// Round robin starts at the first target: the dead one.
	_, addr := startGateway(t, upstreamConfig([]string{dead, up.hostPort()}, "    passive: {enabled: false}\n", ""))
	okGets := 0
	for i := 0; i < 6; i++ {
		resp, _ := get(t, "http://"+addr+"/x", nil)
		if resp.StatusCode == 200 {
			okGets++
		}
	}
	if okGets != 6 {
		t.Errorf("%d/6 GETs succeeded; connect failures should be retried on the live target", okGets)
	}
	fails := 0
	for i := 0; i < 6; i++ {
		resp, err := http.Post("http://"+addr+"/x", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 502 {
			fails++
		}
	}
	if fails == 0 {
		t.Errorf("no POST failed: POSTs must not be retried")
	}
	for _, r := range up.received() {
		if r.Method == "POST" && r.Body != "body" {
			t.Errorf("POST arrived with body %q", r.Body)
		}
	}
}

// TestRetryOn503 retries a 503 from one target on another when asked to.
func TestRetryOn503(t *testing.T) {
	t.Parallel()
	bad := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	good := newUpstream(t, nil)
	_, addr := startGateway(t, upstreamConfig([]string{bad.hostPort(), good.hostPort()}, "    passive: {enabled: false}\n", "    retries: {attempts: 2, on: [503]}\n"))
	for i := 0; i < 4; i++ {
		if resp, _ := get(t, "http://"+addr+"/x", nil); resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
}

func TestRoundRobinWeighted(t *testing.T) {
	t.Parallel()
	var a, b atomic.Int32
	ua := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { a.Add(1) })
	ub := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { b.Add(1) })
	cfg := `version: 1
listeners:
  - name: public
    address: 127.0.0.1:0
upstreams:
  - name: svc
    allow_plaintext: true
    targets:
      - url: http://` + ua.hostPort() + `
        weight: 3
      - url: http://` + ub.hostPort() + `
routes:
  - id: r
    prefix: /
    upstream: svc
    public: true
`
	_, addr := startGateway(t, cfg)
	for i := 0; i < 40; i++ {
		get(t, "http://"+addr+"/x", nil)
	}
	if a.Load() != 30 || b.Load() != 10 {
		t.Errorf("weights 3:1 gave %d:%d over 40 requests", a.Load(), b.Load())
	}
}

func TestConsistentHashSticky(t *testing.T) {
	t.Parallel()
	var hits [3]atomic.Int32
	var targets []string
	for i := range hits {
		u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { hits[i].Add(1) })
		targets = append(targets, u.hostPort())
	}
	_, addr := startGateway(t, upstreamConfig(targets, "    balance: consistent_hash\n    hash_on: header:X-Tenant\n", ""))
	for i := 0; i < 10; i++ {
		get(t, "http://"+addr+"/x", map[string]string{"X-Tenant": "acme"})
	}
	busy := 0
	for i := range hits {
		if n := hits[i].Load(); n == 10 {
			busy++
		} else if n != 0 {
			t.Errorf("target %d got %d requests of one tenant", i, n)
		}
	}
	if busy != 1 {
		t.Errorf("one tenant spread over targets: %v %v %v", hits[0].Load(), hits[1].Load(), hits[2].Load())
	}
}

// TestLeastRequests sends new requests away from a target busy with slow
// ones.
func TestLeastRequests(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	var slowHits, fastHits atomic.Int32
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		slowHits.Add(1)
		<-block
	})
	fast := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { fastHits.Add(1) })
	_, addr := startGateway(t, upstreamConfig([]string{slow.hostPort(), fast.hostPort()}, "    balance: least_requests\n", ""))
	// Occupy the slow target with one request; least_requests then sends
	// every further sequential request to the idle target. (Two idle
	// targets tie, and the power of two choices may pick the fast one
	// many times running: keep trying, boundedly.)
	go func() {
		for i := 0; i < 200 && slowHits.Load() == 0; i++ {
			resp, err := http.Get("http://" + addr + "/x")
			if err == nil {
				resp.Body.Close()
			}
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	for slowHits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if slowHits.Load() == 0 {
		t.Fatal("slow target never got a request")
	}
	before := slowHits.Load()
	for i := 0; i < 20; i++ {
		get(t, "http://"+addr+"/x", nil)
	}
	close(block)
	if slowHits.Load() != before {
		t.Errorf("busy target got %d more requests", slowHits.Load()-before)
	}
}

func TestActiveHealthCheck(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	var servedSick atomic.Int32
	sick := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if !healthy.Load() {
				w.WriteHeader(500)
			}
			return
		}
		servedSick.Add(1)
	})
	good := newUpstream(t, nil)
	hc := "    health_check: {path: /healthz, interval: 50ms, timeout: 40ms, unhealthy_threshold: 1, healthy_threshold: 1}\n"
	_, addr := startGateway(t, upstreamConfig([]string{sick.hostPort(), good.hostPort()}, hc, ""))
	time.Sleep(200 * time.Millisecond)
	for i := 0; i < 10; i++ {
		if resp, _ := get(t, "http://"+addr+"/x", nil); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := servedSick.Load(); n != 0 {
		t.Fatalf("unhealthy target served %d requests", n)
	}
	healthy.Store(true)
	deadline := time.Now().Add(3 * time.Second)
	for servedSick.Load() == 0 && time.Now().Before(deadline) {
		get(t, "http://"+addr+"/x", nil)
		time.Sleep(10 * time.Millisecond)
	}
	if servedSick.Load() == 0 {
		t.Fatal("recovered target never came back")
	}
}

func TestPassiveEjection(t *testing.T) {
	t.Parallel()
	var badHits atomic.Int32
	bad := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { badHits.Add(1); w.WriteHeader(502) })
	good := newUpstream(t, nil)
	_, addr := startGateway(t, upstreamConfig([]string{bad.hostPort(), good.hostPort()}, "    passive: {consecutive_failures: 2, eject_for: 1m}\n", "    retries: {attempts: 1}\n"))
	for i := 0; i < 20; i++ {
		get(t, "http://"+addr+"/x", nil)
	}
	if n := badHits.Load(); n != 2 {
		t.Errorf("failing target got %d requests, want 2 before ejection", n)
	}
}

func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	var fail atomic.Bool
	fail.Store(true)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if fail.Load() {
			w.WriteHeader(503)
		}
	})
	_, addr := startGateway(t, upstreamConfig([]string{up.hostPort()},
		"    passive: {enabled: false}\n    circuit_breaker: {consecutive_failures: 3, open_for: 300ms}\n", "    retries: {attempts: 1}\n"))
	for i := 0; i < 3; i++ {
		get(t, "http://"+addr+"/x", nil)
	}
	resp := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	if c := statusLines(resp); len(c) != 1 || c[0] != "503" {
		t.Fatalf("open breaker: %v", c)
	}
	checkProblem(t, resp, "upstream.circuit_open")
	if n := hits.Load(); n != 3 {
		t.Fatalf("upstream got %d requests, want 3 (none while open)", n)
	}
	fail.Store(false)
	time.Sleep(350 * time.Millisecond)
	if resp, _ := get(t, "http://"+addr+"/x", nil); resp.StatusCode != 200 {
		t.Fatalf("half-open probe: %d", resp.StatusCode)
	}
	if resp, _ := get(t, "http://"+addr+"/x", nil); resp.StatusCode != 200 {
		t.Fatalf("closed again: %d", resp.StatusCode)
	}
}

// TestWebSocketPassThrough: a WebSocket upgrade is forwarded and bytes
// flow both ways after 101.
func TestWebSocketPassThrough(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			w.WriteHeader(400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		fmt.Fprint(brw, "echo:"+line)
		brw.Flush()
	})
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /api/ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	fmt.Fprint(c, "ping\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo:ping\n" {
		t.Fatalf("got %q, %v", line, err)
	}
}

// TestStreamingNotBuffered: a chunked response reaches the client piece by
// piece, not after the upstream finishes.
func TestStreamingNotBuffered(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		<-next
		fmt.Fprint(w, "data: two\n\n")
	})
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	resp, err := http.Get("http://" + addr + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	done := make(chan string, 1)
	go func() {
		l, _ := br.ReadString('\n')
		done <- l
	}()
	select {
	case l := <-done:
		if l != "data: one\n" {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("first event buffered by the gateway")
	}
	close(next)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: two") {
		t.Fatalf("rest %q", rest)
	}
}

// TestClientCancelDoesNotEject: clients that hang up mid-request are not
// upstream failures; they must not eject a target or open the breaker.
func TestClientCancelDoesNotEject(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	})
	_, addr := startGateway(t, upstreamConfig([]string{up.hostPort()},
		"    passive: {consecutive_failures: 2, eject_for: 1m}\n    circuit_breaker: {consecutive_failures: 2, open_for: 1m}\n", ""))
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "GET /slow HTTP/1.1\r\nHost: gw\r\n\r\n")
		time.Sleep(50 * time.Millisecond)
		c.Close()
	}
	time.Sleep(50 * time.Millisecond)
	if resp, _ := get(t, "http://"+addr+"/fast", nil); resp.StatusCode != 200 {
		t.Fatalf("after client cancellations: status %d, want 200", resp.StatusCode)
	}
}

// TestUpstreamMaxInFlight: beyond the upstream's max_in_flight, 503
// upstream.overloaded without contacting it.
func TestUpstreamMaxInFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	var hits atomic.Int32
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		started <- struct{}{}
		<-release
	})
	_, addr := startGateway(t, upstreamConfig([]string{up.hostPort()}, "    max_in_flight: 1\n", ""))
	go func() {
		if resp, err := http.Get("http://" + addr + "/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	resp := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	if c := statusLines(resp); len(c) != 1 || c[0] != "503" {
		t.Fatalf("%v", c)
	}
	checkProblem(t, resp, "upstream.overloaded")
	close(release)
	if hits.Load() != 1 {
		t.Fatalf("upstream contacted %d times", hits.Load())
	}
}
