package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/testpki"
)

var b64url = base64.RawURLEncoding

// idp is a test identity provider: ES256 keys, a JWKS endpoint whose key
// set can be changed, and an OIDC discovery document.
type idp struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    map[string]*ecdsa.PrivateKey
	publish []string // kids in the JWKS
	hits    atomic.Int32
	down    atomic.Bool
}

func newIDP(t *testing.T, tlsCA *testpki.CA) *idp {
	t.Helper()
	p := &idp{keys: map[string]*ecdsa.PrivateKey{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		p.hits.Add(1)
		if p.down.Load() {
			w.WriteHeader(503)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		var keys []map[string]string
		for _, kid := range p.publish {
			k := p.keys[kid]
			keys = append(keys, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
				"x": b64url.EncodeToString(k.X.FillBytes(make([]byte, 32))), "y": b64url.EncodeToString(k.Y.FillBytes(make([]byte, 32)))})
		}
		w.Header().Set("Cache-Control", "max-age=3600")
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	if tlsCA != nil {
		p.srv = httptest.NewUnstartedServer(mux)
		p.srv.TLS = tlsCAConfig(t, tlsCA)
		p.srv.StartTLS()
	} else {
		p.srv = httptest.NewServer(mux)
	}
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) addKey(kid string, publish bool) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.mu.Lock()
	p.keys[kid] = k
	if publish {
		p.publish = append(p.publish, kid)
	}
	p.mu.Unlock()
}

func (p *idp) setPublished(kids ...string) {
	p.mu.Lock()
	p.publish = kids
	p.mu.Unlock()
}

// token mints an ES256 access token signed with kid.
func (p *idp) token(kid, sub string, ttl time.Duration) string {
	p.mu.Lock()
	k := p.keys[kid]
	p.mu.Unlock()
	now := time.Now().Unix()
	return es256JWT(k, `{"alg":"ES256","typ":"at+jwt","kid":"`+kid+`"}`,
		fmt.Sprintf(`{"iss":%q,"sub":%q,"aud":"orders-api","iat":%d,"exp":%d,"scope":"orders:read"}`, p.srv.URL, sub, now, now+int64(ttl/time.Second)))
}

// es256JWT signs a JWT of this header and claims (JSON) with k.
func es256JWT(k *ecdsa.PrivateKey, header, claims string) string {
	h, c := b64url.EncodeToString([]byte(header)), b64url.EncodeToString([]byte(claims))
	d := sha256.Sum256([]byte(h + "." + c))
	r, s, _ := ecdsa.Sign(rand.Reader, k, d[:])
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return h + "." + c + "." + b64url.EncodeToString(sig)
}

func authConfig(up, issuerURL, source, extra string) string {
	return `version: 1
listeners:
  - name: public
    address: 127.0.0.1:0
upstreams:
  - name: svc
    allow_plaintext: true
    targets: [{url: "http://` + up + `"}]
authn:
  jwt:
    - name: idp
      issuer: ` + issuerURL + `
      audiences: [orders-api]
      algorithms: [ES256]
      require_type: at+jwt
` + source + `
routes:
  - id: orders
    prefix: /orders
    upstream: svc
    auth:
      jwt: [idp]
      max_token_lifetime: 1h
    authorize: any_authenticated
  - id: health
    path: /health
    upstream: svc
    public: true
` + extra
}

func bearerGet(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestJWTRouteEndToEnd: a protected route behind a remote JWKS fetched
// over TLS with a pinned CA.
func TestJWTRouteEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "idp-ca")
	p := newIDP(t, ca)
	p.addKey("k1", true)
	up := newUpstream(t, nil)
	src := "      jwks_url: " + p.srv.URL + "/jwks\n      ca_file: " + ca.WriteCA(t, dir, "ca")
	_, addr := startGateway(t, authConfig(up.hostPort(), p.srv.URL, src, ""))
	base := "http://" + addr
	if c := bearerGet(t, base+"/orders/1", ""); c != 401 {
		t.Fatalf("no token: %d", c)
	}
	if c := bearerGet(t, base+"/orders/1", p.token("k1", "alice", time.Minute)); c != 200 {
		t.Fatalf("valid token: %d", c)
	}
	if c := bearerGet(t, base+"/orders/1", p.token("k1", "alice", 2*time.Hour)); c != 401 {
		t.Fatalf("token over max_token_lifetime: %d", c)
	}
	if c := bearerGet(t, base+"/health", ""); c != 200 {
		t.Fatalf("public route: %d", c)
	}
	got := up.received()
	if len(got) != 2 {
		t.Fatalf("upstream received %d requests, want 2", len(got))
	}
	// Generic 401 body, whatever the cause.
	resp := rawExchange(t, addr, "GET /orders/1 HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer x.y.z\r\nConnection: close\r\n\r\n")
	if !strings.Contains(strings.ToLower(resp), `www-authenticate: bearer realm="rampart", error="invalid_token"`) || !strings.Contains(resp, `"code":"authn.unauthorized"`) {
		t.Fatalf("401 response:\n%s", resp)
	}
}

