package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSmugglingShapes sends request-smuggling shapes over raw TCP. Each must
// get a 400 problem response, the connection must close, and the upstream
// must receive nothing at all.
func TestSmugglingShapes(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	cases := []struct {
		name string
		raw  string
	}{
		{"CL.TE", "POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"TE.CL", "POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\nZ\r\n0\r\n\r\n"},
		{"CL.TE smuggling a second request", "POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 41\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/admin HTTP/1.1\r\nHost: gw\r\n\r\n"},
		{"duplicate Content-Length, same value", "POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nZ"},
		{"duplicate Content-Length, different", "POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nZZ"},
		{"obs-fold", "GET /api/x HTTP/1.1\r\nHost: gw\r\nX-A: a\r\n b\r\n\r\n"},
		{"obs-fold Transfer-Encoding", "POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"},
		{"bare LF line endings", "GET /api/x HTTP/1.1\nHost: gw\n\n"},
		{"bare LF in one header", "GET /api/x HTTP/1.1\r\nHost: gw\nX-A: b\r\n\r\n"},
		{"bare LF in chunk size", "POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n1\nZ\r\n0\r\n\r\n"},
		{"TE on HTTP/1.0", "POST /api/x HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\nZ"},
		{"TE on HTTP/1.0 alone", "POST /api/x HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"TE gzip, chunked", "POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		{"two TE headers", "POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n"},
		{"space before colon", "POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
		{"CL plus sign", "POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: +1\r\n\r\nZ"},
		{"chunk size 0x", "POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\nZ\r\n0\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(up.received())
			resp := rawExchange(t, addr, tc.raw)
			codes := statusLines(resp)
			if len(codes) != 1 || (codes[0] != "400" && codes[0] != "501") {
				t.Fatalf("got responses %v, want exactly one 400 (or Go's 501) and a closed connection:\n%s", codes, resp)
			}
			if after := len(up.received()); after != before {
				t.Fatalf("upstream received %d request(s): %+v", after-before, up.received()[before:])
			}
		})
	}
}

// TestPipelinedSmugglingAfterGoodRequest: a clean request followed, on the
// same connection, by a CL.TE request. The first is served, the second
// refused, the connection closed, and the smuggled request never forwarded.
func TestPipelinedSmugglingAfterGoodRequest(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	raw := "GET /api/first HTTP/1.1\r\nHost: gw\r\n\r\n" +
		"POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n"
	resp := rawExchange(t, addr, raw)
	if codes := statusLines(resp); strings.Join(codes, ",") != "200,400" {
		t.Fatalf("codes %v, want 200,400:\n%s", codes, resp)
	}
	got := up.received()
	if len(got) != 1 || got[0].URI != "/api/first" {
		t.Fatalf("upstream received %+v, want only /api/first", got)
	}
}

// TestPipelinedCleanRequests: pipelining itself is fine, served in order.
func TestPipelinedCleanRequests(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	raw := "POST /api/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc" +
		"POST /api/b HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nxyz\r\n0\r\nX-Trailer: t\r\n\r\n" +
		"GET /api/c HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
	resp := rawExchange(t, addr, raw)
	if codes := statusLines(resp); strings.Join(codes, ",") != "200,200,200" {
		t.Fatalf("codes %v:\n%s", codes, resp)
	}
	got := up.received()
	if len(got) != 3 || got[0].URI != "/api/a" || got[0].Body != "abc" || got[1].URI != "/api/b" || got[1].Body != "xyz" || got[2].URI != "/api/c" {
		t.Fatalf("upstream received %+v", got)
	}
}

// TestPathAttacks is the traversal and encoding corpus end to end. The
// upstream must receive either nothing or exactly the canonical path.
func TestPathAttacks(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	cases := []struct {
		target string
		status string
		code   string
		fwd    string // path the upstream must see; "" = nothing
	}{
		{"/public/../api/x", "200", "", "/api/x"},
		{"/public/./x", "200", "", "/public/x"},
		{"/a/../../x", "400", "request.bad_path", ""},
		{"/../etc/passwd", "400", "request.bad_path", ""},
		{"/public/%2e%2e/admin", "400", "request.bad_path", ""},
		{"/public/%2E%2E/admin", "400", "request.bad_path", ""},
		{"/public/.%2e/admin", "400", "request.bad_path", ""},
		{"/public/%252e%252e/admin", "200", "", "/public/%252e%252e/admin"},
		{"/admin%2fx", "400", "request.bad_path", ""},
		{"/public%2f..%2fadmin", "400", "request.bad_path", ""},
		{"/public%5c..%5cadmin", "400", "request.bad_path", ""},
		{"//admin", "404", "router.not_found", ""},
		{"//api//x", "200", "", "/api/x"},
		{"/public//../admin", "404", "router.not_found", ""},
		{"/public\\..\\admin", "400", "request.bad_path", ""},
		{"/api/x;jsessionid=1", "400", "request.bad_path", ""},
		{"/public/..;/admin", "400", "request.bad_path", ""},
		{"/public/#/../admin", "400", "request.bad_path", ""},
		{"/api/x%00", "400", "request.bad_path", ""},
		{"/api/x%0d%0aX-Injected:%201", "400", "request.bad_path", ""},
		{"/API/x", "404", "router.not_found", ""},
		{"/%EF%BC%8Fapi/x", "404", "router.not_found", ""},
		{"/public/%ff", "400", "request.bad_path", ""},
		{"/public/%c0%ae%c0%ae/", "400", "request.bad_path", ""},
		{"/api/%41%42", "200", "", "/api/AB"},
		{"/api/x?q=1;r=2", "400", "request.bad_query", ""},
		{"/api/x?q=%zz", "400", "request.bad_query", ""},
		{"/api/x?q=1&r=%20", "200", "", "/api/x?q=1&r=%20"},
		{"*", "400", "request.bad_path", ""},
		{"http://gw/api/abs", "200", "", "/api/abs"},
	}
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			before := len(up.received())
			resp := rawExchange(t, addr, "GET "+tc.target+" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
			codes := statusLines(resp)
			if len(codes) != 1 || codes[0] != tc.status {
				t.Fatalf("status %v, want %s:\n%s", codes, tc.status, resp)
			}
			if tc.code != "" {
				checkProblem(t, resp, tc.code)
			}
			got := up.received()[before:]
			switch {
			case tc.fwd == "" && len(got) != 0:
				t.Fatalf("upstream received %q, want nothing", got[0].URI)
			case tc.fwd != "" && (len(got) != 1 || got[0].URI != tc.fwd):
				t.Fatalf("upstream received %+v, want %q", got, tc.fwd)
			}
		})
	}
}

