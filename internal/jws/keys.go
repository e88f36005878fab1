package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"slices"

	"github.com/rampart-gw/rampart/internal/config"
)

// IsHMAC reports whether alg is a symmetric (HS*) algorithm.
func IsHMAC(alg string) bool { return alg == "HS256" || alg == "HS384" || alg == "HS512" }

// MinHMACKeyBytes is the shortest HS* secret accepted (RFC 7518 §3.2: a key
// at least as long as the hash output; 32 bytes for all HS* here as floor).
const MinHMACKeyBytes = 32

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// Key is a verification key bound to exactly one algorithm.
type Key struct {
	ID  string
	Alg string
	pub crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey
	mac []byte           // HS* secret
}

// NewHMACKey binds a shared secret to an HS* algorithm.
func NewHMACKey(kid, alg string, secret []byte) (*Key, error) {
	if !IsHMAC(alg) {
		return nil, fmt.Errorf("algorithm %s is not HMAC", alg)
	}
	if len(secret) < MinHMACKeyBytes {
		return nil, fmt.Errorf("%s secret must be at least %d bytes", alg, MinHMACKeyBytes)
	}
	return &Key{ID: kid, Alg: alg, mac: slices.Clone(secret)}, nil
}

// NewPublicKey binds a public key to an algorithm, checking that they fit.
func NewPublicKey(kid, alg string, pub crypto.PublicKey) (*Key, error) {
	if err := keyFits(alg, pub); err != nil {
		return nil, err
	}
	return &Key{ID: kid, Alg: alg, pub: pub}, nil
}

func keyFits(alg string, pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg[0] != 'R' && alg[0] != 'P' {
			return fmt.Errorf("RSA key cannot be used with %s", alg)
		}
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key of %d bits is too small (minimum %d)", k.N.BitLen(), MinRSABits)
		}
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if want == nil || k.Curve != want {
			return fmt.Errorf("EC key on %s cannot be used with %s", k.Curve.Params().Name, alg)
		}
	case ed25519.PublicKey:
		if alg != "EdDSA" || len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("Ed25519 key cannot be used with %s", alg)
		}
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	if !slices.Contains(config.JWTAlgorithms, alg) || IsHMAC(alg) {
		return fmt.Errorf("unsupported algorithm %q", alg)
	}
	return nil
}

func hashFor(alg string) (crypto.Hash, func() hash.Hash) {
	switch alg[len(alg)-3:] {
	case "384":
		return crypto.SHA384, sha512.New384
	case "512":
		return crypto.SHA512, sha512.New
	}
	return crypto.SHA256, sha256.New
}

var errBadSig = errors.New("signature does not verify")

// Verify checks sig over input with the key's own algorithm. The token's
// alg must equal the key's: the algorithm is never taken from the token.
func (k *Key) Verify(alg, input string, sig []byte) error {
	if alg != k.Alg {
		return fmt.Errorf("token alg %s, key bound to %s", alg, k.Alg)
	}
	if k.Alg == "EdDSA" {
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(k.pub.(ed25519.PublicKey), []byte(input), sig) {
			return errBadSig
		}
		return nil
	}
	ch, hf := hashFor(k.Alg)
	h := hf()
	h.Write([]byte(input))
	digest := h.Sum(nil)
	switch k.Alg[0] {
	case 'H':
		if !hmac.Equal(sig, hmacSum(hf, k.mac, input)) {
			return errBadSig
		}
	case 'R':
		if rsa.VerifyPKCS1v15(k.pub.(*rsa.PublicKey), ch, digest, sig) != nil {
			return errBadSig
		}
	case 'P':
		if rsa.VerifyPSS(k.pub.(*rsa.PublicKey), ch, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: ch}) != nil {
			return errBadSig
		}
	case 'E':
		pub := k.pub.(*ecdsa.PublicKey)
		size := (pub.Curve.Params().BitSize + 7) / 8
		// JWS ECDSA signatures are exactly r||s, each size bytes.
		if len(sig) != 2*size {
			return errBadSig
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		n := pub.Curve.Params().N
		if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
			return errBadSig // psychic signatures (CVE-2022-21449) and r,s ≥ n
		}
		if !ecdsa.Verify(pub, digest, r, s) {
			return errBadSig
		}
	default:
		return errBadSig
	}
	return nil
}

func hmacSum(hf func() hash.Hash, key []byte, input string) []byte {
	m := hmac.New(hf, key)
	m.Write([]byte(input))
	return m.Sum(nil)
}

