package gateway

import (
	"strconv"
	"strings"
	"testing"
)

// TestInputValidation: wrong content type (415), duplicate-key, deep and
// invalid JSON (400), too many query parameters; nothing reaches the
// upstream, and a valid JSON body arrives intact.
func TestInputValidation(t *testing.T) {
	up := newUpstream(t, nil)
	cfg := baseConfig(up.hostPort(), "") + `  - id: orders
    path: /orders
    methods: [POST]
    upstream: svc
    public: true
    validate:
      content_types: [application/json]
      max_query_params: 3
      json: {max_depth: 8}
`
	_, addr := startGateway(t, cfg)
	post := func(ct, body, query string) string {
		raw := "POST /orders" + query + " HTTP/1.1\r\nHost: gw\r\nContent-Type: " + ct + "\r\nContent-Length: " + itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body
		return strings.Join(statusLines(rawExchange(t, addr, raw)), "")
	}
	cases := []struct{ name, ct, body, query, want string }{
		{"form body", "application/x-www-form-urlencoded", "a=1", "", "415"},
		{"xml body", "application/xml", "<a/>", "", "415"},
		{"duplicate key", "application/json", `{"role":"user","role":"admin"}`, "", "400"},
		{"deep", "application/json", strings.Repeat("[", 9) + strings.Repeat("]", 9), "", "400"},
		{"invalid", "application/json", `{"a":`, "", "400"},
		{"bad UTF-8", "application/json", "{\"a\":\"\xff\"}", "", "400"},
		{"query params", "application/json", `{}`, "?a=1&b=2&c=3&d=4", "400"},
	}
	for _, c := range cases {
		if got := post(c.ct, c.body, c.query); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("upstream received %d invalid requests", n)
	}
	if got := post("application/json; charset=utf-8", `{"item":"book","qty":2}`, "?a=1"); got != "200" {
		t.Fatalf("valid body: %s", got)
	}
	if r := up.received(); len(r) != 1 || r[0].Body != `{"item":"book","qty":2}` {
		t.Fatalf("upstream got %+v", r)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestDecisionFields: headers and query parameters reserved for decisions
// never reach a stage or the service; in refuse mode they get 400.
func TestDecisionFields(t *testing.T) {
	up := newUpstream(t, nil)
	_, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	resp := rawExchange(t, addr, "GET /api/x?is_admin=1&q=book&ROLE=admin&%70lan=gold HTTP/1.1\r\nHost: gw\r\nX-Plan: premium\r\nX_Is_Admin: true\r\nX-Debug: 1\r\nConnection: close\r\n\r\n")
	if c := statusLines(resp); len(c) != 1 || c[0] != "200" {
		t.Fatalf("%v", c)
	}
	got := up.received()[0]
	if got.URI != "/api/x?q=book" {
		t.Errorf("upstream URI %q, want the decision parameters removed", got.URI)
	}
	for _, h := range []string{"X-Plan", "X_is_admin", "X-Debug"} {
		if _, ok := got.Header[h]; ok {
			t.Errorf("%s reached the upstream", h)
		}
	}
	if len(got.Header.Values("X_Is_Admin")) > 0 {
		t.Error("X_Is_Admin reached the upstream")
	}
	refuse := strings.Replace(baseConfig(up.hostPort(), ""), "routes:\n", "decision_fields: {refuse: true}\nroutes:\n", 1)
	_, addr2 := startGateway(t, refuse)
	resp = rawExchange(t, addr2, "GET /api/x HTTP/1.1\r\nHost: gw\r\nX-Tier: gold\r\nConnection: close\r\n\r\n")
	if c := statusLines(resp); len(c) != 1 || c[0] != "400" {
		t.Fatalf("refuse mode: %v", c)
	}
	checkProblem(t, resp, "validate.decision_field")
}

// TestMultipartUpload: a multipart route refuses a path-traversal file
// name, a disallowed file type and too many parts before the service sees
// them, and forwards a well-formed upload byte for byte.
func TestMultipartUpload(t *testing.T) {
	up := newUpstream(t, nil)
	cfg := baseConfig(up.hostPort(), "") + `  - id: upload
    path: /upload
    methods: [POST]
    upstream: svc
    public: true
    validate:
      content_types: [multipart/form-data]
      multipart: {max_parts: 2, max_part_bytes: 64, file_types: [image/png]}
`
	_, addr := startGateway(t, cfg)
	post := func(body string) string {
		raw := "POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: " + itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body
		return rawExchange(t, addr, raw)
	}
	part := func(fn, ct, v string) string {
		return "--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"" + fn + "\"\r\nContent-Type: " + ct + "\r\n\r\n" + v + "\r\n"
	}
	for name, body := range map[string]string{
		"traversal": part("../../app/config.php", "image/png", "x") + "--B--\r\n",
		"php":       part("shell.php", "application/x-php", "<?php system($_GET[c]);") + "--B--\r\n",
		"parts":     part("a.png", "image/png", "x") + part("b.png", "image/png", "x") + part("c.png", "image/png", "x") + "--B--\r\n",
	} {
		resp := post(body)
		if c := statusLines(resp); len(c) != 1 || c[0] != "400" {
			t.Errorf("%s: %v, want 400", name, c)
			continue
		}
		checkProblem(t, resp, "validate.multipart")
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("upstream received %d bad uploads", n)
	}
	good := part("cat.png", "image/png", "\x89PNG\r\n") + "--B--\r\n"
	if c := statusLines(post(good)); strings.Join(c, "") != "200" {
		t.Fatalf("good upload: %v", c)
	}
	if r := up.received(); len(r) != 1 || r[0].Body != good {
		t.Fatalf("upstream got %+v", r)
	}
}