// checkProblem asserts an RFC 9457 body with the code and a request id, and
// no internal detail.
func checkProblem(t *testing.T, raw, code string) {
	t.Helper()
	head, body, ok := strings.Cut(raw, "\r\n\r\n")
	if !ok {
		t.Fatalf("no body in %q", raw)
	}
	if !strings.Contains(head, "Content-Type: application/problem+json") {
		t.Fatalf("not problem+json:\n%s", head)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if m["code"] != code {
		t.Fatalf("code %v, want %s (%s)", m["code"], code, body)
	}
	if id, _ := m["request_id"].(string); id == "" {
		t.Fatalf("no request_id in %s", body)
	}
	if m["type"] != "about:blank" || m["title"] == "" || m["status"] == nil {
		t.Fatalf("not an RFC 9457 document: %s", body)
	}
	for _, leak := range []string{"127.0.0.1", "dial", "goroutine", ".go:", "panic"} {
		if strings.Contains(body, leak) {
			t.Fatalf("problem body leaks %q: %s", leak, body)
		}
	}
}

// TestSlowloris: headers trickled slower than ReadHeaderTimeout get the
// connection cut, and nothing reaches the upstream.
func TestSlowloris(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	cfg := strings.Replace(baseConfig(up.hostPort(), ""), "read_header_timeout: 2s", "read_header_timeout: 300ms", 1)
	_, addr := startGateway(t, cfg)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprint(c, "GET /api/x HTTP/1.1\r\nHost: gw\r\n")
	var closedAt time.Duration
	for i := 0; i < 40; i++ {
		time.Sleep(50 * time.Millisecond)
		if _, err := fmt.Fprintf(c, "X-Slow-%d: a\r\n", i); err != nil {
			closedAt = time.Since(start)
			break
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil && !isTimeout(err) {
			closedAt = time.Since(start)
			break
		}
	}
	if closedAt == 0 {
		t.Fatal("connection still open after 2 s of trickled headers")
	}
	if closedAt > 1500*time.Millisecond {
		t.Errorf("cut after %v, want about the 300ms ReadHeaderTimeout", closedAt)
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("upstream received %d requests", n)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestOversize covers 431 for headers and 413 for bodies with and without
// Content-Length.
func TestOversize(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	big := strings.Repeat("a", 70<<10)
	body2k := strings.Repeat("b", 2048)
	var chunked strings.Builder
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&chunked, "200\r\n%s\r\n", strings.Repeat("c", 512))
	}
	chunked.WriteString("0\r\n\r\n")
	cases := []struct {
		name, raw, status string
	}{
		{"header over 64KiB", "GET /api/x HTTP/1.1\r\nHost: gw\r\nX-Big: " + big + "\r\n\r\n", "431"},
		{"body over limit with Content-Length", "POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 2048\r\n\r\n" + body2k, "413"},
		{"Content-Length over limit, 100-continue", "POST /api/x HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 999999\r\n\r\n", "413"},
		{"chunked body over limit", "POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked.String(), "413"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := up.completeCount()
			resp := rawExchange(t, addr, tc.raw)
			codes := statusLines(resp)
			if len(codes) == 0 || codes[len(codes)-1] != tc.status || strings.Contains(resp, "100 Continue") {
				t.Fatalf("codes %v, want %s (and no 100 Continue):\n%.300s", codes, tc.status, resp)
			}
			if after := up.completeCount(); after != before {
				t.Fatalf("upstream received %d complete request(s)", after-before)
			}
		})
	}
}

// TestBrokenClientBody: a body whose chunk encoding breaks mid-stream is
// the client's fault: 400, not 502.
func TestBrokenClientBody(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	raw := "POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
	resp := rawExchange(t, addr, raw)
	codes := statusLines(resp)
	if len(codes) != 1 || codes[0] != "400" {
		t.Fatalf("codes %v, want 400:\n%s", codes, resp)
	}
	if up.completeCount() != 0 {
		t.Fatal("upstream received a complete request")
	}
}

// TestH2CUpgradeDropped: "Upgrade: h2c" must never reach the upstream
// (it would let traffic switch to HTTP/2 behind the gateway's back).
func TestH2CUpgradeDropped(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	raw := "GET /api/x HTTP/1.1\r\nHost: gw\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n"
	resp := rawExchange(t, addr, raw)
	if codes := statusLines(resp); len(codes) != 1 || codes[0] != "200" {
		t.Fatalf("codes %v:\n%s", codes, resp)
	}
	got := up.received()
	if len(got) != 1 {
		t.Fatalf("upstream got %d requests", len(got))
	}
	for _, h := range []string{"Upgrade", "Http2-Settings", "Connection"} {
		if v, ok := got[0].Header[h]; ok {
			t.Errorf("upstream received %s: %v", h, v)
		}
	}
	if !strings.Contains(resp, "Connection: close") {
		t.Errorf("answer to an upgrade request that did not switch must close the connection:\n%s", resp)
	}
}

// TestSpoofedForwardingHeaders: every client-forged forwarding header is
// replaced by the gateway's own, in every spelling.
func TestSpoofedForwardingHeaders(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	raw := "GET /api/x HTTP/1.1\r\nHost: gw\r\n" +
		"X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX_Forwarded_For: 6.6.6.6\r\n" +
		"X-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nX-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\n" +
		"True-Client-IP: 6.6.6.6\r\nX-Client-IP: 6.6.6.6\r\nX-HTTP-Method-Override: DELETE\r\nX_HTTP_Method_Override: DELETE\r\n" +
		"X-Request-ID: forged-id\r\nCF-Connecting-IP: 6.6.6.6\r\nX-Envoy-External-Address: 6.6.6.6\r\n" +
		"Connection: close, X-Request-ID, X-Forwarded-For\r\n\r\n"
	resp := rawExchange(t, addr, raw)
	if codes := statusLines(resp); len(codes) != 1 || codes[0] != "200" {
		t.Fatalf("codes %v:\n%s", codes, resp)
	}
	got := up.received()
	if len(got) != 1 {
		t.Fatalf("upstream got %d requests", len(got))
	}
	h := got[0].Header
	for name, vals := range h {
		for _, v := range vals {
			if strings.Contains(v, "6.6.6.6") || strings.Contains(v, "evil") || strings.Contains(v, "/admin") || strings.Contains(v, "DELETE") || v == "forged-id" {
				t.Errorf("forged value reached upstream: %s: %s", name, v)
			}
		}
	}
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Real-Ip") != "127.0.0.1" || h.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("gateway forwarding headers wrong: %v", h)
	}
	// Connection named X-Request-ID, but the gateway's own value survives.
	if id := h.Get("X-Request-Id"); id == "" || id == "forged-id" {
		t.Errorf("X-Request-Id = %q, want the gateway's id", id)
	}
	if !strings.Contains(resp, "X-Request-Id: "+h.Get("X-Request-Id")) {
		t.Errorf("response does not carry the same request id")
	}
}

