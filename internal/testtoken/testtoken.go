// Package testtoken mints HS256 JWTs for tests and load generators: a
// flood of new identities needs a token per subject, cheaply, without a
// key pair.
package testtoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"
)

// HS256 is a token for subject from issuer to audience, valid for ttl,
// signed with secret.
func HS256(secret, issuer, audience, subject string, ttl time.Duration) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"iss": issuer, "aud": audience, "sub": subject, "exp": time.Now().Add(ttl).Unix()})
	in := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(claims)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	return in + "." + enc(m.Sum(nil))
}
