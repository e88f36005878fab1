// Package assert signs the gateway's identity assertions: short-lived JWTs
// (EdDSA or ES256) that tell a service who called, through which gateway,
// for which method, host and path. Services verify them with the public
// package verify against the gateway's JWKS, so a request that did not
// come through the gateway is refused.
package assert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/jws"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/store"
)

// Type is the "typ" header of assertions, so that no other token can be
// mistaken for one.
const Type = "rampart-assertion+jwt"

var b64 = base64.RawURLEncoding

// Key is a signing key with its id.
type Key struct {
	ID   string
	Alg  string
	priv crypto.Signer
}

// LoadOrCreate reads a PEM private key (Ed25519 or P-256) from path
// through st (encrypted at rest when st has a master key; nil: plaintext);
// if the file does not exist it generates one of alg and writes it, so
// the gateway's key survives restarts. A plaintext key found while st has
// a master key is rewritten encrypted.
func LoadOrCreate(path, alg string, st *store.Store) (*Key, error) {
	data, plain, err := st.ReadLegacy(path)
	if errors.Is(err, os.ErrNotExist) {
		return create(path, alg, st)
	}
	if err != nil {
		return nil, err
	}
	k, err := parse(data, path)
	if err == nil && plain && st != nil {
		err = st.Write(path, data)
	}
	return k, err
}

func create(path, alg string, st *store.Store) (*Key, error) {
	priv, err := generate(alg)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	if err := st.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, err
	}
	return newKey(priv)
}

