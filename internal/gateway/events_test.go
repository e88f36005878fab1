package gateway

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/observe"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSecurityEventStream: every kind of refusal reaches the event stream
// as one JSON line with its code, stage, route, client and request id; a
// WAF block carries its rule ids; detector findings (a ban) are events of
// their own. Tokens, API keys, cookies and passwords sent with the
// requests never appear in the stream.
func TestSecurityEventStream(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "orders.yaml"), []byte(ordersSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := `version: 1
listeners: [{name: public, address: "127.0.0.1:0", limits: {max_body_bytes: 4KiB}}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
authn:
  jwt:
    - ` + hsIssuer() + `
abuse:
  ban_for: 1m
  brute_force: {threshold: 3, sensitive_threshold: 3, window: 1m}
  scanning: {threshold: 50, window: 1m}
routes:
  - {id: login, path: /login, methods: [POST], upstream: svc, sensitive: true, auth: {jwt: [idp]}, authorize: any_authenticated}
  - {id: reports, path: /reports, upstream: svc, auth: {jwt: [idp]}, authorize: {scopes_all: [reports:read]}}
  - {id: limited, path: /limited, upstream: svc, public: true, rate_limits: [{key: [client_ip], rate: 1, per: 1m}]}
  - {id: json, path: /json, methods: [POST], upstream: svc, public: true, validate: {json: {}}}
  - {id: search, path: /search, upstream: svc, public: true, waf: {paranoia: 1}}
  - {id: orders, prefix: /v1, upstream: svc, public: true, openapi: {spec: "` + filepath.Join(dir, "orders.yaml") + `"}}
`
	cfg, err := config.Parse([]byte(yaml), "events.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessLog.Enabled = new(bool)
	var out lockedBuffer
	events := observe.NewEmitter(observe.EventOptions{Output: &out})
	_, addr := startConfig(t, cfg, pipeline.Deps{Now: time.Now, Events: events})

	jwtOK := hsToken(t, map[string]any{"sub": "alice", "scope": "other"})
	secrets := []string{jwtOK, "s3cr3t-cookie-value", "rk_live_0123456789abcdef", "hunter2-password", "query-api-key-value"}
	creds := "Authorization: Bearer " + jwtOK + "\r\nCookie: session=s3cr3t-cookie-value\r\nX-Api-Key: rk_live_0123456789abcdef\r\n"
	send := func(raw string) { rawExchange(t, addr, raw) }
	req := func(method, target, hdr, body string) string {
		s := method + " " + target + " HTTP/1.1\r\nHost: gw\r\nUser-Agent: events-test\r\n" + hdr
		if body != "" {
			s += "Content-Type: application/json\r\nContent-Length: " + itoa(len(body)) + "\r\n"
		}
		return s + "Connection: close\r\n\r\n" + body
	}
	send(req("GET", "/nothing?api_key=query-api-key-value", creds, ""))                                     // router.not_found
	send(req("GET", "/reports", creds, ""))                                                                 // authz.denied
	send(req("GET", "/limited", creds, ""))                                                                 // allowed
	send(req("GET", "/limited", creds, ""))                                                                 // ratelimit.exceeded
	send(req("POST", "/json", creds, `{"password":"hunter2-password","password":"hunter2-password"}`))      // validate.json
	send(req("GET", "/search?q=1'%20UNION%20SELECT%20password%20FROM%20users--", creds, ""))                // waf.sqli
	send(req("POST", "/v1/orders", creds, `{"sku":"BOOK-1","qty":1,"password":"hunter2-password"}`))        // validate.schema
	send(req("DELETE", "/v1/orders", creds, ""))                                                            // validate.undocumented
	send("GET /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") // request framing
	for i := 0; i < 3; i++ {
		send(req("POST", "/login", "Authorization: Bearer not.a.token-"+itoa(i)+"\r\n", `{"password":"hunter2-password"}`)) // authn.unauthorized ×3 → ban
	}
	send(req("GET", "/limited", "", "")) // abuse.banned

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := events.Close(ctx); err != nil {
		t.Fatal(err)
	}
	stream := out.String()
	for _, s := range secrets {
		if strings.Contains(stream, s) {
			t.Errorf("the event stream contains a secret %q", s)
		}
	}
	if strings.Contains(stream, "UNION") {
		t.Error("the event stream contains the attack payload")
	}

	refusals, findings := map[string]map[string]any{}, map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(stream), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if m["log"] != "security" || m["time"] == nil {
			t.Errorf("line lacks log/time: %s", line)
		}
		code, _ := m["code"].(string)
		if m["event"] == "refusal" && (m["request_id"] == "" || m["request_id"] == nil || m["client_ip"] != "127.0.0.1") {
			t.Errorf("refusal without request id or client: %s", line)
		}
		if m["event"] == "refusal" {
			refusals[code] = m
		} else {
			findings[m["event"].(string)] = m
		}
	}
	want := map[string]struct{ stage, route string }{
		"router.not_found":      {"router", ""},
		"authz.denied":          {"authz", "reports"},
		"ratelimit.exceeded":    {"ratelimit", "limited"},
		"validate.json":         {"validate", "json"},
		"waf.sqli":              {"waf", "search"},
		"validate.schema":       {"validate", "orders"},
		"validate.undocumented": {"validate", "orders"},
		"request.framing":       {"request", ""},
		"authn.unauthorized":    {"authn", "login"},
		"abuse.banned":          {"abuse", ""},
	}
	for code, w := range want {
		m := refusals[code]
		if m == nil {
			t.Errorf("no event for %s in:\n%s", code, stream)
			continue
		}
		if m["stage"] != w.stage || (w.route != "" && m["route"] != w.route) {
			t.Errorf("%s: stage %v route %v, want %s %s", code, m["stage"], m["route"], w.stage, w.route)
		}
	}
	if m := refusals["waf.sqli"]; m != nil {
		if rules, _ := m["rules"].([]any); len(rules) == 0 {
			t.Errorf("waf refusal without rule ids: %v", m)
		}
		if r, _ := m["request"].(map[string]any); r["path"] != "/search" || r["user_agent"] != "events-test" {
			t.Errorf("request summary %v", r)
		}
	}
	if m := refusals["authz.denied"]; m != nil && (m["subject"] != "alice" || m["auth"] != "jwt") {
		t.Errorf("authz refusal without the identity: %v", m)
	}
	if m := findings["abuse.banned"]; m == nil || !strings.HasPrefix(m["detector"].(string), "brute_force") || m["client_ip"] != "127.0.0.1" {
		t.Errorf("no ban event from the detector: %v", findings)
	}
}
