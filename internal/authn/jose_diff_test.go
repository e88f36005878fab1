package authn

import (
	"crypto"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/rampart-gw/rampart/internal/jws"
)

// diffCase is one algorithm of the differential test: Rampart's issuer
// for it, the signing key and the public key for go-jose.
type diffCase struct {
	alg  string
	is   *Issuer
	priv any
	pub  crypto.PublicKey
}

func diffCases(t testing.TB) []diffCase {
	k := keysOnce(t)
	var out []diffCase
	for _, c := range []struct {
		alg  string
		priv any
		pub  crypto.PublicKey
	}{
		{"RS256", k.rsa, &k.rsa.PublicKey},
		{"PS256", k.rsa, &k.rsa.PublicKey},
		{"ES256", k.ec, &k.ec.PublicKey},
		{"ES384", k.ec384, &k.ec384.PublicKey},
		{"EdDSA", k.ed, k.ed.Public()},
	} {
		key, err := jws.NewPublicKey("k", c.alg, c.pub)
		if err != nil {
			t.Fatal(err)
		}
		is := NewIssuer(IssuerOptions{Name: "i", ID: iss, Audiences: []string{"rampart"}, Algorithms: []string{c.alg}, Keys: NewStaticKeys([]*jws.Key{key}), ClockSkew: time.Minute})
		out = append(out, diffCase{c.alg, is, c.priv, c.pub})
	}
	return out
}

// agree checks, for a token Rampart accepted, that go-jose (a mainstream
// JOSE library) verifies it with the same key and reads the same
// subject, issuer, token id and expiry.
func agree(t *testing.T, c diffCase, raw string, subject, issuer, jti string, exp time.Time) {
	t.Helper()
	sig, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(c.alg)})
	if err != nil {
		t.Fatalf("%s: Rampart accepted a token go-jose cannot parse: %v\n%s", c.alg, err, raw)
	}
	payload, err := sig.Verify(c.pub)
	if err != nil {
		t.Fatalf("%s: Rampart accepted a token go-jose does not verify: %v\n%s", c.alg, err, raw)
	}
	// Decoded into a map: claim names are case-sensitive (a struct would
	// match "suB" to sub).
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("%s: payload: %v", c.alg, err)
	}
	str := func(k string) string { v, _ := m[k].(string); return v }
	expV, _ := m["exp"].(float64)
	if str("sub") != subject || str("iss") != issuer || str("jti") != jti || int64(expV) != exp.Unix() {
		t.Fatalf("%s: claims differ: go-jose %v, Rampart sub=%q iss=%q jti=%q exp=%d", c.alg, m, subject, issuer, jti, exp.Unix())
	}
}

// FuzzAgreesWithGoJose signs fuzzed headers and claims with each
// algorithm's real key: whatever Rampart accepts, go-jose must verify with
// the same key and read the same way. Rampart refusing where go-jose
// accepts is expected (its stricter rules: typ, crit, lifetime, required
// claims, duplicate members, key binding).
func FuzzAgreesWithGoJose(f *testing.F) {
	cases := diffCases(f)
	now := time.Now()
	f.Add(uint8(0), `{"alg":"RS256","kid":"k"}`, claimsJSON(now, ""))
	f.Add(uint8(2), `{"alg":"ES256","kid":"k","typ":"JWT"}`, claimsJSON(now, `"nbf":1`))
	f.Add(uint8(4), `{"alg":"EdDSA","kid":"k"}`, claimsJSON(now, `"aud":["rampart","x"]`))
	f.Add(uint8(1), `{"alg":"PS256","kid":"k","alg":"none"}`, claimsJSON(now, ""))
	f.Add(uint8(3), `{"alg":"ES384","kid":"k","crit":["exp"]}`, claimsJSON(now, ""))
	f.Fuzz(func(t *testing.T, which uint8, header, claims string) {
		c := cases[int(which)%len(cases)]
		raw := mint(t, header, claims, c.alg, c.priv)
		// The whole verification path: the issuer is found by the
		// token's own iss, as for a request.
		id, fl := verifyRaw(httptest.NewRequest("GET", "/", nil), raw, map[string]*Issuer{iss: c.is}, Policy{}, nil, now)
		if fl != nil {
			return
		}
		agree(t, c, raw, id.Subject, id.Issuer, id.TokenID, id.ExpiresAt)
	})
}

// TestAgreesWithGoJose runs the seeds of every algorithm: the ordinary
// token is accepted by both.
func TestAgreesWithGoJose(t *testing.T) {
	now := time.Now()
	for _, c := range diffCases(t) {
		raw := mint(t, fmt.Sprintf(`{"alg":%q,"kid":"k"}`, c.alg), claimsJSON(now, ""), c.alg, c.priv)
		id, fl := verifyRaw(httptest.NewRequest("GET", "/", nil), raw, map[string]*Issuer{iss: c.is}, Policy{}, nil, now)
		if fl != nil {
			t.Fatalf("%s: a plain token refused: %v", c.alg, fl)
		}
		agree(t, c, raw, id.Subject, id.Issuer, id.TokenID, id.ExpiresAt)
	}
}