// TestTrustedProxyChain: from a trusted proxy, the client IP is the
// right-most untrusted X-Forwarded-For entry and the request id is kept.
func TestTrustedProxyChain(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	cfg := strings.Replace(baseConfig(up.hostPort(), ""), "    limits:", "    trusted_proxies: [127.0.0.0/8]\n    limits:", 1)
	_, addr := startGateway(t, cfg)
	raw := "GET /api/x HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 6.6.6.6, 198.51.100.7\r\nX-Request-ID: edge-123\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: api.example.com\r\nX-Real-IP: 6.6.6.6\r\nConnection: close\r\n\r\n"
	rawExchange(t, addr, raw)
	got := up.received()
	if len(got) != 1 {
		t.Fatalf("upstream got %d", len(got))
	}
	h := got[0].Header
	if h.Get("X-Real-Ip") != "198.51.100.7" {
		t.Errorf("X-Real-Ip = %q, want 198.51.100.7", h.Get("X-Real-Ip"))
	}
	if h.Get("X-Forwarded-For") != "6.6.6.6, 198.51.100.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", h.Get("X-Forwarded-For"))
	}
	if h.Get("X-Request-Id") != "edge-123" {
		t.Errorf("X-Request-Id = %q, want the trusted proxy's", h.Get("X-Request-Id"))
	}
	if h.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("trusted proxy's proto not kept: %q", h.Get("X-Forwarded-Proto"))
	}
	// The route has no hosts: the proxy's X-Forwarded-Host (its client's
	// Host) is not relayed.
	if v, ok := h["X-Forwarded-Host"]; ok {
		t.Errorf("X-Forwarded-Host relayed on a route without hosts: %q", v)
	}
}

