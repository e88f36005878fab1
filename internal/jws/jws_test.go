package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"testing"
)

// TestSignVerifies: each supported algorithm's signature verifies with the
// standard library, in JWS form (fixed-size r||s for ECDSA).
func TestSignVerifies(t *testing.T) {
	input := []byte("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9")
	ec := func(c elliptic.Curve) *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(c, rand.Reader); return k }
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, c := range []struct {
		alg  string
		priv crypto.Signer
	}{{"EdDSA", ed}, {"ES256", ec(elliptic.P256())}, {"ES384", ec(elliptic.P384())}, {"ES512", ec(elliptic.P521())},
		{"RS256", rk}, {"PS384", rk}} {
		sig, err := Sign(c.priv, c.alg, input)
		if err != nil {
			t.Fatalf("%s: %v", c.alg, err)
		}
		d := digest(c.alg, input)
		ok := false
		switch k := c.priv.Public().(type) {
		case ed25519.PublicKey:
			ok = ed25519.Verify(k, input, sig)
		case *ecdsa.PublicKey:
			n := len(sig) / 2
			ok = n == (k.Curve.Params().BitSize+7)/8 && ecdsa.Verify(k, d, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:]))
		case *rsa.PublicKey:
			h := map[int]crypto.Hash{32: crypto.SHA256, 48: crypto.SHA384, 64: crypto.SHA512}[len(d)]
			if c.alg[0] == 'P' {
				ok = rsa.VerifyPSS(k, h, d, sig, nil) == nil
			} else {
				ok = rsa.VerifyPKCS1v15(k, h, d, sig) == nil
			}
		}
		if !ok {
			t.Errorf("%s: signature does not verify", c.alg)
		}
	}
	if _, err := Sign(ed, "ES256", input); err == nil {
		t.Error("an Ed25519 key signed ES256")
	}
}
