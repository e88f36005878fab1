package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/plan"
)

// headersOf returns the response headers of a raw exchange.
func headersOf(t *testing.T, raw string) http.Header {
	t.Helper()
	head, _, _ := strings.Cut(raw, "\r\n\r\n")
	h := http.Header{}
	for _, line := range strings.Split(head, "\r\n")[1:] {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h.Add(k, strings.TrimSpace(v))
		}
	}
	return h
}

func respondConfig(up string) string {
	return `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up + `"}]}]
authn:
  jwt:
    - ` + hsIssuer() + `
response_headers:
  set: {Permissions-Policy: "geolocation=()"}
  remove: [X-Internal-Version]
routes:
  - {id: public, prefix: /public, upstream: svc, public: true}
  - {id: private, prefix: /private, upstream: svc, auth: {jwt: [idp]}, authorize: any_authenticated}
  - id: widget
    prefix: /widget
    upstream: svc
    public: true
    response_headers:
      set: {Content-Security-Policy: "frame-ancestors https://partner.example"}
      remove: [X-Frame-Options]
  - id: app
    prefix: /app
    upstream: svc
    public: true
    cors:
      origins: [https://app.example.com, "https://*.example.org"]
      methods: [GET, POST]
      headers: [Authorization, Content-Type]
      expose: [X-Total-Count]
      credentials: true
`
}

// TestSecureResponseHeaders: the secure defaults on a proxied 200, a
// gateway 404 and a gateway 401; no-store on an authenticated answer
// without a cache header; a service's own frame policy is kept.
func TestSecureResponseHeaders(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Internal-Version", "4.2.1-build77")
		switch r.URL.Path {
		case "/public/framed":
			w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		case "/public/csp":
			w.Header().Set("Content-Security-Policy", "default-src 'self'")
		case "/public/cached":
			w.Header().Set("Cache-Control", "public, max-age=60")
		}
		w.Write([]byte("ok"))
	})
	_, addr := startGateway(t, respondConfig(up.hostPort()))
	tok := hsToken(t, map[string]any{"sub": "alice"})
	get := func(path string, hdr ...string) http.Header {
		return headersOf(t, rawExchange(t, addr, getReq(path, hdr...)))
	}
	defaults := map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
		"Content-Security-Policy": "frame-ancestors 'none'", "Referrer-Policy": "no-referrer", "Permissions-Policy": "geolocation=()"}
	for name, h := range map[string]http.Header{
		"proxied 200":    get("/public/x"),
		"gateway 404":    get("/nowhere"),
		"gateway 401":    get("/private/x"),
		"authorized 200": get("/private/x", "Authorization: Bearer "+tok+"\r\n"),
	} {
		for k, want := range defaults {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", name, k, got, want)
			}
		}
		if h.Get("X-Internal-Version") != "" {
			t.Errorf("%s: removed header present", name)
		}
		if wantNoStore := name != "proxied 200"; wantNoStore != (h.Get("Cache-Control") == "no-store") {
			t.Errorf("%s: Cache-Control %q", name, h.Get("Cache-Control"))
		}
	}
	if h := get("/public/framed"); h.Get("X-Frame-Options") != "SAMEORIGIN" || h.Get("Content-Security-Policy") != "" {
		t.Errorf("a service's X-Frame-Options not kept: %v", h)
	}
	if h := get("/public/csp"); h.Get("Content-Security-Policy") != "default-src 'self'" || h.Get("X-Frame-Options") != "" {
		t.Errorf("a service's CSP not kept: %v", h)
	}
	if h := get("/public/cached"); h.Get("Cache-Control") != "public, max-age=60" {
		t.Errorf("a service's Cache-Control changed: %v", h)
	}
	// A route serving an embeddable widget changes the defaults, openly.
	if h := get("/widget/x"); h.Get("X-Frame-Options") != "" || h.Get("Content-Security-Policy") != "frame-ancestors https://partner.example" {
		t.Errorf("widget route: %v", h)
	}
}

// TestResponseHeadersChecked: header names and values are checked at
// load (file:line and key), managed headers cannot be set, and a changed
// secure default is a warning.
func TestResponseHeadersChecked(t *testing.T) {
	base := "version: 1\nlisteners: [{name: public, address: \"127.0.0.1:0\"}]\nupstreams: [{name: svc, allow_plaintext: true, targets: [{url: \"http://127.0.0.1:9\"}]}]\nroutes:\n  - id: r\n    prefix: /\n    upstream: svc\n    public: true\n"
	for _, c := range []struct{ section, want string }{
		{"    response_headers: {set: {\"Bad Name\": x}}\n", "routes[0].response_headers"},
		{"    response_headers: {set: {Content-Length: \"5\"}}\n", "routes[0].response_headers"},
		{"    response_headers: {add: {Access-Control-Allow-Origin: \"*\"}}\n", "routes[0].response_headers"},
		{"    response_headers: {remove: [\"a b\"]}\n", "routes[0].response_headers"},
		{"    cors: {origins: [\"*\"], credentials: true}\n", "routes[0].cors"},
		{"    cors: {origins: [\"https://example.com/\"]}\n", "routes[0].cors"},
	} {
		cfg, err := config.Parse([]byte(base+c.section), "test.yaml")
		if err == nil {
			err = plan.Check(cfg)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "test.yaml:") {
			t.Errorf("%s: %v, want an error at %s", c.section, err, c.want)
		}
	}
	cfg, err := config.Parse([]byte(base+"    response_headers: {remove: [X-Frame-Options], set: {referrer-policy: origin}}\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ws []string
	for _, w := range cfg.Warnings {
		ws = append(ws, w.Error())
	}
	all := strings.Join(ws, "\n")
	if !strings.Contains(all, "routes[0].response_headers.remove: removes the secure default X-Frame-Options") || !strings.Contains(all, "replaces the secure default Referrer-Policy") {
		t.Errorf("warnings: %s", all)
	}
}

// TestCORSAttacks: preflights are answered by the gateway and never
// forwarded; an allowed origin gets exactly its origin back; reflected,
// suffix, prefix and null origins get no CORS headers; a service's own
// permissive CORS headers are replaced; Vary: Origin on every answer; a
// credentialed request from an unlisted origin is a security event.
func TestCORSAttacks(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*") // a careless service
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Write([]byte("ok"))
	})
	cfg, err := config.Parse([]byte(respondConfig(up.hostPort())), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessLog.Enabled = new(bool)
	rec := &pipeline.EventRecorder{}
	_, addr := startConfig(t, cfg, pipeline.Deps{Events: rec})
	preflight := func(origin, method, headers string) string {
		raw := "OPTIONS /app/orders HTTP/1.1\r\nHost: gw\r\nOrigin: " + origin + "\r\nAccess-Control-Request-Method: " + method + "\r\n"
		if headers != "" {
			raw += "Access-Control-Request-Headers: " + headers + "\r\n"
		}
		return rawExchange(t, addr, raw+"Connection: close\r\n\r\n")
	}
	resp := preflight("https://app.example.com", "POST", "authorization, content-type")
	h := headersOf(t, resp)
	if c := statusLines(resp); len(c) != 1 || c[0] != "204" || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Access-Control-Allow-Methods") != "GET, POST" || h.Get("Vary") != "Origin" {
		t.Fatalf("preflight: %s", resp)
	}
	for _, bad := range [][3]string{
		{"https://evil.test", "POST", ""},
		{"https://evil-example.com", "GET", ""},
		{"https://app.example.com.evil.net", "GET", ""},
		{"null", "GET", ""},
		{"https://app.example.com", "DELETE", ""},
		{"https://app.example.com", "POST", "x-admin"},
	} {
		resp := preflight(bad[0], bad[1], bad[2])
		if c := statusLines(resp); len(c) != 1 || c[0] != "403" || strings.Contains(resp, "Access-Control-Allow") {
			t.Errorf("preflight %v: %s", bad, resp)
		}
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("%d preflights reached the service", n)
	}
	actual := func(origin string, cookie bool) http.Header {
		raw := "GET /app/orders HTTP/1.1\r\nHost: gw\r\nOrigin: " + origin + "\r\n"
		if cookie {
			raw += "Cookie: session=s3cr3t\r\n"
		}
		return headersOf(t, rawExchange(t, addr, raw+"Connection: close\r\n\r\n"))
	}
	if h := actual("https://eu.example.org", false); h.Get("Access-Control-Allow-Origin") != "https://eu.example.org" || h.Get("Access-Control-Expose-Headers") != "X-Total-Count" || h.Get("Vary") != "Origin" {
		t.Errorf("allowed origin: %v", h)
	}
	for _, origin := range []string{"https://evil.test", "https://evil-example.org", "https://example.org.evil.net", "null", "https://example.org"} {
		h := actual(origin, true)
		if h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Credentials") != "" || h.Get("Vary") != "Origin" {
			t.Errorf("origin %s: %v", origin, h)
		}
	}
	n := 0
	for _, e := range rec.Events() {
		if e.Name == "cors.origin_refused" {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d cors.origin_refused events, want 5", n)
	}
}