// TestForwardedHostOnlyForConfiguredHosts is the host-header injection
// behind password-reset and cache poisoning: a client's Host reaches the
// service as X-Forwarded-Host only when it is one of the route's
// configured hosts (exact or wildcard), directly or from a trusted proxy.
func TestForwardedHostOnlyForConfiguredHosts(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	cfg := strings.Replace(baseConfig(up.hostPort(), ""), "    limits:", "    trusted_proxies: [127.0.0.2]\n    limits:", 1) + `  - id: shop
    hosts: [shop.example.com, "*.example.org"]
    prefix: /shop
    upstream: svc
    public: true
`
	_, addr := startGateway(t, cfg)
	from := func(src string) string {
		if src == "" {
			return addr
		}
		return src
	}
	cases := []struct {
		name, peer, path, host, xfh, want string
	}{
		{"spoofed Host, route without hosts", "", "/api/x", "evil.example.test", "", ""},
		{"configured host", "", "/shop/x", "shop.example.com", "", "shop.example.com"},
		{"configured host with port", "", "/shop/x", "SHOP.example.com:8443", "", "SHOP.example.com:8443"},
		{"wildcard host", "", "/shop/x", "eu.example.org", "", "eu.example.org"},
		{"untrusted client's X-Forwarded-Host", "", "/shop/x", "shop.example.com", "evil.example.test", "shop.example.com"},
		{"trusted proxy, configured name", "127.0.0.2", "/shop/x", "shop.example.com", "eu.example.org", "eu.example.org"},
		{"trusted proxy, spoofed name", "127.0.0.2", "/shop/x", "shop.example.com", "evil.example.test", ""},
		{"trusted proxy, route without hosts", "127.0.0.2", "/api/x", "gw", "evil.example.test", ""},
	}
	for _, c := range cases {
		raw := "GET " + c.path + " HTTP/1.1\r\nHost: " + c.host + "\r\n"
		if c.xfh != "" {
			raw += "X-Forwarded-Host: " + c.xfh + "\r\n"
		}
		before := len(up.received())
		var resp string
		if c.peer != "" {
			resp = rawExchangeFrom(t, c.peer, from(""), raw+"Connection: close\r\n\r\n")
		} else {
			resp = rawExchange(t, addr, raw+"Connection: close\r\n\r\n")
		}
		got := up.received()
		if len(got) != before+1 {
			t.Errorf("%s: not forwarded: %v", c.name, statusLines(resp))
			continue
		}
		v, ok := got[len(got)-1].Header["X-Forwarded-Host"]
		switch {
		case c.want == "" && ok:
			t.Errorf("%s: X-Forwarded-Host %q reached the service", c.name, v)
		case c.want != "" && (len(v) != 1 || v[0] != c.want):
			t.Errorf("%s: X-Forwarded-Host %q, want %q", c.name, v, c.want)
		}
	}
}

