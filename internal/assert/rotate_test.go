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
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/store"
)

func rotationConfig(t *testing.T, alg string) *config.Assertion {
	return &config.Assertion{Issuer: "https://gw.test", Algorithm: alg, KeyFile: filepath.Join(t.TempDir(), "assertion.key"),
		TTL: config.Duration(time.Minute)}
}

// kids lists the published key ids.
func kids(t *testing.T, s *Signer) []string {
	var set struct{ Keys []struct{ Kid, Alg string } }
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// signedBy is the kid of an assertion signed at now.
func signedBy(t *testing.T, s *Signer, now time.Time) string {
	tok, err := s.Sign("orders", "GET", &pipeline.Scope{RequestID: "r", Path: "/"}, now)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := b64.DecodeString(strings.Split(tok, ".")[0])
	var hdr struct{ Kid string }
	json.Unmarshal(h, &hdr)
	return hdr.Kid
}

// A rotation publishes the new key at once and signs with it only from
// PublishAhead later (so services refreshing their key set as the JWKS
// cache period says know it first); the files are promoted at the next
// compile after that, the old key staying published as the retired one.
// Rotations are refused while one is staged and within the retired
// key's overlap.
func TestRotateStaged(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256"} {
		a := rotationConfig(t, alg)
		st, _ := store.New(bytes.Repeat([]byte{7}, 32))
		now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
		before, err := Compile(a, true, st, now)
		if err != nil {
			t.Fatal(err)
		}
		old := before.current.ID
		r, err := Rotate(a, st, now)
		if err != nil || r.CurrentKID != old || r.KID == old || !r.SignsFrom.Equal(now.Add(PublishAhead)) {
			t.Fatalf("%s: rotation %+v %v", alg, r, err)
		}
		staged, err := Compile(a, true, st, now.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if got := kids(t, staged); len(got) != 2 || got[0] != old || got[1] != r.KID {
			t.Fatalf("%s: JWKS while staged %v", alg, got)
		}
		if k := signedBy(t, staged, r.SignsFrom.Add(-time.Second)); k != old {
			t.Fatalf("%s: signed with %s before the switch", alg, k)
		}
		if k := signedBy(t, staged, r.SignsFrom); k != r.KID {
			t.Fatalf("%s: signed with %s at the switch", alg, k)
		}
		if _, err := Rotate(a, st, now.Add(time.Minute)); !errors.Is(err, ErrTooSoon) {
			t.Fatalf("%s: a rotation while one is staged: %v", alg, err)
		}
		after, err := Compile(a, true, st, r.SignsFrom.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if after.current.ID != r.KID || after.next != nil || len(kids(t, after)) != 2 || kids(t, after)[1] != old {
			t.Fatalf("%s: after promotion signing %s, JWKS %v", alg, after.current.ID, kids(t, after))
		}
		if _, err := os.Stat(a.KeyFile + NextSuffix); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: the staged file stays after promotion", alg)
		}
		// The retired key must stay published for its overlap: a rotation
		// whose key would replace it sooner is refused.
		if _, err := Rotate(a, st, r.SignsFrom.Add(Overlap(a)-PublishAhead-time.Second)); !errors.Is(err, ErrTooSoon) {
			t.Fatalf("%s: within the retired key's overlap: %v", alg, err)
		}
		if _, err := Rotate(a, st, r.NextAfter); err != nil {
			t.Fatalf("%s: at next_rotation_after: %v", alg, err)
		}
		for _, f := range []string{a.KeyFile, a.KeyFile + NextSuffix, a.KeyFile + RetiredSuffix} {
			if raw, _ := os.ReadFile(f); strings.Contains(string(raw), "PRIVATE KEY") || len(raw) == 0 {
				t.Fatalf("%s: %s is missing or a plaintext private key", alg, f)
			}
		}
	}
}

// A crash inside a promotion leaves files that the next compile
// completes: the old key retired and published, the new one signing.
func TestPromoteInterrupted(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for name, crash := range map[string]func(a *config.Assertion){
		// retired written, key_file not yet
		"after the retired key": func(a *config.Assertion) {},
		// key_file written too, the staged file not removed
		"before removing the staged key": func(a *config.Assertion) {
			data, _ := os.ReadFile(a.KeyFile + NextSuffix)
			os.WriteFile(a.KeyFile, data, 0o600)
		},
	} {
		a := rotationConfig(t, "EdDSA")
		if _, err := Compile(a, true, nil, now); err != nil {
			t.Fatal(err)
		}
		r, err := Rotate(a, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(a.KeyFile)
		os.WriteFile(a.KeyFile+RetiredSuffix, data, 0o600) // the first step of promote
		crash(a)
		s, err := Compile(a, true, nil, r.SignsFrom.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if s.current.ID != r.KID || len(kids(t, s)) != 2 || kids(t, s)[1] != r.CurrentKID {
			t.Fatalf("%s: signing %s, JWKS %v", name, s.current.ID, kids(t, s))
		}
	}
}
