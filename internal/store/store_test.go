package store

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	k1 = bytes.Repeat([]byte{1}, 32)
	k2 = bytes.Repeat([]byte{2}, 32)
)

func mustNew(t *testing.T, cur []byte, prev ...[]byte) *Store {
	t.Helper()
	s, err := New(cur, prev...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRoundTripAndAtRest: what is written reads back; on disk it is
// neither the plaintext nor any part of it, and the file is 0600.
func TestRoundTripAndAtRest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api-keys.json")
	secret := []byte(`{"keys":[{"hash":"super-secret-material-0123456789"}]}`)
	s := mustNew(t, k1)
	if err := s.Write(path, secret); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read(path)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("read back %q, %v", got, err)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("super-secret")) || bytes.Contains(raw, k1) {
		t.Fatal("plaintext or key material on disk")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestTampering: every edit, a cut, another file's contents under this
// name and a wrong key are errors naming the file; a missing file is
// fs.ErrNotExist.
func TestTampering(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.key"), filepath.Join(dir, "b.key")
	s := mustNew(t, k1)
	s.Write(a, []byte("alpha-secret"))
	s.Write(b, []byte("bravo-secret"))
	raw, _ := os.ReadFile(a)
	for i := len(magic); i < len(raw); i += 7 {
		flipped := append([]byte{}, raw...)
		flipped[i] ^= 0x40
		os.WriteFile(a, flipped, 0o600)
		if _, err := s.Read(a); err == nil || !strings.Contains(err.Error(), a) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for _, cut := range []int{len(raw) - 1, len(raw) / 2, len(magic) + 3} {
		os.WriteFile(a, raw[:cut], 0o600)
		if _, err := s.Read(a); err == nil {
			t.Fatalf("cut to %d bytes: read", cut)
		}
	}
	other, _ := os.ReadFile(b)
	os.WriteFile(a, other, 0o600) // b's contents under a's name
	if _, err := s.Read(a); err == nil {
		t.Fatal("another file's contents decrypted under this name")
	}
	os.WriteFile(a, raw, 0o600)
	if _, err := mustNew(t, k2).Read(a); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := s.Read(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	os.WriteFile(a, []byte("plain text"), 0o600)
	if _, err := s.Read(a); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("plaintext file: %v", err)
	}
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("a short master key accepted")
	}
}

// TestRekey: files written under the old key stay readable with it as a
// previous key; Rekey rewrites them under the new key (and encrypts a
// plaintext file), after which the old key is no longer needed.
func TestRekey(t *testing.T) {
	dir := t.TempDir()
	a, p := filepath.Join(dir, "a.key"), filepath.Join(dir, "legacy.json")
	mustNew(t, k1).Write(a, []byte("alpha-secret"))
	os.WriteFile(p, []byte("legacy-plaintext"), 0o600)
	s := mustNew(t, k2, k1)
	if got, err := s.Read(a); err != nil || string(got) != "alpha-secret" {
		t.Fatalf("old file with the previous key: %q %v", got, err)
	}
	n, err := s.Rekey([]string{a, p, filepath.Join(dir, "absent")})
	if err != nil || n != 2 {
		t.Fatalf("rekey: %d %v", n, err)
	}
	only2 := mustNew(t, k2)
	for path, want := range map[string]string{a: "alpha-secret", p: "legacy-plaintext"} {
		if got, err := only2.Read(path); err != nil || string(got) != want {
			t.Errorf("%s after rekey: %q %v", path, got, err)
		}
	}
}

// TestInterruptedWrite: a write that never reached its rename (a crash)
// leaves the old file valid.
func TestInterruptedWrite(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.key")
	s := mustNew(t, k1)
	s.Write(a, []byte("version-1"))
	// What a crash between write and rename leaves: a temporary file.
	os.WriteFile(filepath.Join(dir, ".a.key.tmp-123"), []byte("half a wri"), 0o600)
	if got, err := s.Read(a); err != nil || string(got) != "version-1" {
		t.Fatalf("old file after an interrupted write: %q %v", got, err)
	}
}