// TestHostChecks: absolute-form authority must match Host (421); unknown
// hosts and unmatched paths get 404 and are never forwarded.
func TestHostChecks(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	cfg := baseConfig(up.hostPort(), "") + `  - id: admin-host
    hosts: [admin.example.com]
    prefix: /
    upstream: svc
    public: true
`
	_, addr := startGateway(t, cfg)
	cases := []struct{ raw, status string }{
		{"GET http://evil.example/api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", "421"},
		{"GET http://admin.example.com/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", "421"},
		{"GET /nothing HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", "404"},
		{"GET /x HTTP/1.1\r\nHost: bad host\r\nConnection: close\r\n\r\n", "400"},
		{"OPTIONS * HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", "400"},
		{"CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\n\r\n", "400"},
		{"TRACE /api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", "405"},
	}
	for _, tc := range cases {
		resp := rawExchange(t, addr, tc.raw)
		if codes := statusLines(resp); len(codes) != 1 || codes[0] != tc.status {
			t.Errorf("%q: codes %v, want %s", strings.SplitN(tc.raw, "\r\n", 2)[0], codes, tc.status)
		}
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("upstream received %d requests: %+v", n, up.received())
	}
	resp := rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: ADMIN.example.com.:80\r\nConnection: close\r\n\r\n")
	if codes := statusLines(resp); len(codes) != 1 || codes[0] != "200" {
		t.Fatalf("admin host: %v", codes)
	}
}

// TestResponseHygiene: fingerprinting headers are removed, nosniff set.
func TestResponseHygiene(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	resp, body := get(t, "http://"+addr+"/api/x", nil)
	if body != "ok /api/x" {
		t.Fatalf("body %q", body)
	}
	if resp.Header.Get("Server") != "" || resp.Header.Get("X-Powered-By") != "" {
		t.Errorf("fingerprint headers leaked: %v", resp.Header)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("no nosniff")
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS on a plaintext listener")
	}
}

