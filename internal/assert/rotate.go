package assert

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/store"
)

// RetiredSuffix names the file next to key_file that holds the key a
// rotation retired: still published in the JWKS, no longer signing.
const RetiredSuffix = ".retired"

// JWKSMaxAge is how long services may cache the published keys (the
// Cache-Control of the JWKS route).
const JWKSMaxAge = 5 * time.Minute

// ErrTooSoon refuses a rotation while the key retired by the previous
// one may still verify assertions services hold or keys they cached.
var ErrTooSoon = errors.New("the previous rotation's key is still in its overlap")

// Overlap is how long a retired key must stay published: the longest an
// assertion it signed lives, plus the services' JWKS cache, plus a
// minute of clock skew.
func Overlap(a *config.Assertion) time.Duration { return a.TTL.D() + JWKSMaxAge + time.Minute }

// Rotation is the outcome of Rotate: the new key's id and the retired
// one's.
type Rotation struct {
	KID        string    `json:"kid"`
	RetiredKID string    `json:"retired_kid"`
	NextAfter  time.Time `json:"next_rotation_after"`
}

// Rotate retires the signing key (written to key_file.retired, where it
// stays published) and writes a new one to key_file; a compiled plan
// signs with the new key. Both files go through the store (encrypted,
// atomic), the retired one first, so a crash between the two leaves the
// old key signing and published. A rotation within the overlap of the
// previous one is refused (ErrTooSoon): it would unpublish a key that
// may still verify live assertions.
func Rotate(a *config.Assertion, st *store.Store, now time.Time) (Rotation, error) {
	retired := a.KeyFile + RetiredSuffix
	if fi, err := os.Stat(retired); err == nil {
		if next := fi.ModTime().Add(Overlap(a)); now.Before(next) {
			return Rotation{NextAfter: next}, fmt.Errorf("%w: rotate again after %s", ErrTooSoon, next.UTC().Format(time.RFC3339))
		}
	}
	data, _, err := st.ReadLegacy(a.KeyFile)
	if err != nil {
		return Rotation{}, err
	}
	old, err := parse(data, a.KeyFile)
	if err != nil {
		return Rotation{}, err
	}
	priv, err := generate(old.Alg)
	if err != nil {
		return Rotation{}, err
	}
	fresh, err := newKey(priv)
	if err != nil {
		return Rotation{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Rotation{}, err
	}
	if err := st.Write(retired, data); err != nil {
		return Rotation{}, err
	}
	if err := st.Write(a.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return Rotation{}, err
	}
	return Rotation{KID: fresh.ID, RetiredKID: old.ID, NextAfter: now.Add(Overlap(a))}, nil
}

// retiredKey loads the key a rotation retired, if there is one.
func retiredKey(a *config.Assertion, st *store.Store) (*Key, error) {
	data, _, err := st.ReadLegacy(a.KeyFile + RetiredSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parse(data, a.KeyFile+RetiredSuffix)
}
