package testtoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A minted token carries the claims asked for and verifies under its
// secret only.
func TestHS256(t *testing.T) {
	tok := HS256("s3cret", "https://iss", "aud", "alice", time.Hour)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%q", tok)
	}
	var claims map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(raw, &claims); err != nil || claims["sub"] != "alice" || claims["iss"] != "https://iss" || claims["aud"] != "aud" {
		t.Fatalf("claims %v %v", claims, err)
	}
	for secret, want := range map[string]bool{"s3cret": true, "other": false} {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(parts[0] + "." + parts[1]))
		if got := base64.RawURLEncoding.EncodeToString(m.Sum(nil)) == parts[2]; got != want {
			t.Fatalf("verifies under %q: %v", secret, got)
		}
	}
}
