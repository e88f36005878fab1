package gateway

import (
	"net/url"
	"strings"
	"testing"
)

// TestWAFBlocksAttacks: real Coraza with the OWASP CRS on a route; SQL
// injection, XSS and path traversal get 403 with the category in the problem
// code and never reach the service, while an ordinary JSON request passes.
func TestWAFBlocksAttacks(t *testing.T) {
	up := newUpstream(t, nil)
	cfg := baseConfig(up.hostPort(), "") + `  - id: search
    path: /search
    methods: [GET, POST]
    upstream: svc
    public: true
    waf: {paranoia: 1}
`
	_, addr := startGateway(t, cfg)
	attacks := []struct{ name, raw, code string }{
		{"sqli query", "GET /search?q=" + url.QueryEscape("1' OR '1'='1' UNION SELECT password FROM users--") + " HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", "waf.sqli"},
		{"xss query", "GET /search?q=" + url.QueryEscape("<script>alert(document.cookie)</script>") + " HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", "waf.xss"},
		{"lfi query", "GET /search?file=" + url.QueryEscape("../../../../etc/passwd") + " HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", "waf.lfi"},
	}
	for _, a := range attacks {
		resp := rawExchange(t, addr, a.raw)
		if c := statusLines(resp); len(c) != 1 || c[0] != "403" {
			t.Errorf("%s: %v, want 403", a.name, c)
			continue
		}
		checkProblem(t, resp, a.code)
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("upstream received %d attacks", n)
	}
	body := `{"name":"Ada Lovelace","email":"ada@example.com","note":"select a book, please"}`
	raw := "POST /search HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: " + itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body
	if c := statusLines(rawExchange(t, addr, raw)); strings.Join(c, "") != "200" {
		t.Fatalf("benign JSON: %v", c)
	}
	if r := up.received(); len(r) != 1 || r[0].Body != body {
		t.Fatalf("upstream got %+v", r)
	}
}
