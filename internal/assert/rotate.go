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

// A rotation is staged in files next to key_file, each written through
// the store (encrypted, atomic):
//
//	key_file          the signing key
//	key_file.next     the new key: published at once, signing from the
//	                  time in its PEM header "Activates"
//	key_file.retired  the key the last rotation replaced: still published
//	                  (until the next rotation), signing no more since
//	                  the time in its PEM header "Retired"
//
// Publishing the new key a JWKS cache period before it signs means no
// service that refreshes its key set as the JWKS route's Cache-Control
// says ever sees an assertion under a key it does not know.
const (
	NextSuffix    = ".next"
	RetiredSuffix = ".retired"
)

// JWKSMaxAge is how long services may cache the published keys (the
// Cache-Control of the JWKS route).
const JWKSMaxAge = 5 * time.Minute

// PublishAhead is how long a new key is published before it signs: the
// services' JWKS cache period and a minute of margin.
const PublishAhead = JWKSMaxAge + time.Minute

// ErrTooSoon refuses a rotation while the previous one is in progress or
// its retired key may still verify assertions services hold.
var ErrTooSoon = errors.New("too soon")

// Overlap is how long a retired key must stay published: the longest an
// assertion it signed lives, plus the services' JWKS cache, plus a
// minute of clock skew.
func Overlap(a *config.Assertion) time.Duration { return a.TTL.D() + JWKSMaxAge + time.Minute }

// Rotation is the outcome of Rotate.
type Rotation struct {
	KID        string    `json:"kid"`         // the new key, published now
	CurrentKID string    `json:"current_kid"` // signing until SignsFrom, then retired
	SignsFrom  time.Time `json:"signs_from"`
	NextAfter  time.Time `json:"next_rotation_after"`
}

// Rotate stages a new signing key of the same algorithm: written to
// key_file.next, published at once and signing from now + PublishAhead.
// It is refused (ErrTooSoon) while a staged key has not signed yet, or
// when the key retired by the last rotation would leave the key set
// before its overlap ended.
func Rotate(a *config.Assertion, st *store.Store, now time.Time) (Rotation, error) {
	if err := promote(a, st, now); err != nil {
		return Rotation{}, err
	}
	if next, hdr, err := readKey(a.KeyFile+NextSuffix, st); err != nil || next != nil {
		if err != nil {
			return Rotation{}, err
		}
		return Rotation{}, fmt.Errorf("%w: key %s is staged and signs from %s", ErrTooSoon, next.ID, hdr[headerActivates])
	}
	if r, hdr, err := readKey(a.KeyFile+RetiredSuffix, st); err != nil {
		return Rotation{}, err
	} else if r != nil {
		if until := headerTime(hdr, headerRetired).Add(Overlap(a)); now.Add(PublishAhead).Before(until) {
			return Rotation{}, fmt.Errorf("%w: retired key %s stays published until %s; rotate again after %s", ErrTooSoon,
				r.ID, until.UTC().Format(time.RFC3339), until.Add(-PublishAhead).UTC().Format(time.RFC3339))
		}
	}
	cur, _, err := readKey(a.KeyFile, st)
	if err != nil || cur == nil {
		return Rotation{}, fmt.Errorf("assertion key %s: %w", a.KeyFile, errors.Join(err, os.ErrNotExist))
	}
	priv, err := generate(cur.Alg)
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
	from := now.Add(PublishAhead).Truncate(time.Second)
	block := &pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{headerActivates: from.UTC().Format(time.RFC3339)}, Bytes: der}
	if err := st.Write(a.KeyFile+NextSuffix, pem.EncodeToMemory(block)); err != nil {
		return Rotation{}, err
	}
	return Rotation{KID: fresh.ID, CurrentKID: cur.ID, SignsFrom: from, NextAfter: from.Add(Overlap(a) - PublishAhead)}, nil
}

const (
	headerActivates = "Activates"
	headerRetired   = "Retired"
)

// promote completes a staged rotation whose key signs by now: the
// signing key goes to key_file.retired, the staged key to key_file, and
// key_file.next is removed, in that order. A crash between two steps
// leaves files that promote completes later: a staged key already in
// key_file is only removed.
func promote(a *config.Assertion, st *store.Store, now time.Time) error {
	nextFile := a.KeyFile + NextSuffix
	next, hdr, err := readKey(nextFile, st)
	if err != nil || next == nil || now.Before(headerTime(hdr, headerActivates)) {
		return err
	}
	cur, _, err := readKey(a.KeyFile, st)
	if err != nil {
		return err
	}
	if cur != nil && cur.ID != next.ID {
		if err := writeKey(a.KeyFile+RetiredSuffix, st, cur, map[string]string{headerRetired: hdr[headerActivates]}); err != nil {
			return err
		}
	}
	if cur == nil || cur.ID != next.ID {
		if err := writeKey(a.KeyFile, st, next, nil); err != nil {
			return err
		}
	}
	return os.Remove(nextFile)
}

// readKey reads a key file and its PEM headers (nil, nil, nil when the
// file does not exist).
func readKey(path string, st *store.Store) (*Key, map[string]string, error) {
	data, _, err := st.ReadLegacy(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	k, err := parse(data, path)
	if err != nil {
		return nil, nil, err
	}
	b, _ := pem.Decode(data)
	return k, b.Headers, nil
}

// writeKey writes k to path with the given PEM headers.
func writeKey(path string, st *store.Store, k *Key, headers map[string]string) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return err
	}
	return st.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: headers, Bytes: der}))
}

// headerTime reads an RFC 3339 PEM header (zero when absent or bad).
func headerTime(hdr map[string]string, name string) time.Time {
	t, _ := time.Parse(time.RFC3339, hdr[name])
	return t
}
