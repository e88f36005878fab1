// Package jws is Rampart's one JOSE package (RFC 7515/7517/7518): the
// strict compact-JWS parser (parse.go), verification keys bound to one
// algorithm each, JWK and PEM key parsing (keys.go), and signing with JWK
// encoding for the gateway's own tokens (identity assertions, the
// development IdP). authn verifies client tokens with it, assert and
// devidp sign with it, and the public verify package checks assertions
// with it. A differential test against go-jose (in authn) holds it to a
// mainstream library's answers, except where its documented stricter
// rules refuse.
package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
)

// Sign returns the JWS signature of input with priv for alg: EdDSA,
// ES256/384/512 (fixed-size r||s), RS256/384/512 or PS256/384/512.
func Sign(priv crypto.Signer, alg string, input []byte) ([]byte, error) {
	if len(alg) < 5 {
		return nil, fmt.Errorf("algorithm %q", alg)
	}
	switch k := priv.(type) {
	case ed25519.PrivateKey:
		if alg != "EdDSA" {
			return nil, fmt.Errorf("an Ed25519 key signs EdDSA, not %s", alg)
		}
		return ed25519.Sign(k, input), nil
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest(alg, input))
		if err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out, nil
	case *rsa.PrivateKey:
		h := digest(alg, input)
		ch := map[int]crypto.Hash{32: crypto.SHA256, 48: crypto.SHA384, 64: crypto.SHA512}[len(h)]
		if alg[0] == 'P' {
			return rsa.SignPSS(rand.Reader, k, ch, h, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, k, ch, h)
	}
	return nil, errors.New("unsupported key type")
}

// digest hashes input with the SHA-2 function of alg's size suffix.
func digest(alg string, b []byte) []byte {
	switch alg[len(alg)-3:] {
	case "384":
		h := sha512.Sum384(b)
		return h[:]
	case "512":
		h := sha512.Sum512(b)
		return h[:]
	}
	h := sha256.Sum256(b)
	return h[:]
}

var b64 = base64.RawURLEncoding

// Compact returns the compact serialisation of a JWS over payload:
// base64url(header).base64url(payload).base64url(signature). header is
// the protected header, already base64url-encoded (signers precompute it).
func Compact(priv crypto.Signer, alg, header string, payload []byte) (string, error) {
	input := header + "." + b64.EncodeToString(payload)
	sig, err := Sign(priv, alg, []byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// PublicJWK is the public JWK (RFC 7517) of a signing key: EC (with
// fixed-size coordinates), RSA or OKP Ed25519, with kid, alg and use=sig.
func PublicJWK(pub crypto.PublicKey, kid, alg string) map[string]string {
	j := map[string]string{"kid": kid, "alg": alg, "use": "sig"}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		j["kty"], j["crv"] = "EC", k.Curve.Params().Name
		j["x"] = b64.EncodeToString(k.X.FillBytes(make([]byte, size)))
		j["y"] = b64.EncodeToString(k.Y.FillBytes(make([]byte, size)))
	case *rsa.PublicKey:
		j["kty"] = "RSA"
		j["n"] = b64.EncodeToString(k.N.Bytes())
		j["e"] = b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())
	case ed25519.PublicKey:
		j["kty"], j["crv"], j["x"] = "OKP", "Ed25519", b64.EncodeToString(k)
	}
	return j
}