// TestJWKSRotationAndOutage: the IdP rotates keys mid-traffic with zero
// failed requests; unknown-kid floods refetch at most once per interval;
// an IdP outage keeps the last good key set serving.
func TestJWKSRotationAndOutage(t *testing.T) {
	t.Parallel()
	p := newIDP(t, nil)
	p.addKey("k1", true)
	p.addKey("k2", false)
	up := newUpstream(t, nil)
	src := "      discovery: true\n      allow_plaintext: true\n      min_refetch: 1s\n      refresh: 1h"
	_, addr := startGateway(t, authConfig(up.hostPort(), p.srv.URL, src, ""))
	url := "http://" + addr + "/orders/x"

	var signWith atomic.Value
	signWith.Store("k1")
	stop := underLoad(3, 2*time.Millisecond, func() string {
		if c := bearerGet(t, url, p.token(signWith.Load().(string), "alice", time.Minute)); c != 200 {
			return fmt.Sprint(c)
		}
		return ""
	})
	time.Sleep(300 * time.Millisecond)
	// Rotation as IdPs do it: publish k2, start signing with it, retire k1.
	p.setPublished("k1", "k2")
	time.Sleep(1100 * time.Millisecond) // past min_refetch
	signWith.Store("k2")
	time.Sleep(300 * time.Millisecond)
	p.setPublished("k2")
	time.Sleep(300 * time.Millisecond)
	if r := stop(); r.failed != 0 || r.ok < 50 {
		t.Fatalf("rotation: %d ok, %d failed %v", r.ok, r.failed, r.failures)
	}

	// Unknown-kid flood: at most one refetch per min_refetch.
	time.Sleep(1100 * time.Millisecond)
	before := p.hits.Load()
	p.addKey("attacker", false)
	for i := 0; i < 50; i++ {
		if c := bearerGet(t, url, p.token("attacker", "mallory", time.Minute)); c != 401 {
			t.Fatalf("unpublished key accepted: %d", c)
		}
	}
	if n := p.hits.Load() - before; n > 1 {
		t.Fatalf("%d JWKS fetches for 50 unknown-kid tokens, want at most 1", n)
	}

	// Outage: the last good key set keeps serving.
	p.down.Store(true)
	time.Sleep(1100 * time.Millisecond)
	bearerGet(t, url, p.token("attacker", "mallory", time.Minute)) // forces a failing refetch
	if c := bearerGet(t, url, p.token("k2", "alice", time.Minute)); c != 200 {
		t.Fatalf("during IdP outage: %d", c)
	}
}

// TestStaticPEMKey: a key from a PEM file; the IdP is never contacted.
func TestStaticPEMKey(t *testing.T) {
	dir := t.TempDir()
	p := newIDP(t, nil)
	p.addKey("file-key", false)
	pub := p.keys["file-key"].Public()
	der, _ := x509MarshalPKIX(pub)
	pemFile := filepath.Join(dir, "key.pem")
	os.WriteFile(pemFile, der, 0o600)
	up := newUpstream(t, nil)
	src := "      keys:\n        - kid: file-key\n          algorithm: ES256\n          file: " + pemFile
	_, addr := startGateway(t, authConfig(up.hostPort(), p.srv.URL, src, ""))
	if c := bearerGet(t, "http://"+addr+"/orders/1", p.token("file-key", "bob", time.Minute)); c != 200 {
		t.Fatalf("PEM key: %d", c)
	}
	if p.hits.Load() != 0 {
		t.Fatal("static keys contacted the IdP")
	}
}
