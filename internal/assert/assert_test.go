package assert

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/store"
)

func TestKeyPersistedAndReuse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	k1, err := LoadOrCreate(path, "EdDSA", nil)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreate(path, "EdDSA", nil)
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

// TestKeyEncryptedAtRest: with a master key the signing key never
// reaches the disk in the clear, a plaintext key from before is
// rewritten encrypted, and a store with another key refuses it.
func TestKeyEncryptedAtRest(t *testing.T) {
	dir := t.TempDir()
	st, err := store.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "fresh.key")
	k, err := LoadOrCreate(fresh, "ES256", st)
	if err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(dir, "legacy.key")
	old, _ := LoadOrCreate(legacy, "EdDSA", nil) // written in the clear
	again, err := LoadOrCreate(legacy, "EdDSA", st)
	if err != nil || again.ID != old.ID {
		t.Fatalf("plaintext key not read: %v", err)
	}
	for _, f := range []string{fresh, legacy} {
		raw, _ := os.ReadFile(f)
		if bytes.Contains(raw, []byte("PRIVATE KEY")) {
			t.Errorf("%s holds a PEM private key in the clear", f)
		}
	}
	if k2, err := LoadOrCreate(fresh, "ES256", st); err != nil || k2.ID != k.ID {
		t.Fatalf("encrypted key not read back: %v", err)
	}
	other, _ := store.New(bytes.Repeat([]byte{8}, 32))
	if _, err := LoadOrCreate(fresh, "ES256", other); err == nil {
		t.Fatal("a store with another master key read the key (or made a new one)")
	}
}
