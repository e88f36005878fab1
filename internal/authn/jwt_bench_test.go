package authn

import (
	"crypto"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/jws"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// benchStage measures the jwt stage for one algorithm, with or without
// the verified-token cache.
func benchStage(b *testing.B, alg string, priv any, pub crypto.PublicKey, cache int) {
	key, err := jws.NewPublicKey("k", alg, pub)
	if err != nil {
		b.Fatal(err)
	}
	is := NewIssuer(IssuerOptions{Name: "i", ID: iss, Audiences: []string{"rampart"}, Algorithms: []string{alg}, Keys: NewStaticKeys([]*jws.Key{key}), ClockSkew: time.Minute})
	mw := NewJWT(JWTOptions{Issuers: []*Issuer{is}, CacheSize: cache})
	h := mw(func(w http.ResponseWriter, r *http.Request) error { return nil })
	tok := mint(b, `{"alg":"`+alg+`","kid":"k"}`, claimsJSON(time.Now(), ""), alg, priv)
	req := httptest.NewRequest("GET", "http://gw/api", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req = req.WithContext(pipeline.WithScope(req.Context(), &pipeline.Scope{}))
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := h(w, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkES256(b *testing.B) {
	k := keysOnce(b)
	benchStage(b, "ES256", k.ec, &k.ec.PublicKey, 0)
}
func BenchmarkES256Cached(b *testing.B) {
	k := keysOnce(b)
	benchStage(b, "ES256", k.ec, &k.ec.PublicKey, 1000)
}
func BenchmarkRS256(b *testing.B) {
	k := keysOnce(b)
	benchStage(b, "RS256", k.rsa, &k.rsa.PublicKey, 0)
}
func BenchmarkRS256Cached(b *testing.B) {
	k := keysOnce(b)
	benchStage(b, "RS256", k.rsa, &k.rsa.PublicKey, 1000)
}
func BenchmarkEdDSA(b *testing.B) {
	k := keysOnce(b)
	benchStage(b, "EdDSA", k.ed, k.ed.Public(), 0)
}
func BenchmarkEdDSACached(b *testing.B) {
	k := keysOnce(b)
	benchStage(b, "EdDSA", k.ed, k.ed.Public(), 1000)
}
