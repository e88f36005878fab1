package assert

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/store"
)

func rotationConfig(t *testing.T, alg string) *config.Assertion {
	return &config.Assertion{Issuer: "https://gw.test", Algorithm: alg, KeyFile: filepath.Join(t.TempDir(), "assertion.key"),
		TTL: config.Duration(time.Minute)}
}

func kids(t *testing.T, s *Signer) []string {
	var set struct{ Keys []struct{ Kid, Alg string } }
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid+"/"+k.Alg)
	}
	return out
}

// A rotation signs with a new key of the same algorithm and keeps the
// retired one published; a second rotation within the overlap is
// refused, one after it retires the key that was signing.
func TestRotate(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256"} {
		a := rotationConfig(t, alg)
		st, _ := store.New(bytes.Repeat([]byte{7}, 32))
		before, err := Compile(a, true, st)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		r, err := Rotate(a, st, now)
		if err != nil {
			t.Fatal(err)
		}
		if r.RetiredKID != before.current.ID || r.KID == r.RetiredKID {
			t.Fatalf("%s: rotation %+v from %s", alg, r, before.current.ID)
		}
		after, err := Compile(a, true, st)
		if err != nil {
			t.Fatal(err)
		}
		if after.current.ID != r.KID || after.current.Alg != alg {
			t.Fatalf("%s: signing with %s/%s", alg, after.current.ID, after.current.Alg)
		}
		if got := kids(t, after); len(got) != 2 || got[0] != r.KID+"/"+alg || got[1] != r.RetiredKID+"/"+alg {
			t.Fatalf("%s: JWKS %v", alg, got)
		}
		if _, err := Rotate(a, st, now.Add(Overlap(a)-time.Second)); !errors.Is(err, ErrTooSoon) {
			t.Fatalf("%s: within the overlap: %v", alg, err)
		}
		r2, err := Rotate(a, st, now.Add(Overlap(a)+time.Second))
		if err != nil || r2.RetiredKID != r.KID {
			t.Fatalf("%s: after the overlap: %+v %v", alg, r2, err)
		}
		raw, _ := os.ReadFile(a.KeyFile + RetiredSuffix)
		if strings.Contains(string(raw), "PRIVATE KEY") {
			t.Fatalf("%s: the retired key is in plaintext", alg)
		}
	}
}

// A crash after the retired key was written and before the new one was
// leaves the old key signing, published once.
func TestRotateInterrupted(t *testing.T) {
	a := rotationConfig(t, "EdDSA")
	before, err := Compile(a, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(a.KeyFile)
	if err := os.WriteFile(a.KeyFile+RetiredSuffix, data, 0o600); err != nil { // the first write of Rotate
		t.Fatal(err)
	}
	after, err := Compile(a, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.current.ID != before.current.ID || len(kids(t, after)) != 1 {
		t.Fatalf("after an interrupted rotation: signing %s, JWKS %v", after.current.ID, kids(t, after))
	}
}
