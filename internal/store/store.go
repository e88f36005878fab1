// Package store keeps the secret and security state Rampart writes (the
// API key store, assertion signing keys) encrypted at rest: envelope
// encryption with AES-256-GCM, a fresh data key per write wrapped by a
// master key from a secret reference, key ids so that files written under
// an earlier master key stay readable, atomic writes, and authenticated
// reads (a flipped byte, a wrong key or a cut file is an error naming the
// file, never a silent empty start).
package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rampart-gw/rampart/internal/config"
)

// magic starts every file the store writes.
var magic = []byte("RAMPART\x00ENC1")

// MasterKeyBytes is the length of a master key.
const MasterKeyBytes = 32

// Store encrypts and decrypts files with its master keys. A nil *Store
// reads and writes plaintext (no master key configured).
type Store struct {
	current key
	keys    map[[8]byte]key // by id: the current key and previous ones
	derive  []byte          // the root of Derive's keys, from the current master key
}

type key struct {
	id   [8]byte
	aead cipher.AEAD
}

// New returns a store writing under current and reading files written
// under current or any of previous. Keys are 32 bytes.
func New(current []byte, previous ...[]byte) (*Store, error) {
	s := &Store{keys: map[[8]byte]key{}}
	for i, raw := range append([][]byte{current}, previous...) {
		k, err := newKey(raw)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			s.current = k
			root := sha256.Sum256(append([]byte("rampart derived keys\x00"), raw...))
			s.derive = root[:]
		}
		s.keys[k.id] = k
	}
	return s, nil
}

// newKey derives the key id (not the key) from the key's hash.
func newKey(raw []byte) (key, error) {
	if len(raw) != MasterKeyBytes {
		return key{}, fmt.Errorf("a master key must be %d bytes (it has %d)", MasterKeyBytes, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, err
	}
	h := sha256.Sum256(append([]byte("rampart store key id\x00"), raw...))
	var id [8]byte
	copy(id[:], h[:8])
	return key{id: id, aead: aead}, nil
}

// Derive returns a 32-byte key for purpose, derived from the current
// master key (HMAC-SHA256 under a hash of it), so that every instance
// sharing the master key derives the same key and none reveals the
// master key. A nil store returns nil.
func (s *Store) Derive(purpose string) []byte {
	if s == nil {
		return nil
	}
	m := hmac.New(sha256.New, s.derive)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// ErrNotEncrypted is returned by Read for a file written without
// encryption (a plaintext file from before a master key was configured).
var ErrNotEncrypted = errors.New("not an encrypted state file")

// Seal encrypts data for the file name (its base name is authenticated:
// a file moved to another name does not decrypt).
func (s *Store) Seal(name string, data []byte) ([]byte, error) {
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		return nil, err
	}
	dk, err := newKey(dek)
	if err != nil {
		return nil, err
	}
	ad := associated(name, s.current.id)
	n1 := nonce()
	wrapped := s.current.aead.Seal(nil, n1, dek, ad)
	// magic | key id | len(wrapped) | nonce | wrapped data key | nonce | data
	out := append(append([]byte{}, magic...), s.current.id[:]...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(wrapped)))
	out = append(append(out, n1...), wrapped...)
	n2 := nonce()
	out = append(out, n2...)
	return dk.aead.Seal(out, n2, data, ad), nil
}

// Open decrypts what Seal wrote for name.
func (s *Store) Open(name string, b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, magic) {
		return nil, ErrNotEncrypted
	}
	b = b[len(magic):]
	if len(b) < 8+2 {
		return nil, errors.New("truncated")
	}
	var id [8]byte
	copy(id[:], b[:8])
	k, ok := s.keys[id]
	if !ok {
		return nil, errors.New("written under a master key that is not configured (set it as the master key or a previous one)")
	}
	n := int(binary.BigEndian.Uint16(b[8:10]))
	b = b[10:]
	ns := k.aead.NonceSize()
	if len(b) < ns+n+ns {
		return nil, errors.New("truncated")
	}
	ad := associated(name, id)
	dek, err := k.aead.Open(nil, b[:ns], b[ns:ns+n], ad)
	if err != nil {
		return nil, errors.New("the data key does not authenticate (edited file, or another file's contents)")
	}
	dk, err := newKey(dek)
	if err != nil {
		return nil, err
	}
	b = b[ns+n:]
	data, err := dk.aead.Open(nil, b[:ns], b[ns:], ad)
	if err != nil {
		return nil, errors.New("the contents do not authenticate (edited or truncated file)")
	}
	return data, nil
}

// associated is the data both layers authenticate: the file's base name
// and the master key id.
func associated(name string, id [8]byte) []byte {
	return append([]byte("rampart state\x00"+filepath.Base(name)+"\x00"), id[:]...)
}

func nonce() []byte {
	n := make([]byte, 12)
	if _, err := rand.Read(n); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// Read reads the file at path, decrypting it. A missing file is
// fs.ErrNotExist (wrapped); any other failure names the file. With a nil
// store the file is read as it is.
func (s *Store) Read(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil || s == nil {
		return b, err
	}
	data, err := s.Open(path, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// Write writes data to path atomically: a temporary file in the same
// directory, synced, renamed over path, the directory synced; mode 0600.
// A crash leaves the old file or the new one, never a mix.
func (s *Store) Write(path string, data []byte) error {
	out := data
	if s != nil {
		var err error
		if out, err = s.Seal(path, data); err != nil {
			return err
		}
	}
	return WriteAtomic(path, out)
}

// WriteAtomic writes b to path by temporary file, fsync and rename.
func WriteAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, nothing to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Rekey re-encrypts each file under the current master key (a file
// already under it is rewritten too, with a fresh data key). It returns
// how many files it rewrote; a file it cannot read stops it, named.
func (s *Store) Rekey(paths []string) (int, error) {
	n := 0
	for _, p := range paths {
		data, err := s.Read(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, ErrNotEncrypted) {
			if data, err = os.ReadFile(p); err != nil {
				return n, err
			}
		} else if err != nil {
			return n, err
		}
		if err := s.Write(p, data); err != nil {
			return n, fmt.Errorf("%s: %w", p, err)
		}
		n++
	}
	return n, nil
}

// ReadLegacy is Read that also accepts a file written before a master key
// was configured: plain reports such a plaintext file (the caller may
// rewrite it encrypted). A nil store reads every file as plaintext.
func (s *Store) ReadLegacy(path string) (data []byte, plain bool, err error) {
	data, err = s.Read(path)
	if errors.Is(err, ErrNotEncrypted) {
		data, err = os.ReadFile(path)
		return data, true, err
	}
	return data, s == nil && err == nil, err
}

// FromConfig opens the store of a state section (nil section: a nil
// store, which reads and writes plaintext).
func FromConfig(c *config.State) (*Store, error) {
	if c == nil {
		return nil, nil
	}
	cur, err := config.DecodeMasterKey(c.MasterKey.Reveal())
	if err != nil {
		return nil, err
	}
	var prev [][]byte
	for _, k := range c.PreviousMasterKeys {
		b, err := config.DecodeMasterKey(k.Reveal())
		if err != nil {
			return nil, err
		}
		prev = append(prev, b)
	}
	return New(cur, prev...)
}
