package assert

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

func TestKeyPersistedAndReuse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	k1, err := LoadOrCreate(path, "EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreate(path, "EdDSA")
	if err != nil || k2.ID != k1.ID {
		t.Fatalf("key not persisted: %v %s %s", err, k1.ID, k2.ID)
	}
	s := NewSigner("https://gw.test", time.Minute, k1, nil)
	id := &pipeline.Identity{Subject: "alice"}
	sc := &pipeline.Scope{RequestID: "r1", Host: "h", Path: "/a", Identity: id}
	now := time.Now()
	a1, _ := s.Sign("svc", "GET", sc, now)
	a2, _ := s.Sign("svc", "GET", sc, now)
	if a1 == a2 {
		t.Fatal("assertions reused without reuse enabled")
	}
	s.SetReuse(2 * time.Second)
	b1, _ := s.Sign("svc", "GET", sc, now)
	b2, _ := s.Sign("svc", "GET", sc, now.Add(time.Second))
	b3, _ := s.Sign("svc", "GET", &pipeline.Scope{RequestID: "r2", Host: "h", Path: "/b", Identity: id}, now)
	b4, _ := s.Sign("svc", "GET", sc, now.Add(3*time.Second))
	if b1 != b2 || b1 == b3 || b1 == b4 {
		t.Fatal("reuse: same request shape within the window must share, others must not")
	}
}
