package authn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/jws"
)

// FuzzParseAndVerify feeds arbitrary strings to the token parser and the
// verifier: no panic, bounded work, and nothing but the issuer's own
// signed tokens may verify.
func FuzzParseAndVerify(f *testing.F) {
	k := keysOnce(f)
	key, _ := jws.NewPublicKey("k-ec", "ES256", &k.ec.PublicKey)
	is := NewIssuer(IssuerOptions{Name: "i", ID: iss, Audiences: []string{"rampart"}, Algorithms: []string{"ES256"}, Keys: NewStaticKeys([]*jws.Key{key}), ClockSkew: time.Minute})
	good := mint(f, `{"alg":"ES256","kid":"k-ec"}`, claimsJSON(time.Now(), ""), "ES256", k.ec)
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(strings.Repeat(".", 100))
	f.Add("a.b.c")
	f.Add(`eyJhbGciOiJFUzI1NiIsImFsZyI6Im5vbmUifQ.e30.AAAA`)
	f.Fuzz(func(t *testing.T, raw string) {
		tok, fl := parse(raw)
		if fl != nil {
			return
		}
		if len(raw) > MaxTokenLength {
			t.Fatal("oversize token parsed")
		}
		if _, fl := is.verify(context.Background(), tok, time.Now(), Policy{}); fl == nil && raw != good {
			t.Fatalf("forged token verified: %q", raw)
		}
	})
}
