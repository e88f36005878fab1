package admin

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"

	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	token         = "admin-token-0123456789abcdef0123456789abcdef"
	viewerToken   = "viewer-token-0123456789abcdef0123456789abcde"
	operatorToken = "operator-token-0123456789abcdef0123456789ab"
)

type fixture struct {
	h         http.Handler
	lifted    []string
	banned    []string
	reloads   []string
	rotations []string
	revoked   []string
	now       time.Time
}

func newFixture() *fixture {
	f := &fixture{now: time.Unix(1_800_000_000, 0)}
	f.h = Handler(Options{
		Principals: []Principal{
			{Name: "admin", TokenHash: sha256.Sum256([]byte(token)), Role: Admin},
			{Name: "grafana", TokenHash: sha256.Sum256([]byte(viewerToken)), Role: Viewer},
			{Name: "oncall", TokenHash: sha256.Sum256([]byte(operatorToken)), Role: Operator},
		},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("metrics")) }),
		Ready:   func() (bool, map[string]string) { return true, map[string]string{"plan": "ok"} },
		State:   func() State { return State{Bans: []Ban{{IP: "203.0.113.9", Action: "ban"}}} },
		LiftBan: func(ip, by string) error { f.lifted = append(f.lifted, ip+" "+by); return nil },
		Ban: func(ip string, d time.Duration, by string) error {
			f.banned = append(f.banned, ip+" "+d.String()+" "+by)
			return nil
		},
		Reload:  func(by string) error { f.reloads = append(f.reloads, by); return nil },
		Posture: func() any { return map[string]string{"grade": "B"} },
		Discovery: func() ([]byte, any, error) {
			return []byte(`{"openapi":"3.1.0"}`), map[string]any{"shadow": []any{}}, nil
		},
		RotateKey: func(by string) (any, error) {
			f.rotations = append(f.rotations, by)
			return map[string]string{"kid": "new"}, nil
		},
		Revoke: func(r RevokeRequest, by string) error {
			f.revoked = append(f.revoked, r.JTI+r.Subject+" "+by)
			if r.JTI == "unsaved" {
				return NotSaved(errors.New("runtime state not saved to /state/runtime.enc: disk full"))
			}
			return nil
		},
		Revocations: func() any { return f.revoked },
		Unrevoke:    func(r RevokeRequest, by string) error { f.revoked = nil; return nil },
		Keys:        &fakeKeys{},
		Drain: func(upstream, target string, drained bool, by string) error {
			if upstream != "svc" {
				return errors.New("no such upstream target")
			}
			return nil
		},
		Now: func() time.Time { return f.now },
	})
	return f
}