func TestTemplateParamsReachScope(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	resp, _ := get(t, "http://"+addr+"/users/a%20b", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := up.received(); len(got) != 1 || got[0].URI != "/users/a%20b" {
		t.Fatalf("upstream got %+v", got)
	}
	resp, _ = get(t, "http://"+addr+"/users/", nil)
	if resp.StatusCode != 404 {
		t.Fatalf("empty param: status %d", resp.StatusCode)
	}
}

// TestNoH2CPriorKnowledge: a plaintext listener never speaks HTTP/2, not
// even to a client that starts with the HTTP/2 connection preface.
func TestNoH2CPriorKnowledge(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	resp := rawExchange(t, addr, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
	// An HTTP/2 server would answer with a SETTINGS frame (type 0x04).
	if len(resp) >= 9 && resp[3] == 0x04 {
		t.Fatalf("plaintext listener answered the h2c preface with HTTP/2: %q", resp)
	}
	if len(up.received()) != 0 {
		t.Fatal("upstream received a request")
	}
}

// TestControlCharactersInIdentity: a genuinely signed token whose
// subject, scope or role holds CR/LF or NUL (a user-chosen name at an
// IdP) is refused at authentication, on routes served by either upstream
// path (the fast HTTP/1 writer, and net/http's Transport when connections
// are capped); no header is repaired, dropped or injected, nothing is
// forwarded, and no 500 or 502 answers client input.
func TestControlCharactersInIdentity(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	_, addr := startGateway(t, `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams:
  - {name: fast, allow_plaintext: true, targets: [{url: "http://`+up.hostPort()+`"}]}
  - {name: capped, allow_plaintext: true, max_conns_per_target: 4, targets: [{url: "http://`+up.hostPort()+`"}]}
authn:
  jwt:
    - `+hsIssuer()+`
routes:
  - {id: fast, prefix: /fast, upstream: fast, auth: {jwt: [idp]}, authorize: any_authenticated}
  - {id: capped, prefix: /capped, upstream: capped, auth: {jwt: [idp]}, authorize: any_authenticated}
`)
	attacks := []map[string]any{
		{"sub": "bob\r\nX-Admin: 1"},
		{"sub": "bob\nX-Admin: 1"},
		{"sub": "bob\x00"},
		{"sub": "bob", "scope": "read\x00admin write"},
	}
	for _, path := range []string{"/fast/x", "/capped/x"} {
		for _, claims := range attacks {
			tok := hsToken(t, claims)
			got := statusLines(rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+tok+"\r\nConnection: close\r\n\r\n"))
			if len(got) != 1 || got[0] != "401" {
				t.Errorf("%s %q: %v, want 401", path, claims, got)
			}
		}
		tok := hsToken(t, map[string]any{"sub": "bob", "scope": "read"})
		if got := statusLines(rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+tok+"\r\nConnection: close\r\n\r\n")); len(got) != 1 || got[0] != "200" {
			t.Errorf("%s: a clean token: %v", path, got)
		}
	}
	for _, r := range up.received() {
		for name, vs := range r.Header {
			if name == "X-Admin" {
				t.Errorf("injected header reached the service: %s: %q", name, vs)
			}
		}
	}
	if n := len(up.received()); n != 2 {
		t.Fatalf("the service received %d requests, want the 2 clean ones", n)
	}
}

// TestFramingRefusalClosesSocket: a request with both Content-Length and
// Transfer-Encoding and no body gets 400 and its connection closes right
// after the response, not when the read timeout ends it.
func TestFramingRefusalClosesSocket(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	for _, raw := range []string{
		"POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, raw)
		// The listener's read timeout is 30 s: a socket still open after
		// 3 s is held by the gateway.
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("socket still open after the 400: %v (read %q)", err, b)
		}
		if got := statusLines(string(b)); len(got) != 1 || got[0] != "400" {
			t.Fatalf("statuses %v", got)
		}
	}
	if len(up.received()) != 0 {
		t.Fatal("an ambiguously framed request reached the service")
	}
}
