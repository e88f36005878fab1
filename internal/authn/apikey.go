package authn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/store"

	"github.com/rampart-gw/rampart/internal/jws"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// API keys look like rpk_<prefix>_<secret>. Only the prefix (public, for
// lookup) and an HMAC-SHA-256 of the whole key under the server secret are
// stored: a leaked key file reveals no usable key, and without the server
// secret not even a guess can be checked offline.
const apiKeyPrefix = "rpk_"

// APIKeyRecord is one stored key.
type APIKeyRecord struct {
	// Prefix is the key's public lookup id.
	Prefix string `json:"prefix"`
	// Hash is hex(HMAC-SHA-256(server secret, key)).
	Hash string `json:"hash"`
	// Consumer is who the key belongs to (the identity's subject).
	Consumer string `json:"consumer"`
	// Scopes granted to the key.
	Scopes []string `json:"scopes,omitempty"`
	// ExpiresAt, if set, ends the key's validity.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// CreatedAt is when the key was made.
	CreatedAt time.Time `json:"created_at"`
	// Disabled keys are refused (authn.revoked) until enabled again.
	Disabled bool `json:"disabled,omitempty"`
}

// APIKeyFile is the on-disk key store.
type APIKeyFile struct {
	Keys []APIKeyRecord `json:"keys"`
}

// NewAPIKey generates a key and its record. The key is shown once; only
// the record is stored.
func NewAPIKey(secret []byte, consumer string, scopes []string, ttl time.Duration, now time.Time) (string, APIKeyRecord, error) {
	if len(secret) < jws.MinHMACKeyBytes {
		return "", APIKeyRecord{}, fmt.Errorf("the API key secret must be at least %d bytes", jws.MinHMACKeyBytes)
	}
	if consumer == "" {
		return "", APIKeyRecord{}, errors.New("a consumer is required")
	}
	var p [6]byte
	var s [32]byte
	if _, err := rand.Read(p[:]); err != nil {
		return "", APIKeyRecord{}, err
	}
	if _, err := rand.Read(s[:]); err != nil {
		return "", APIKeyRecord{}, err
	}
	prefix := hex.EncodeToString(p[:])
	key := apiKeyPrefix + prefix + "_" + base64.RawURLEncoding.EncodeToString(s[:])
	rec := APIKeyRecord{Prefix: prefix, Hash: hex.EncodeToString(keyMAC(secret, key)), Consumer: consumer, Scopes: scopes, CreatedAt: now.UTC()}
	if ttl > 0 {
		exp := now.Add(ttl).UTC()
		rec.ExpiresAt = &exp
	}
	return key, rec, nil
}

func keyMAC(secret []byte, key string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	return m.Sum(nil)
}

// LoadAPIKeys reads a key store file through st (encrypted at rest when
// st has a master key; a plaintext file from before is still read).
func LoadAPIKeys(path string, st *store.Store) (*APIKeyFile, error) {
	data, _, err := st.ReadLegacy(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &APIKeyFile{}, nil
		}
		return nil, err
	}
	var f APIKeyFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, r := range f.Keys {
		if len(r.Prefix) != 12 || len(r.Hash) != 64 || r.Consumer == "" {
			return nil, fmt.Errorf("%s: keys[%d] is malformed", path, i)
		}
		if seen[r.Prefix] {
			return nil, fmt.Errorf("%s: keys[%d]: duplicate prefix %s", path, i, r.Prefix)
		}
		seen[r.Prefix] = true
	}
	return &f, nil
}

// SaveAPIKeys writes a key store file atomically, mode 0600, through st.
func SaveAPIKeys(path string, f *APIKeyFile, st *store.Store) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return st.Write(path, append(data, '\n'))
}

// APIKeyMethod authenticates API keys from one header.
type APIKeyMethod struct {
	header string
	secret []byte
	byPfx  map[string]APIKeyRecord
}

// NewAPIKeyMethod builds the api_key method over a loaded store.
func NewAPIKeyMethod(header string, secret []byte, f *APIKeyFile) *APIKeyMethod {
	m := &APIKeyMethod{header: http.CanonicalHeaderKey(header), secret: secret, byPfx: map[string]APIKeyRecord{}}
	for _, r := range f.Keys {
		m.byPfx[r.Prefix] = r
	}
	return m
}

// Name implements Method.
func (m *APIKeyMethod) Name() string { return "apikey" }

// Authenticate implements Method.
func (m *APIKeyMethod) Authenticate(r *http.Request, now time.Time) (*pipeline.Identity, *Failure) {
	if keyInQuery(r.URL.RawQuery) {
		return nil, fail(ReasonMalformed, "API key in the query string")
	}
	vals := r.Header[m.header]
	switch {
	case len(vals) == 0:
		return nil, fail(ReasonMissing, "no %s header", m.header)
	case len(vals) > 1:
		return nil, fail(ReasonMalformed, "several %s headers", m.header)
	case len(vals[0]) > 128:
		return nil, fail(ReasonTooLarge, "API key of %d bytes", len(vals[0]))
	}
	key := vals[0]
	rest, ok := strings.CutPrefix(key, apiKeyPrefix)
	if !ok || len(rest) < 13 || rest[12] != '_' {
		return nil, fail(ReasonMalformed, "not a rampart API key")
	}
	rec, found := m.byPfx[rest[:12]]
	want := make([]byte, 32)
	if found {
		if b, err := hex.DecodeString(rec.Hash); err == nil {
			want = b
		}
	}
	// Compare even when the prefix is unknown, so timing says nothing
	// about which prefixes exist.
	if !hmac.Equal(keyMAC(m.secret, key), want) || !found {
		return nil, fail(ReasonSignature, "API key does not match")
	}
	if rec.Disabled {
		return nil, fail(ReasonRevoked, "API key %s disabled", rec.Prefix)
	}
	if rec.ExpiresAt != nil && !now.Before(*rec.ExpiresAt) {
		return nil, fail(ReasonExpired, "API key expired")
	}
	id := &pipeline.Identity{Subject: rec.Consumer, Issuer: "rampart", Method: "apikey", Scopes: rec.Scopes, TokenID: rec.Prefix}
	if rec.ExpiresAt != nil {
		id.ExpiresAt = *rec.ExpiresAt
	}
	return id, nil
}

func keyInQuery(q string) bool {
	if q == "" {
		return false
	}
	for pair := range strings.SplitSeq(q, "&") {
		k, _, _ := strings.Cut(pair, "=")
		switch strings.ToLower(k) {
		case "api_key", "apikey", "api-key", "x-api-key":
			return true
		}
	}
	return false
}