func (f *fixture) do(method, path string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://127.0.0.1:9901"+path, strings.NewReader(body))
	for k, v := range hdr {
		if k == "@remote" { // the client's address, not a header
			req.RemoteAddr = v
			continue
		}
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w
}

// login signs in as the admin and returns the session cookie and the
// page's CSRF token.
func (f *fixture) login(t *testing.T) (string, string) { return f.loginAs(t, token) }

// loginAs signs in with tok.
func (f *fixture) loginAs(t *testing.T, tok string) (string, string) {
	t.Helper()
	w := f.do("POST", "/dashboard/login", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://127.0.0.1:9901"}, "token="+url.QueryEscape(tok))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	c := w.Result().Cookies()[0]
	if c.Name != sessionCookie || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || len(c.Value) != 64 {
		t.Fatalf("session cookie %+v", c)
	}
	page := f.do("GET", "/dashboard/", map[string]string{"Cookie": c.Name + "=" + c.Value}, "")
	_, rest, ok := strings.Cut(page.Body.String(), `name="csrf-token" content="`)
	if !ok {
		t.Fatalf("dashboard page without CSRF token: %s", page.Body)
	}
	csrf, _, _ := strings.Cut(rest, `"`)
	if csp := page.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	return c.Name + "=" + c.Value, csrf
}

func TestProbesAndMetrics(t *testing.T) {
	f := newFixture()
	if w := f.do("GET", "/healthz", nil, ""); w.Code != 200 {
		t.Fatalf("healthz %d", w.Code)
	}
	w := f.do("GET", "/metrics", map[string]string{"Authorization": "Bearer nope"}, "")
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("metrics without the token: %d", w.Code)
	}
	// Refusals carry a request id, in the header and the problem body.
	var p struct {
		RequestID string `json:"request_id"`
	}
	id := w.Header().Get("X-Request-Id")
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || id == "" || p.RequestID != id {
		t.Fatalf("401 request id: header %q, body %s", id, w.Body)
	}
	if next := f.do("GET", "/nope", nil, "").Header().Get("X-Request-Id"); next == id || next == "" {
		t.Fatalf("request ids not unique: %q then %q", id, next)
	}
	if w := f.do("GET", "/metrics", map[string]string{"Authorization": "Bearer " + token}, ""); w.Code != 200 || w.Body.String() != "metrics" {
		t.Fatalf("metrics: %d", w.Code)
	}
}

// TestDashboardAuth: the dashboard's data and actions need a session; a
// state change also needs the CSRF token and a same-origin request; logins
// are checked for origin and throttled after repeated failures.
func TestDashboardAuth(t *testing.T) {
	f := newFixture()
	if w := f.do("GET", "/dashboard/", nil, ""); w.Code != 200 || !strings.Contains(w.Body.String(), `id="login"`) {
		t.Fatalf("without a session the page is the login form: %d", w.Code)
	}
	for _, p := range []string{"/dashboard/api/state", "/dashboard/api/stream"} {
		if w := f.do("GET", p, nil, ""); w.Code != 401 {
			t.Fatalf("%s without a session: %d", p, w.Code)
		}
	}
	if w := f.do("GET", "/dashboard/api/state", map[string]string{"Cookie": sessionCookie + "=" + strings.Repeat("a", 64)}, ""); w.Code != 401 {
		t.Fatalf("forged session: %d", w.Code)
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"}
	if w := f.do("POST", "/dashboard/login", form, "token="+token); w.Code != 403 {
		t.Fatalf("cross-origin login: %d", w.Code)
	}

	cookie, csrf := f.login(t)
	if w := f.do("GET", "/dashboard/api/state", map[string]string{"Cookie": cookie}, ""); w.Code != 200 || !strings.Contains(w.Body.String(), "203.0.113.9") {
		t.Fatalf("state: %d %s", w.Code, w.Body)
	}
	for name, hdr := range map[string]map[string]string{
		"no csrf":      {"Cookie": cookie},
		"wrong csrf":   {"Cookie": cookie, "X-CSRF-Token": strings.Repeat("0", 64)},
		"cross origin": {"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": "https://evil.example"},
		"cross site":   {"Cookie": cookie, "X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"},
		"no session":   {"X-CSRF-Token": csrf},
	} {
		if w := f.do("DELETE", "/api/v1/bans/203.0.113.9", hdr, ""); w.Code != 403 && w.Code != 401 {
			t.Errorf("%s: %d", name, w.Code)
		}
	}
	if len(f.lifted) != 0 {
		t.Fatalf("a forged request lifted a ban: %v", f.lifted)
	}
	if w := f.do("DELETE", "/api/v1/bans/203.0.113.9", map[string]string{"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:9901"}, ""); w.Code != 204 || len(f.lifted) != 1 || f.lifted[0] != "203.0.113.9 admin" {
		t.Fatalf("lift: %d %v", w.Code, f.lifted)
	}
	// Sessions expire.
	f.now = f.now.Add(sessionTTL + time.Second)
	if w := f.do("GET", "/dashboard/api/state", map[string]string{"Cookie": cookie}, ""); w.Code != 401 {
		t.Fatalf("expired session: %d", w.Code)
	}
}

// TestLoginThrottle: a client address with 5 failed logins in a minute is
// refused (even with the right token) until the minute has passed; so is
// its IPv6 /64; other clients can still sign in, until 50 failures from
// all addresses in a minute refuse everyone.
func TestLoginThrottle(t *testing.T) {
	f := newFixture()
	from := func(addr string) map[string]string {
		return map[string]string{"Content-Type": "application/x-www-form-urlencoded", "@remote": addr}
	}
	for i := 0; i < 5; i++ {
		if w := f.do("POST", "/dashboard/login", from("192.0.2.7:4000"), "token=wrong"); w.Code != 401 {
			t.Fatalf("attempt %d: %d", i, w.Code)
		}
	}
	if w := f.do("POST", "/dashboard/login", from("192.0.2.7:4001"), "token="+token); w.Code != 429 {
		t.Fatalf("sixth attempt (right token) within the minute: %d, want 429", w.Code)
	}
	if w := f.do("POST", "/dashboard/login", from("192.0.2.8:4000"), "token="+token); w.Code != http.StatusSeeOther {
		t.Fatalf("another client, right token: %d, want sign-in", w.Code)
	}
	for i := 0; i < 5; i++ {
		f.do("POST", "/dashboard/login", from(fmt.Sprintf("[2001:db8:1:2::%x]:4000", i+1)), "token=wrong")
	}
	if w := f.do("POST", "/dashboard/login", from("[2001:db8:1:2:ffff::1]:4000"), "token="+token); w.Code != 429 {
		t.Fatalf("same IPv6 /64, another address: %d, want 429", w.Code)
	}
	f.now = f.now.Add(61 * time.Second)
	if w := f.do("POST", "/dashboard/login", from("192.0.2.7:4002"), "token="+token); w.Code != http.StatusSeeOther {
		t.Fatalf("after a minute: %d", w.Code)
	}
	// Many addresses, a few failures each: the total caps them.
	for i := 0; i < totalLoginFailures; i++ {
		f.do("POST", "/dashboard/login", from(fmt.Sprintf("198.51.100.%d:4000", i%25+1)), "token=wrong")
	}
	if w := f.do("POST", "/dashboard/login", from("203.0.113.50:4000"), "token="+token); w.Code != 429 {
		t.Fatalf("after %d failures from 25 addresses, a new client: %d, want 429", totalLoginFailures, w.Code)
	}
}

// TestRoleMatrix: every operation of the admin listener, by every role:
// allowed exactly where the permissions table says, refused otherwise
// (401 without a principal, 403 for a role below the operation's), with
// no way around it (a method override, a direct call from a viewer's
// session).
func TestRoleMatrix(t *testing.T) {
	roles := map[Role]string{Viewer: viewerToken, Operator: operatorToken, Admin: token}
	for role, tok := range roles {
		f := newFixture()
		cookie, csrf := f.loginAs(t, tok)
		bearer := map[string]string{"Authorization": "Bearer " + tok}
		jsonBearer := map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
		ops := map[string]func() int{
			OpMetrics:    func() int { return f.do("GET", "/metrics", bearer, "").Code },
			OpPlanRead:   func() int { return f.do("GET", "/api/v1/plan", bearer, "").Code },
			OpBansRead:   func() int { return f.do("GET", "/api/v1/bans", bearer, "").Code },
			OpEventsRead: func() int { return f.do("GET", "/api/v1/events", bearer, "").Code },
			OpAPIDoc:     func() int { return f.do("GET", "/api/v1/openapi.json", bearer, "").Code },
			OpBansAdd: func() int {
				return ok(f.do("POST", "/api/v1/bans", jsonBearer, `{"ip":"203.0.113.7","for":"10m"}`).Code)
			},
			OpReload:     func() int { return ok(f.do("POST", "/api/v1/reload", bearer, "").Code) },
			OpRotateKey:  func() int { return f.do("POST", "/api/v1/assertion/rotate", bearer, "").Code },
			OpDiscovery:  func() int { return f.do("GET", "/api/v1/discovery/report", bearer, "").Code },
			OpPosture:    func() int { return f.do("GET", "/api/v1/posture", bearer, "").Code },
			OpRevokeRead: func() int { return f.do("GET", "/api/v1/revocations", bearer, "").Code },
			OpKeysRead:   func() int { return f.do("GET", "/api/v1/apikeys", bearer, "").Code },
			OpDrain: func() int {
				return ok(f.do("PATCH", "/api/v1/upstreams/svc/targets/10.0.0.1:8443", jsonBearer, `{"drained":true}`).Code)
			},
			OpKeysManage: func() int {
				return ok(f.do("POST", "/api/v1/apikeys", jsonBearer, `{"consumer":"billing","scopes":["a"]}`).Code)
			},
			OpRevoke: func() int {
				return ok(f.do("POST", "/api/v1/revocations", jsonBearer, `{"jti":"leaked-1","for":"1h"}`).Code)
			},
			OpDashboardRead: func() int {
				return f.do("GET", "/dashboard/api/state", map[string]string{"Cookie": cookie}, "").Code
			},
			OpBansLift: func() int {
				return ok(f.do("DELETE", "/api/v1/bans/203.0.113.9", map[string]string{"Cookie": cookie, "X-CSRF-Token": csrf,
					"Origin": "http://127.0.0.1:9901"}, "").Code)
			},
		}
		if len(ops) != len(permissions) {
			t.Fatalf("the matrix tests %d operations, the table has %d", len(ops), len(permissions))
		}
		for op, call := range ops {
			want := http.StatusForbidden
			if role >= permissions[op] {
				want = http.StatusOK
			}
			if got := call(); got != want {
				t.Errorf("%s %s: %d, want %d", role, op, got, want)
			}
		}
		if role == Viewer && len(f.lifted) != 0 {
			t.Errorf("a viewer lifted a ban: %v", f.lifted)
		}
		override := f.do("GET", "/api/v1/bans/203.0.113.9", map[string]string{"Cookie": cookie, "X-HTTP-Method-Override": "DELETE"}, "")
		if override.Code == http.StatusOK {
			t.Errorf("%s: a method override reached the lift", role)
		}
	}
	f := newFixture()
	if got := f.do("GET", "/metrics", nil, "").Code; got != http.StatusUnauthorized {
		t.Errorf("no principal: %d", got)
	}
}

// ok folds the success statuses of the mutating operations into 200.
func ok(code int) int {
	if code == http.StatusCreated || code == http.StatusNoContent {
		return http.StatusOK
	}
	return code
}

// TestAPIDocumentMatchesRoutes: the admin API's OpenAPI document declares
// exactly the operations that exist, and every operation is in the
// permissions table.
func TestAPIDocumentMatchesRoutes(t *testing.T) {
	src, err := assets.ReadFile("assets/api.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for path, item := range doc.Paths {
		for m := range item {
			if m != "parameters" {
				declared[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	for _, rt := range apiRoutes {
		key := rt.method + " " + rt.path
		if !declared[key] {
			t.Errorf("%s exists but is not in the document", key)
		}
		delete(declared, key)
		if _, ok := permissions[rt.op]; !ok {
			t.Errorf("%s: operation %s is not in the permissions table", key, rt.op)
		}
	}
	for key := range declared {
		t.Errorf("the document declares %s, which does not exist", key)
	}
}

// TestAPIBadInput: malformed, oversized and undeclared input is a
// problem+json refusal with a request id; path tricks reach nothing; the
// API validates its own requests.
func TestAPIBadInput(t *testing.T) {
	f := newFixture()
	h := map[string]string{"Authorization": "Bearer " + operatorToken, "Content-Type": "application/json"}
	for name, c := range map[string]struct {
		body string
		want int
	}{
		"malformed":        {`{"ip":`, 400},
		"undeclared field": {`{"ip":"203.0.113.7","admin":true}`, 400},
		"bad duration":     {`{"ip":"203.0.113.7","for":"forever"}`, 400},
		"too long":         {`{"ip":"203.0.113.7","for":"48h"}`, 400},
		"oversized":        {`{"ip":"` + strings.Repeat("a", 70<<10) + `"}`, 413},
	} {
		w := f.do("POST", "/api/v1/bans", h, c.body)
		if w.Code != c.want || w.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(w.Body.String(), `"request_id"`) {
			t.Errorf("%s: %d %s %s", name, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
	}
	if len(f.banned) != 0 {
		t.Fatalf("a bad request banned: %v", f.banned)
	}
	for _, q := range []string{"", "?jti=a&subject=b", "?subject=b"} {
		if w := f.do("DELETE", "/api/v1/revocations"+q, h, ""); w.Code != 400 {
			t.Errorf("DELETE /revocations%s: %d", q, w.Code)
		}
	}
	if w := f.do("DELETE", "/api/v1/revocations?jti=leaked", h, ""); w.Code != 204 {
		t.Errorf("lift a revocation: %d", w.Code)
	}
	// A change in force here that could not be saved says so, without
	// pretending it failed or succeeded everywhere.
	if w := f.do("POST", "/api/v1/revocations", h, `{"jti":"unsaved","for":"1h"}`); w.Code != 503 || !strings.Contains(w.Body.String(), "admin.not_saved") {
		t.Errorf("unsaved revocation: %d %s", w.Code, w.Body)
	}
	// Path tricks reach no operation: refused, or (a doubled slash)
	// redirected to the clean path, where the role is checked again.
	for _, target := range []string{"/api/v1/%2e%2e/metrics", "/api/v1/bans/..%2fplan", "/api/v1/plan.", "/api/v1//plan", "/api/v2/plan"} {
		if w := f.do("DELETE", target, h, ""); w.Code < 300 {
			t.Errorf("DELETE %s: %d", target, w.Code)
		}
	}
	if len(f.lifted) != 0 {
		t.Fatalf("a path trick lifted: %v", f.lifted)
	}
	if w := f.do("POST", "/api/v1/bans", h, `{"ip":"203.0.113.7"}`); w.Code != 201 || len(f.banned) != 1 || !strings.HasSuffix(f.banned[0], " oncall") {
		t.Fatalf("a good ban: %d %v", w.Code, f.banned)
	}
}

// fakeKeys is an in-memory KeyAdmin for the listener's own tests (the
// file-backed one is tested through the gateway).
type fakeKeys struct{ keys []KeyView }

func (k *fakeKeys) List() ([]KeyView, error) { return k.keys, nil }
func (k *fakeKeys) Create(consumer string, scopes []string, ttl time.Duration, by string) (string, KeyView, error) {
	v := KeyView{Prefix: "0123456789ab", Consumer: consumer, Scopes: scopes}
	k.keys = append(k.keys, v)
	return "rpk_0123456789ab_secret", v, nil
}
func (k *fakeKeys) SetDisabled(prefix string, disabled bool, by string) error { return ErrNoKey }
func (k *fakeKeys) Delete(prefix, by string) error                            { return ErrNoKey }

// TestCertificatePrincipals: a verified client certificate names a
// principal by a DNS, e-mail or URI subject alternative name; a
// certificate the handshake did not verify names no one, and a token,
// when sent, decides.
func TestCertificatePrincipals(t *testing.T) {
	spiffe, _ := url.Parse("spiffe://corp.example/ops/alice")
	ps := []Principal{
		{Name: "alice", CertSAN: "spiffe://corp.example/ops/alice", Role: Operator},
		{Name: "bob", CertSAN: "bob@ops.example", Role: Viewer},
		{Name: "ci", CertSAN: "ci.ops.example", TokenHash: sha256.Sum256([]byte(token)), Role: Admin},
	}
	req := func(leaf *x509.Certificate, verified bool) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
		if verified {
			r.TLS.VerifiedChains = [][]*x509.Certificate{{leaf}}
		}
		return r
	}
	for name, c := range map[string]struct {
		leaf     *x509.Certificate
		verified bool
		token    string
		want     string
	}{
		"uri":                {&x509.Certificate{URIs: []*url.URL{spiffe}}, true, "", "alice"},
		"email":              {&x509.Certificate{EmailAddresses: []string{"bob@ops.example"}}, true, "", "bob"},
		"dns":                {&x509.Certificate{DNSNames: []string{"ci.ops.example"}}, true, "", "ci"},
		"unverified":         {&x509.Certificate{DNSNames: []string{"ci.ops.example"}}, false, "", ""},
		"common name only":   {&x509.Certificate{Subject: pkix.Name{CommonName: "ci.ops.example"}}, true, "", ""},
		"token decides":      {&x509.Certificate{EmailAddresses: []string{"bob@ops.example"}}, true, token, "ci"},
		"wrong token, cert":  {&x509.Certificate{EmailAddresses: []string{"bob@ops.example"}}, true, "nope", ""},
		"prefix of the name": {&x509.Certificate{URIs: []*url.URL{{Scheme: "spiffe", Host: "corp.example", Path: "/ops"}}}, true, "", ""},
	} {
		p, ok := authenticate(ps, c.token, req(c.leaf, c.verified))
		if p.Name != c.want || ok != (c.want != "") {
			t.Errorf("%s: %q %v, want %q", name, p.Name, ok, c.want)
		}
	}
}
