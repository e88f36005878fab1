package assert

import (
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