// jwk is the JSON Web Key members Rampart reads.
type jwk struct {
	Kty string   `json:"kty"`
	Kid string   `json:"kid"`
	Alg string   `json:"alg"`
	Use string   `json:"use"`
	N   string   `json:"n"`
	E   string   `json:"e"`
	Crv string   `json:"crv"`
	X   string   `json:"x"`
	Y   string   `json:"y"`
	D   string   `json:"d"`
	Ops []string `json:"key_ops"`
}

// ParseJWKS parses a JWK Set into keys usable with the allowed algorithms.
// A key without "alg" is bound to the one allowed algorithm that fits its
// type; if several fit, it is skipped (a key must have exactly one
// algorithm). Keys for encryption ("use":"enc"), private keys and keys that
// fit no allowed algorithm are skipped and reported in skipped.
func ParseJWKS(data []byte, allowed []string) (keys []*Key, skipped []string, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, nil, fmt.Errorf("JWKS: %w", err)
	}
	if set.Keys == nil {
		return nil, nil, errors.New("JWKS: no \"keys\" member")
	}
	for i, raw := range set.Keys {
		k, err := parseJWK(raw, allowed)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("keys[%d]: %v", i, err))
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// ParseJWK parses one JWK (a static key file may hold one).
func ParseJWK(data []byte, allowed []string) (*Key, error) { return parseJWK(data, allowed) }

func parseJWK(raw []byte, allowed []string) (*Key, error) {
	var j jwk
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, err
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("kid %q: use %q", j.Kid, j.Use)
	}
	if j.D != "" {
		return nil, fmt.Errorf("kid %q: private key material in a verification key set", j.Kid)
	}
	pub, fits, err := j.publicKey()
	if err != nil {
		return nil, err
	}
	alg := j.Alg
	if alg == "" {
		var cands []string
		for _, a := range fits {
			if slices.Contains(allowed, a) {
				cands = append(cands, a)
			}
		}
		if len(cands) != 1 {
			return nil, fmt.Errorf("kid %q: no \"alg\" and %d allowed algorithms fit the key", j.Kid, len(cands))
		}
		alg = cands[0]
	}
	if !slices.Contains(allowed, alg) {
		return nil, fmt.Errorf("kid %q: algorithm %s not allowed for this issuer", j.Kid, alg)
	}
	return NewPublicKey(j.Kid, alg, pub)
}

// publicKey decodes the key material of a JWK and names the algorithms
// its kind of key can verify. Security: EC points are checked to be on
// their curve (invalid-curve attacks).
func (j jwk) publicKey() (crypto.PublicKey, []string, error) {
	switch j.Kty {
	case "RSA":
		n, err1 := strict.DecodeString(j.N)
		e, err2 := strict.DecodeString(j.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return nil, nil, fmt.Errorf("kid %q: bad RSA parameters", j.Kid)
		}
		ev := 0
		for _, b := range e {
			ev = ev<<8 | int(b)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ev}, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, nil
	case "EC":
		curve, alg := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[j.Crv], map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[j.Crv]
		if curve == nil {
			return nil, nil, fmt.Errorf("kid %q: unsupported curve %q", j.Kid, j.Crv)
		}
		x, err1 := strict.DecodeString(j.X)
		y, err2 := strict.DecodeString(j.Y)
		size := (curve.Params().BitSize + 7) / 8
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return nil, nil, fmt.Errorf("kid %q: bad EC parameters", j.Kid)
		}
		// Reject points not on the curve (invalid-curve attacks).
		uncompressed := append(append([]byte{4}, x...), y...)
		k, err := ecdsa.ParseUncompressedPublicKey(curve, uncompressed)
		if err != nil {
			return nil, nil, fmt.Errorf("kid %q: point not on curve", j.Kid)
		}
		return k, []string{alg}, nil
	case "OKP":
		x, err := strict.DecodeString(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, nil, fmt.Errorf("kid %q: unsupported OKP key", j.Kid)
		}
		return ed25519.PublicKey(x), []string{"EdDSA"}, nil
	}
	return nil, nil, fmt.Errorf("kid %q: unsupported kty %q", j.Kid, j.Kty)
}

// ParsePEMPublicKey reads a PEM public key or certificate.
func ParsePEMPublicKey(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return c.PublicKey, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a public key or certificate", block.Type)
}
