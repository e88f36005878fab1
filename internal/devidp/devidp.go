// Package devidp is a development identity provider: it signs test
// tokens and serves their JWKS and OpenID discovery document on loopback.
// It backs `rampart quickstart` and `rampart token`; it is not for
// production use (keys are ephemeral or read from a local file).
package devidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/rampart-gw/rampart/internal/jws"
)

var b64 = base64.RawURLEncoding

// Signer signs tokens with one private key.
type Signer struct {
	// KID is the key id put in tokens and the JWKS.
	KID string
	// Alg is the JWS algorithm.
	Alg  string
	priv crypto.Signer
}

// NewES256 returns a signer with a fresh P-256 key.
func NewES256(kid string) (*Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Signer{KID: kid, Alg: "ES256", priv: k}, nil
}

// LoadSigner reads a PEM private key (PKCS#8, SEC 1 or PKCS#1) and picks
// the algorithm from its type: ES256/384/512 by curve, RS256, or EdDSA.
func LoadSigner(path, kid, alg string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s := &Signer{KID: kid}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		s.priv, s.Alg = k, map[int]string{256: "ES256", 384: "ES384", 521: "ES512"}[k.Curve.Params().BitSize]
	case *rsa.PrivateKey:
		s.priv, s.Alg = k, "RS256"
		if alg == "PS256" || alg == "RS384" || alg == "RS512" || alg == "PS384" || alg == "PS512" {
			s.Alg = alg
		}
	case ed25519.PrivateKey:
		s.priv, s.Alg = k, "EdDSA"
	default:
		return nil, fmt.Errorf("%s: unsupported key type %T", path, key)
	}
	if alg != "" && alg != s.Alg {
		return nil, fmt.Errorf("key in %s signs %s, not %s", path, s.Alg, alg)
	}
	return s, nil
}

// Claims of a minted token.
type Claims struct {
	Issuer   string
	Subject  string
	Audience string
	TTL      time.Duration
	Scope    string
	Extra    map[string]any
	// Type is the typ header; default "at+jwt".
	Type string
}

// Sign mints a compact JWS.
func (s *Signer) Sign(c Claims) (string, error) {
	now := time.Now().Unix()
	typ := c.Type
	if typ == "" {
		typ = "at+jwt"
	}
	hdr, _ := json.Marshal(map[string]string{"alg": s.Alg, "typ": typ, "kid": s.KID})
	body := map[string]any{"iss": c.Issuer, "sub": c.Subject, "aud": c.Audience, "iat": now, "exp": now + int64(c.TTL/time.Second)}
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	body["jti"] = b64.EncodeToString(jti[:])
	if c.Scope != "" {
		body["scope"] = c.Scope
	}
	for k, v := range c.Extra {
		body[k] = v
	}
	pl, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	return jws.Compact(s.priv, s.Alg, b64.EncodeToString(hdr), pl)
}

// JWK returns the public JWK of the signer.
func (s *Signer) JWK() map[string]string { return jws.PublicJWK(s.priv.Public(), s.KID, s.Alg) }

// Handler serves /.well-known/openid-configuration and /jwks for issuer.
func Handler(issuer string, signers ...*Signer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": issuer + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		keys := make([]map[string]string, 0, len(signers))
		for _, s := range signers {
			keys = append(keys, s.JWK())
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=300")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	return mux
}