// generate makes a new signing key for alg (EdDSA or ES256).
func generate(alg string) (crypto.Signer, error) {
	switch alg {
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("unsupported assertion algorithm %q (EdDSA or ES256)", alg)
}

func parse(data []byte, path string) (*Key, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		if ek, err2 := x509.ParseECPrivateKey(b.Bytes); err2 == nil {
			k, err = ek, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return newKey(s)
}

func newKey(priv crypto.Signer) (*Key, error) {
	k := &Key{priv: priv}
	switch p := priv.Public().(type) {
	case ed25519.PublicKey:
		k.Alg = "EdDSA"
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, errors.New("ECDSA assertion keys must be P-256")
		}
		k.Alg = "ES256"
	default:
		return nil, fmt.Errorf("unsupported key type %T", p)
	}
	// The kid is a thumbprint-like hash of the public key, stable across
	// restarts and distinct per key.
	der, _ := x509.MarshalPKIXPublicKey(priv.Public())
	sum := sha256.Sum256(der)
	k.ID = b64.EncodeToString(sum[:12])
	return k, nil
}

// Public returns the key's public half.
func (k *Key) Public() (crypto.PublicKey, error) { return k.priv.Public(), nil }

// JWK returns the public JWK of the key.
func (k *Key) JWK() map[string]string { return jws.PublicJWK(k.priv.Public(), k.ID, k.Alg) }

// Signer signs assertions with the current key and publishes the current
// and previous keys (rotation with overlap: services keep accepting
// assertions signed with the previous key while they are still valid).
type Signer struct {
	issuer   string
	ttl      time.Duration
	current  *Key
	previous []*Key
	header   string // precomputed protected header, base64url
	jwks     []byte
	// next is a staged key: published, signing from activates on.
	next       *Key
	nextHeader string
	activates  time.Time

	// reuse > 0 lets one assertion serve the same caller, audience,
	// method, host and path for that long (signing is the costliest step
	// of a request; see BENCHMARKS.md). Its jti and rid are then those of
	// the first request, so services must not use a replay cache.
	reuse time.Duration
	mu    sync.Mutex
	cache map[reuseKey]reused
}

type reuseKey struct {
	id                      *pipeline.Identity
	aud, method, host, path string
}

type reused struct {
	token string
	until time.Time
}

// SetReuse enables assertion reuse within d (0 disables it).
func (s *Signer) SetReuse(d time.Duration) {
	s.reuse = d
	if d > 0 {
		s.cache = map[reuseKey]reused{}
	}
}

// NewSigner builds a signer.
func NewSigner(issuer string, ttl time.Duration, current *Key, previous []*Key) *Signer {
	s := &Signer{issuer: issuer, ttl: ttl, current: current, previous: previous, header: protectedHeader(current)}
	s.publish()
	return s
}

// stage publishes next and signs with it from activates on.
func (s *Signer) stage(next *Key, activates time.Time) {
	s.next, s.nextHeader, s.activates = next, protectedHeader(next), activates
	s.publish()
}

// publish computes the JWKS: the signing key, a staged one, the previous
// ones.
func (s *Signer) publish() {
	keys := []map[string]string{s.current.JWK()}
	if s.next != nil {
		keys = append(keys, s.next.JWK())
	}
	for _, p := range s.previous {
		keys = append(keys, p.JWK())
	}
	s.jwks, _ = json.Marshal(map[string]any{"keys": keys})
}

func protectedHeader(k *Key) string {
	h, _ := json.Marshal(map[string]string{"alg": k.Alg, "typ": Type, "kid": k.ID})
	return b64.EncodeToString(h)
}

// signingKey is the key that signs at now, with its protected header.
func (s *Signer) signingKey(now time.Time) (*Key, string) {
	if s.next != nil && !now.Before(s.activates) {
		return s.next, s.nextHeader
	}
	return s.current, s.header
}

// JWKS is the public key set, JSON.
func (s *Signer) JWKS() []byte { return s.jwks }

// Binding is the hash that ties an assertion to one request:
// base64url(SHA-256(method "\n" host "\n" path)), host the canonical
// X-Forwarded-Host the gateway sends (lower case, no port; empty when it
// sends none) and path as forwarded.
func Binding(method, host, path string) string {
	sum := sha256.Sum256([]byte(method + "\n" + host + "\n" + path))
	return b64.EncodeToString(sum[:])
}

// Sign returns the assertion for one request to audience (the upstream):
// freshly signed, or, with reuse on, one signed for the same caller and
// request shape less than the reuse window ago.
func (s *Signer) Sign(aud, method string, sc *pipeline.Scope, now time.Time) (string, error) {
	if s.reuse <= 0 || sc.Identity == nil {
		return s.sign(aud, method, sc, now)
	}
	k := reuseKey{id: sc.Identity, aud: aud, method: method, host: sc.ForwardedHost, path: sc.Path}
	s.mu.Lock()
	if r, ok := s.cache[k]; ok && now.Before(r.until) {
		s.mu.Unlock()
		return r.token, nil
	}
	s.mu.Unlock()
	tok, err := s.sign(aud, method, sc, now)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if len(s.cache) >= 10000 {
		for kk, r := range s.cache {
			if !now.Before(r.until) {
				delete(s.cache, kk)
			}
		}
		if len(s.cache) >= 10000 {
			clear(s.cache)
		}
	}
	s.cache[k] = reused{token: tok, until: now.Add(s.reuse)}
	s.mu.Unlock()
	return tok, nil
}

func (s *Signer) sign(aud, method string, sc *pipeline.Scope, now time.Time) (string, error) {
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	var b strings.Builder
	b.Grow(384)
	b.WriteString(`{"iss":`)
	writeJSON(&b, s.issuer)
	b.WriteString(`,"aud":`)
	writeJSON(&b, aud)
	iat := now.Unix()
	b.WriteString(`,"iat":`)
	b.WriteString(strconv.FormatInt(iat, 10))
	b.WriteString(`,"exp":`)
	b.WriteString(strconv.FormatInt(iat+int64(s.ttl/time.Second), 10))
	b.WriteString(`,"jti":"`)
	b.WriteString(b64.EncodeToString(jti[:]))
	b.WriteString(`","rid":`)
	writeJSON(&b, sc.RequestID)
	b.WriteString(`,"htb":"`)
	b.WriteString(Binding(method, sc.ForwardedHost, sc.Path))
	b.WriteByte('"')
	if id := sc.Identity; id != nil {
		b.WriteString(`,"sub":`)
		writeJSON(&b, id.Subject)
		b.WriteString(`,"auth":`)
		writeJSON(&b, id.Method)
		if len(id.Scopes) > 0 {
			b.WriteString(`,"scope":`)
			writeJSON(&b, strings.Join(id.Scopes, " "))
		}
		if len(id.Roles) > 0 {
			b.WriteString(`,"roles":`)
			r, _ := json.Marshal(id.Roles)
			b.Write(r)
		}
	}
	b.WriteByte('}')
	k, header := s.signingKey(now)
	return jws.Compact(k.priv, k.Alg, header, []byte(b.String()))
}

func writeJSON(b *strings.Builder, s string) {
	e, _ := json.Marshal(s)
	b.Write(e)
}
