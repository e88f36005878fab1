package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkJWTCached is BenchmarkPassThrough on a route that takes an
// ES256 bearer token (the same token on every request, so the verified
// token cache answers) and lets any authenticated caller through,
// without a signed assertion.
func BenchmarkJWTCached(b *testing.B) {
	h, _, jwt := jwtGateway(b)
	benchRequest(b, h, jwt)
}

// BenchmarkJWTSideBySide serves the public route and the JWT route of
// BenchmarkJWTCached in turns, one request at a time, and reports the
// JWT route's CPU per turn over the public route's (jwt/pass); with
// -cpuprofile, -tagfocus route=jwt or route=pass separates them.
func BenchmarkJWTSideBySide(b *testing.B) {
	h, pass, jwt := jwtGateway(b)
	send := func(req *http.Request) func(from, until int) {
		return func(from, until int) {
			for range until - from {
				h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
			}
		}
	}
	sideBySide(b, []string{"pass", "jwt"}, []func(int, int){send(pass), send(jwt)})
}

// jwtGateway is the bench gateway with a JWT route /auth beside the
// public /api, and a request for each.
func jwtGateway(b *testing.B) (http.Handler, *http.Request, *http.Request) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := filepath.Join(b.TempDir(), "jwt.pub")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	_, h := benchGatewayWith(b, func(y string) string {
		y = strings.Replace(y, "routes:\n", `authn:
  jwt:
    - name: bench
      issuer: https://idp.bench
      audiences: [bench]
      algorithms: [ES256]
      keys: [{kid: bench, algorithm: ES256, file: `+pub+`}]
routes:
  - id: jwt
    prefix: /auth
    upstream: svc
    auth: {jwt: [bench]}
    authorize: any_authenticated
    skip_assertion: true
`, 1)
		return y
	})
	get := func(target string) *http.Request {
		req := httptest.NewRequest("GET", target, nil)
		req.RemoteAddr = "127.0.0.1:5555"
		req.Header.Set("User-Agent", "bench")
		req.Header.Set("Accept", "*/*")
		return req
	}
	jwt := get("http://gw/auth/v1/items?x=1")
	jwt.Header.Set("Authorization", "Bearer "+es256Token(key))
	pass := get("http://gw/api/v1/items?x=1")
	// Both must be served: a refusal costs less and would flatter the
	// figure.
	for _, req := range []*http.Request{pass, jwt} {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("%s: %d, want 200", req.URL.Path, w.status)
		}
	}
	return h, pass, jwt
}

// es256Token mints an hour-long ES256 token of the bench issuer.
func es256Token(k *ecdsa.PrivateKey) string {
	now := time.Now().Unix()
	return es256JWT(k, `{"alg":"ES256","typ":"JWT","kid":"bench"}`,
		fmt.Sprintf(`{"iss":"https://idp.bench","sub":"wrk","aud":"bench","iat":%d,"exp":%d,"scope":"bench:read"}`, now, now+3600))
}
