package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/plan"
)

const authzSecret = "authz-test-secret-0123456789abcdef!!"

// hsToken mints an HS256 token for the authz tests.
func hsToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	now := time.Now().Unix()
	c := map[string]any{"iss": "https://idp.test", "aud": "api", "iat": now, "exp": now + 300}
	for k, v := range claims {
		c[k] = v
	}
	hb := b64url.EncodeToString([]byte(`{"alg":"HS256","kid":"k"}`))
	cb, _ := json.Marshal(c)
	input := hb + "." + b64url.EncodeToString(cb)
	m := hmac.New(sha256.New, []byte(authzSecret))
	m.Write([]byte(input))
	return input + "." + b64url.EncodeToString(m.Sum(nil))
}

// hsIssuer is the YAML flow mapping of the HS256 test issuer "idp" whose
// tokens hsToken signs, exposing the given claims.
func hsIssuer(claims ...string) string {
	s := `{name: idp, issuer: "https://idp.test", audiences: [api], algorithms: [HS256], keys: [{kid: k, algorithm: HS256, secret: "${env:RAMPART_AUTHZ_SECRET}"}]`
	if len(claims) > 0 {
		s += ", claims: [" + strings.Join(claims, ", ") + "]"
	}
	return s + "}"
}

func authzConfig(up string) string {
	return `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up + `"}]}]
authn:
  jwt:
    - name: idp
      issuer: https://idp.test
      audiences: [api]
      algorithms: [HS256]
      keys: [{kid: k, algorithm: HS256, secret: "${env:RAMPART_AUTHZ_SECRET}"}]
      roles_claim: realm_access.roles
      claims: [tenant, groups]
routes:
  - id: reports
    path: /reports
    upstream: svc
    auth: {jwt: [idp]}
    authorize: {scopes_all: [reports:read, reports:list]}
  - id: search
    path: /search
    upstream: svc
    auth: {jwt: [idp]}
    authorize: {scopes_any: [search, admin]}
  - id: admin
    prefix: /admin
    upstream: svc
    auth: {jwt: [idp]}
    authorize: {roles_any: [admin]}
  - id: tenant
    path: /tenants/{tenantId}/data
    upstream: svc
    auth: {jwt: [idp]}
    authorize: {bind: {tenantId: tenant}}
  - id: orders
    path: /users/{userId}/orders
    methods: [GET, POST, DELETE]
    upstream: svc
    auth: {jwt: [idp]}
    authorize:
      bind: {userId: sub}
      methods:
        DELETE: {roles_any: [support]}
  - id: groups
    path: /groups
    upstream: svc
    auth: {jwt: [idp]}
    authorize: {claims: {groups: [eng, ops]}}
  - id: cel
    path: /cel
    upstream: svc
    auth: {jwt: [idp]}
    authorize:
      cel: 'identity.sub.startsWith("svc-") && request.headers["x-env"] == "prod" && "deploy" in identity.scopes'
      headers: [X-Env]
  - id: any
    path: /any
    upstream: svc
    auth: {jwt: [idp]}
    authorize: any_authenticated
`
}

// TestAuthorizationMatrix: scopes, roles, claims, BOLA binding, per-method
// policies and CEL, each with the attacks that must get 403 and never
// reach the service.
func TestAuthorizationMatrix(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	_, addr := startGateway(t, authzConfig(up.hostPort()))
	type tc struct {
		name   string
		method string
		target string
		claims map[string]any
		header map[string]string
		want   int
	}
	alice := map[string]any{"sub": "alice", "tenant": "acme"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{"sub": "alice", "tenant": "acme"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []tc{
		{"scopes_all both", "GET", "/reports", with(map[string]any{"scope": "reports:read reports:list"}), nil, 200},
		{"scopes_all one missing", "GET", "/reports", with(map[string]any{"scope": "reports:read"}), nil, 403},
		{"scopes_all as list claim", "GET", "/reports", with(map[string]any{"scope": []string{"reports:list", "reports:read"}}), nil, 200},
		{"scopes_any one", "GET", "/search", with(map[string]any{"scope": "admin"}), nil, 200},
		{"scopes_any none", "GET", "/search", with(map[string]any{"scope": "searching"}), nil, 403},
		{"role admin", "GET", "/admin/x", with(map[string]any{"realm_access": map[string]any{"roles": []string{"admin"}}}), nil, 200},
		{"role user", "GET", "/admin/x", with(map[string]any{"realm_access": map[string]any{"roles": []string{"user"}}}), nil, 403},
		{"role as top-level claim ignored", "GET", "/admin/x", with(map[string]any{"roles": []string{"admin"}}), nil, 403},
		{"no roles claim", "GET", "/admin/x", alice, nil, 403},
		{"tenant own", "GET", "/tenants/acme/data", alice, nil, 200},
		{"tenant other", "GET", "/tenants/globex/data", alice, nil, 403},
		{"tenant case variant", "GET", "/tenants/ACME/data", alice, nil, 403},
		{"tenant encoded own", "GET", "/tenants/%61cme/data", alice, nil, 200},
		{"BOLA own orders", "GET", "/users/alice/orders", alice, nil, 200},
		{"BOLA other user", "GET", "/users/bob/orders", alice, nil, 403},
		{"BOLA encoded other", "GET", "/users/%62ob/orders", alice, nil, 403},
		{"BOLA traversal", "GET", "/users/alice/../bob/orders", alice, nil, 403},
		{"BOLA dot segment", "GET", "/users/bob/./orders", alice, nil, 403},
		{"BOLA double slash", "GET", "//users//bob//orders", alice, nil, 403},
		{"BOLA trailing dot", "GET", "/users/bob./orders", alice, nil, 403},
		{"BOLA encoded slash", "GET", "/users/alice%2f..%2fbob/orders", alice, nil, 400},
		{"BOLA semicolon", "GET", "/users/bob;alice/orders", alice, nil, 400},
		{"BOLA sub with encoding", "GET", "/users/a%20b/orders", with(map[string]any{"sub": "a b"}), nil, 200},
		{"function-level: DELETE needs support", "DELETE", "/users/alice/orders", alice, nil, 403},
		{"function-level: DELETE by support", "DELETE", "/users/alice/orders", with(map[string]any{"realm_access": map[string]any{"roles": []string{"support"}}}), nil, 200},
		{"function-level: override header ignored", "POST", "/users/alice/orders", alice, map[string]string{"X-HTTP-Method-Override": "DELETE"}, 200},
		{"claim membership list", "GET", "/groups", with(map[string]any{"groups": []string{"sales", "ops"}}), nil, 200},
		{"claim membership miss", "GET", "/groups", with(map[string]any{"groups": []string{"sales"}}), nil, 403},
		{"claim equality string", "GET", "/groups", with(map[string]any{"groups": "eng"}), nil, 200},
		{"cel pass", "GET", "/cel", with(map[string]any{"sub": "svc-deployer", "scope": "deploy"}), map[string]string{"X-Env": "prod"}, 200},
		{"cel wrong header", "GET", "/cel", with(map[string]any{"sub": "svc-deployer", "scope": "deploy"}), map[string]string{"X-Env": "dev"}, 403},
		{"cel wrong subject", "GET", "/cel", with(map[string]any{"sub": "alice", "scope": "deploy"}), map[string]string{"X-Env": "prod"}, 403},
		{"any authenticated", "GET", "/any", alice, nil, 200},
	}
	for _, c := range cases {
		before := len(up.received())
		hdr := "Authorization: Bearer " + hsToken(t, c.claims) + "\r\n"
		for k, v := range c.header {
			hdr += k + ": " + v + "\r\n"
		}
		resp := rawExchange(t, addr, c.method+" "+c.target+" HTTP/1.1\r\nHost: gw\r\n"+hdr+"Connection: close\r\n\r\n")
		codes := statusLines(resp)
		if len(codes) != 1 || codes[0] != fmt.Sprint(c.want) {
			t.Errorf("%s: %v, want %d", c.name, codes, c.want)
			continue
		}
		got := len(up.received()) - before
		if (c.want == 200) != (got == 1) {
			t.Errorf("%s: upstream received %d requests", c.name, got)
		}
		if c.want == 403 {
			checkProblem(t, resp, "authz.denied")
			if strings.Contains(resp, "bind") || strings.Contains(resp, "scopes") || strings.Contains(resp, "cel") {
				t.Errorf("%s: the failing rule leaked to the client", c.name)
			}
		}
	}
	// The method override header never reached the service either.
	for _, r := range up.received() {
		if r.Header.Get("X-Http-Method-Override") != "" {
			t.Error("method override header forwarded")
		}
	}
}

// TestIdentityHeaderSpoofing: client-sent identity headers, in any
// spelling and even named in Connection, never reach the service; it sees
// only the gateway's values, and not the client's Authorization header.
func TestIdentityHeaderSpoofing(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	_, addr := startGateway(t, authzConfig(up.hostPort()))
	tok := hsToken(t, map[string]any{"sub": "alice", "scope": "read"})
	raw := "GET /any HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + tok + "\r\n" +
		"X-Auth-Subject: admin\r\nX-User-Id: 1\r\nX_User_Role: admin\r\nX-Forwarded-User: admin\r\nX-Remote-User: admin\r\n" +
		"X-Consumer-Username: admin\r\nx-auth-roles: admin\r\nConnection: close, X-Auth-Subject\r\n\r\n"
	resp := rawExchange(t, addr, raw)
	if c := statusLines(resp); len(c) != 1 || c[0] != "200" {
		t.Fatalf("%v", c)
	}
	got := up.received()
	h := got[len(got)-1].Header
	if h.Get("X-Auth-Subject") != "alice" || h.Get("X-Auth-Method") != "jwt" || h.Get("X-Auth-Scopes") != "read" {
		t.Errorf("gateway identity headers: %v", h)
	}
	for name, vals := range h {
		for _, v := range vals {
			if v == "admin" || v == "1" {
				t.Errorf("spoofed %s: %s reached the service", name, v)
			}
		}
	}
	if h.Get("Authorization") != "" {
		t.Error("client Authorization forwarded (MS-SS-10)")
	}
}

// TestCELTypeErrorIsConfigError: a CEL expression that does not compile or
// is not boolean fails loading with its route and line.
func TestCELTypeErrorIsConfigError(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	for _, expr := range []string{`identity.sub +`, `identity.sub`, `1 + "a"`} {
		cfgText := strings.Replace(authzConfig("127.0.0.1:9"), `'identity.sub.startsWith("svc-") && request.headers["x-env"] == "prod" && "deploy" in identity.scopes'`, "'"+expr+"'", 1)
		cfg, err := config.Parse([]byte(cfgText), "cel.yaml")
		if err != nil {
			t.Fatal(err)
		}
		err = plan.Check(cfg)
		fe := config.FieldErrors(err)
		if len(fe) == 0 || fe[0].Path != "routes[6].authorize" || fe[0].Line == 0 || !strings.Contains(fe[0].Msg, "cel") {
			t.Errorf("%q: %v", expr, err)
		}
	}
}
