package assert

import (
	"crypto/hmac"
	"crypto/sha256"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

func benchSign(b *testing.B, alg string) {
	k, err := LoadOrCreate(filepath.Join(b.TempDir(), "k.pem"), alg, nil)
	if err != nil {
		b.Fatal(err)
	}
	s := NewSigner("https://gw.test", time.Minute, k, nil)
	sc := &pipeline.Scope{RequestID: "abc-1", Host: "api.example.com", Path: "/orders/1",
		Identity: &pipeline.Identity{Subject: "alice", Method: "jwt", Scopes: []string{"orders:read"}}}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Sign("orders", "GET", sc, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignEdDSA(b *testing.B) { benchSign(b, "EdDSA") }
func BenchmarkSignES256(b *testing.B) { benchSign(b, "ES256") }

func BenchmarkSignReused(b *testing.B) {
	k, err := LoadOrCreate(filepath.Join(b.TempDir(), "k.pem"), "EdDSA", nil)
	if err != nil {
		b.Fatal(err)
	}
	s := NewSigner("https://gw.test", time.Minute, k, nil)
	s.SetReuse(5 * time.Second)
	sc := &pipeline.Scope{RequestID: "abc-1", Host: "api.example.com", Path: "/orders/1",
		Identity: &pipeline.Identity{Subject: "alice", Method: "jwt"}}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Sign("orders", "GET", sc, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignHS256 is the same assertion payload authenticated with
// HMAC-SHA256 instead of a signature (a per-upstream shared key): what a
// symmetric scheme would cost, for the comparison in docs/zero-trust.md.
func BenchmarkSignHS256(b *testing.B) {
	key := make([]byte, 32)
	payload := []byte(`{"iss":"https://gw.test","aud":"orders","iat":1765000000,"exp":1765000060,"jti":"AAAAAAAAAAAAAAAA","rid":"abc-1","htb":"` + Binding("GET", "", "/orders/1") + `","sub":"alice","auth":"jwt","scope":"orders:read"}`)
	header := b64.EncodeToString([]byte(`{"alg":"HS256","kid":"orders"}`))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := hmac.New(sha256.New, key)
		signing := header + "." + b64.EncodeToString(payload)
		m.Write([]byte(signing))
		_ = signing + "." + b64.EncodeToString(m.Sum(nil))
	}
}
