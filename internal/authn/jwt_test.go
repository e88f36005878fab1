package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/jws"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

var enc = base64.RawURLEncoding

// testKeys are the issuer's real keys and an attacker's.
type testKeys struct {
	rsa, rsa2, attackerRSA *rsa.PrivateKey
	ec, attackerEC         *ecdsa.PrivateKey
	ec384, ec521           *ecdsa.PrivateKey
	ed                     ed25519.PrivateKey
	hmac                   []byte
}

var keysOnce = func() func(t testing.TB) *testKeys {
	var k *testKeys
	return func(t testing.TB) *testKeys {
		if k != nil {
			return k
		}
		k = &testKeys{}
		var err error
		if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
		k.rsa2, _ = rsa.GenerateKey(rand.Reader, 2048)
		k.attackerRSA, _ = rsa.GenerateKey(rand.Reader, 2048)
		k.ec, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		k.attackerEC, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		k.ec384, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		k.ec521, _ = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		_, k.ed, _ = ed25519.GenerateKey(rand.Reader)
		k.hmac = []byte("0123456789abcdef0123456789abcdef-hmac")
		return k
	}
}()

// sign signs input with alg and the given private key (or HMAC secret).
func sign(t testing.TB, alg string, key any, input string) []byte {
	t.Helper()
	if alg[0] == 'H' {
		hf := map[string]func() hash.Hash{"HS256": sha256.New, "HS384": sha512.New384, "HS512": sha512.New}[alg]
		m := hmac.New(hf, key.([]byte))
		m.Write([]byte(input))
		return m.Sum(nil)
	}
	sig, err := jws.Sign(key.(crypto.Signer), alg, []byte(input))
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	return sig
}

// mint builds a compact JWS from raw header and claims JSON (raw so that
// tests can send duplicate members and odd encodings).
func mint(t testing.TB, header, claims, alg string, key any) string {
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	if key == nil {
		return input + "."
	}
	return input + "." + enc.EncodeToString(sign(t, alg, key, input))
}

const iss = "https://idp.test"

func claimsJSON(now time.Time, extra string) string {
	c := fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":"rampart","iat":%d,"exp":%d,"scope":"read write","jti":"j1"`, iss, now.Unix()-10, now.Unix()+300)
	if extra != "" {
		c += "," + extra
	}
	return c + "}"
}

// harness is an issuer with RS256/PS256/ES256/EdDSA keys behind the jwt
// stage, counting requests that reach the next handler.
type harness struct {
	t       *testing.T
	k       *testKeys
	now     time.Time
	mw      pipeline.Middleware
	reached atomic.Int32
}

func newHarness(t *testing.T, pol Policy, requireTyp string) *harness {
	k := keysOnce(t)
	h := &harness{t: t, k: k, now: time.Now()}
	mk := func(kid, alg string, pub crypto.PublicKey) *jws.Key {
		key, err := jws.NewPublicKey(kid, alg, pub)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	hk, err := jws.NewHMACKey("hs", "HS256", k.hmac)
	if err != nil {
		t.Fatal(err)
	}
	keys := NewStaticKeys([]*jws.Key{
		mk("k-rsa", "RS256", &k.rsa.PublicKey),
		mk("k-ps", "PS256", &k.rsa2.PublicKey),
		mk("k-ec", "ES256", &k.ec.PublicKey),
		mk("k-ed", "EdDSA", k.ed.Public()),
		hk,
	})
	is := NewIssuer(IssuerOptions{
		Name: "idp", ID: iss, Audiences: []string{"rampart"},
		Algorithms: []string{"RS256", "PS256", "ES256", "EdDSA", "HS256"}, Keys: keys,
		RequireType: requireTyp, ClockSkew: 60 * time.Second, RolesClaim: "realm_access.roles", ExposedClaims: []string{"tenant"},
	})
	other := NewIssuer(IssuerOptions{
		Name: "other", ID: "https://other.test", Audiences: []string{"rampart"}, Algorithms: []string{"RS256"},
		Keys: NewStaticKeys([]*jws.Key{mk("k-other", "RS256", &k.attackerRSA.PublicKey)}), ClockSkew: 60 * time.Second,
	})
	h.mw = NewJWT(JWTOptions{Issuers: []*Issuer{is, other}, Policy: pol, CacheSize: 100, Now: func() time.Time { return h.now }})
	return h
}

// do sends a request with the Authorization value and returns the status
// and the challenge header.
func (h *harness) do(auth, query string) (int, string, *pipeline.Scope) {
	req := httptest.NewRequest("GET", "http://gw/api?"+query, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	s := &pipeline.Scope{}
	req = req.WithContext(pipeline.WithScope(req.Context(), s))
	w := httptest.NewRecorder()
	next := h.mw(func(w http.ResponseWriter, r *http.Request) error {
		h.reached.Add(1)
		w.WriteHeader(200)
		return nil
	})
	if err := next(w, req); err != nil {
		pipeline.Render(w, req, pipeline.AsError(err))
	}
	return w.Code, w.Header().Get("Www-Authenticate"), s
}

func (h *harness) rs256(claims string) string {
	return mint(h.t, `{"alg":"RS256","typ":"JWT","kid":"k-rsa"}`, claims, "RS256", h.k.rsa)
}

// TestJWTAttacks is the J1–J24 corpus of docs/security research: each token
// must get 401 with the invalid_token challenge and never reach the next
// stage.
func TestJWTAttacks(t *testing.T) {
	h := newHarness(t, Policy{MaxLifetime: time.Hour}, "")
	k := h.k
	now := h.now
	P := claimsJSON(now, "")
	good := h.rs256(P)
	parts := strings.Split(good, ".")
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&k.rsa.PublicKey))})
	flipMiddle := func(s string) string {
		b := []byte(s)
		i := len(b) / 2
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	// A 2048-bit RSA signature is 256 bytes: 342 base64 chars + 4 unused
	// bits; changing only those bits must not verify (strict decoding).
	lastBits := func(s string) string {
		b := []byte(s)
		c := b[len(b)-1]
		idx := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", c)
		b[len(b)-1] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[idx^1]
		return string(b)
	}
	hmacWith := func(header string, key []byte) string {
		input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(P))
		m := hmac.New(sha256.New, key)
		m.Write([]byte(input))
		return input + "." + enc.EncodeToString(m.Sum(nil))
	}
	ecZero := enc.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT","kid":"k-ec"}`)) + "." + parts[1] + "." + strings.Repeat("A", 86)
	n := elliptic.P256().Params().N.FillBytes(make([]byte, 32))
	ecN := enc.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT","kid":"k-ec"}`)) + "." + parts[1] + "." + enc.EncodeToString(append(n, n...))
	attackerJWKS := 0
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { attackerJWKS++ }))
	defer attacker.Close()
	attackerJWK, _ := json.Marshal(map[string]string{"kty": "RSA", "n": enc.EncodeToString(k.attackerRSA.N.Bytes()), "e": "AQAB"})

	cases := []struct{ name, auth string }{
		{"J1 alg none", "Bearer " + mint(t, `{"alg":"none","typ":"JWT"}`, P, "", nil)},
		{"J1 alg None", "Bearer " + mint(t, `{"alg":"None","typ":"JWT"}`, P, "", nil)},
		{"J1 alg NONE", "Bearer " + mint(t, `{"alg":"NONE","typ":"JWT"}`, P, "", nil)},
		{"J1 alg nOnE", "Bearer " + mint(t, `{"alg":"nOnE","typ":"JWT"}`, P, "", nil)},
		{"J1 alg none with garbage sig", "Bearer " + mint(t, `{"alg":"none","typ":"JWT"}`, P, "", nil) + "Z2FyYmFnZQ"},
		{"J1 alg NONE with garbage sig", "Bearer " + mint(t, `{"alg":"NONE","typ":"JWT"}`, P, "", nil) + "Z2FyYmFnZQ"},
		{"J1 alg None with garbage sig", "Bearer " + mint(t, `{"alg":"None","typ":"JWT"}`, P, "", nil) + "Z2FyYmFnZQ"},
		{"J1 alg nOnE with garbage sig", "Bearer " + mint(t, `{"alg":"nOnE","typ":"JWT"}`, P, "", nil) + "Z2FyYmFnZQ"},
		{"J2 stripped signature", "Bearer " + parts[0] + "." + parts[1] + "."},
		{"J2 flipped signature", "Bearer " + parts[0] + "." + parts[1] + "." + flipMiddle(parts[2])},
		{"J2 unused low bits", "Bearer " + parts[0] + "." + parts[1] + "." + lastBits(parts[2])},
		{"J3 no alg", "Bearer " + mint(t, `{"typ":"JWT","kid":"k-rsa"}`, P, "RS256", k.rsa)},
		{"J3 alg rs256", "Bearer " + mint(t, `{"alg":"rs256","typ":"JWT","kid":"k-rsa"}`, P, "RS256", k.rsa)},
		{"J3 alg HS1", "Bearer " + mint(t, `{"alg":"HS1","typ":"JWT","kid":"k-rsa"}`, P, "HS256", k.hmac)},
		{"J3 alg not a string", "Bearer " + mint(t, `{"alg":["RS256"],"kid":"k-rsa"}`, P, "RS256", k.rsa)},
		{"J4 HS256 keyed with RSA PEM", "Bearer " + hmacWith(`{"alg":"HS256","typ":"JWT","kid":"k-rsa"}`, rsaPEM)},
		{"J4 HS256 keyed with PEM sans newline", "Bearer " + hmacWith(`{"alg":"HS256","typ":"JWT","kid":"k-rsa"}`, []byte(strings.TrimSpace(string(rsaPEM))))},
		{"J4 HS256 keyed with DER", "Bearer " + hmacWith(`{"alg":"HS256","typ":"JWT","kid":"k-rsa"}`, must(x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)))},
		{"J5 psychic signature", "Bearer " + ecZero},
		{"J5 r=s=n", "Bearer " + ecN},
		{"J6 kid traversal", "Bearer " + hmacWith(`{"alg":"HS256","typ":"JWT","kid":"../../../../../../dev/null"}`, []byte{})},
		{"J7 kid SQL injection", "Bearer " + hmacWith(`{"alg":"HS256","typ":"JWT","kid":"x' UNION SELECT 'secret'-- -"}`, []byte("secret"))},
		{"J7 kid command", "Bearer " + hmacWith(`{"alg":"HS256","typ":"JWT","kid":"k1|sleep 5"}`, []byte("secret"))},
		{"J7 10kB kid", "Bearer " + mint(t, `{"alg":"RS256","kid":"`+strings.Repeat("k", 10000)+`"}`, P, "RS256", k.rsa)},
		{"J8 jku", "Bearer " + mint(t, `{"alg":"RS256","typ":"JWT","kid":"attacker","jku":"`+attacker.URL+`/jwks.json"}`, P, "RS256", k.attackerRSA)},
		{"J8 jku with real kid", "Bearer " + mint(t, `{"alg":"RS256","typ":"JWT","kid":"k-rsa","jku":"`+attacker.URL+`/jwks.json"}`, P, "RS256", k.attackerRSA)},
		{"J9 x5u", "Bearer " + mint(t, `{"alg":"RS256","typ":"JWT","x5u":"`+attacker.URL+`/cert.pem"}`, P, "RS256", k.attackerRSA)},
		{"J10 embedded jwk", "Bearer " + mint(t, `{"alg":"RS256","kid":"jwt_tool","jwk":`+string(attackerJWK)+`}`, P, "RS256", k.attackerRSA)},
		{"J10 embedded jwk real kid", "Bearer " + mint(t, `{"alg":"RS256","kid":"k-rsa","jwk":`+string(attackerJWK)+`}`, P, "RS256", k.attackerRSA)},
		{"J10 x5c", "Bearer " + mint(t, `{"alg":"RS256","kid":"k-rsa","x5c":["MIIB"]}`, P, "RS256", k.attackerRSA)},
		{"J11 unknown crit", "Bearer " + mint(t, `{"alg":"RS256","typ":"JWT","kid":"k-rsa","crit":["x-unknown"],"x-unknown":true}`, P, "RS256", k.rsa)},
		{"J11 empty crit", "Bearer " + mint(t, `{"alg":"RS256","typ":"JWT","kid":"k-rsa","crit":[]}`, P, "RS256", k.rsa)},
		{"J11 crit alg", "Bearer " + mint(t, `{"alg":"RS256","typ":"JWT","kid":"k-rsa","crit":["alg"]}`, P, "RS256", k.rsa)},
		{"J11 b64 false", "Bearer " + mint(t, `{"alg":"RS256","typ":"JWT","kid":"k-rsa","b64":false,"crit":["b64"]}`, P, "RS256", k.rsa)},
		{"J12 no exp", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":"rampart","iat":%d}`, iss, now.Unix()))},
		{"J13 expired beyond skew", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":"rampart","iat":%d,"exp":%d}`, iss, now.Unix()-600, now.Unix()-61))},
		{"J13 exp string", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":"rampart","iat":%d,"exp":"4102444800"}`, iss, now.Unix()))},
		{"J13 exp 1e20", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":"rampart","exp":1e20}`, iss))},
		{"J13 exp negative", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":"rampart","exp":-1}`, iss))},
		{"J13 exp above 2^63", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":"rampart","exp":9223372036854775808}`, iss))},
		{"J14 nbf in the future", "Bearer " + h.rs256(claimsJSON(now, fmt.Sprintf(`"nbf":%d`, now.Unix()+120)))},
		{"J15 iat in the future", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":"rampart","iat":%d,"exp":%d}`, iss, now.Unix()+3600, now.Unix()+3700))},
		{"J15 lifetime over max_token_lifetime", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":"rampart","iat":%d,"exp":%d}`, iss, now.Unix()-30*86400, now.Unix()+60))},
		{"J16 other audience", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":"other-api","iat":%d,"exp":%d}`, iss, now.Unix(), now.Unix()+60))},
		{"J16 no audience", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"iat":%d,"exp":%d}`, iss, now.Unix(), now.Unix()+60))},
		{"J16 empty audience", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":"","iat":%d,"exp":%d}`, iss, now.Unix(), now.Unix()+60))},
		{"J16 audience not strings", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":["rampart",1],"iat":%d,"exp":%d}`, iss, now.Unix(), now.Unix()+60))},
		{"J17 other issuer, our key id", "Bearer " + mint(t, `{"alg":"RS256","kid":"k-rsa"}`, strings.Replace(P, iss, "https://other.test", 1), "RS256", k.rsa)},
		{"J17 unknown issuer", "Bearer " + h.rs256(strings.Replace(P, iss, "https://evil.test", 1))},
		{"J17 no issuer", "Bearer " + h.rs256(fmt.Sprintf(`{"sub":"a","aud":"rampart","iat":%d,"exp":%d}`, now.Unix(), now.Unix()+60))},
		{"J20 token in the query", "Bearer " + good + "&access_token=" + good},
		{"J21 duplicate claim", "Bearer " + h.rs256(strings.Replace(P, `"sub":"alice"`, `"sub":"alice","sub":"admin"`, 1))},
		{"J21 duplicate header member", "Bearer " + mint(t, `{"alg":"RS256","alg":"none","kid":"k-rsa"}`, P, "RS256", k.rsa)},
		{"J21 nested duplicate", "Bearer " + h.rs256(claimsJSON(now, `"realm_access":{"roles":["user"],"roles":["admin"]}`))},
		{"J21 invalid UTF-8", "Bearer " + h.rs256(claimsJSON(now, "\"name\":\"\xff\""))},
		{"J22 padding", "Bearer " + parts[0] + "=." + parts[1] + "." + parts[2]},
		{"J22 standard alphabet", "Bearer " + strings.NewReplacer("-", "+", "_", "/").Replace(good)},
		{"J22 whitespace inside", "Bearer " + parts[0] + ". " + parts[1] + "." + parts[2]},
		{"J22 newline inside", "Bearer " + parts[0] + ".\n" + parts[1] + "." + parts[2]},
		{"J22 four segments", "Bearer " + good + ".x"},
		{"J22 two segments", "Bearer " + parts[0] + "." + parts[1]},
		{"J22 JWE", "Bearer " + enc.EncodeToString([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM"}`)) + ".a.b.c.d"},
		{"J22 JWS JSON serialization", `Bearer {"payload":"` + parts[1] + `","signatures":[]}`},
		{"J23 dot flood", "Bearer " + strings.Repeat(".", 100000)},
		{"J23 huge token", "Bearer " + strings.Repeat("a", 9000)},
		{"J24 PS256 with the RS256 key", "Bearer " + mint(t, `{"alg":"PS256","kid":"k-rsa"}`, P, "PS256", k.rsa)},
		{"J24 RS256 with the PS256 key", "Bearer " + mint(t, `{"alg":"RS256","kid":"k-ps"}`, P, "RS256", k.rsa2)},
		{"J24 ES256 with the EdDSA kid", "Bearer " + mint(t, `{"alg":"ES256","kid":"k-ed"}`, P, "ES256", k.ec)},
		{"wrong scheme", "Basic " + good},
		{"lower-case bearer with two tokens", "bearer " + good + " " + good},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.reached.Load()
			query := ""
			auth := tc.auth
			if strings.HasPrefix(tc.name, "J20") {
				auth, query, _ = strings.Cut(tc.auth, "&")
			}
			start := time.Now()
			code, challenge, _ := h.do(auth, query)
			if code != 401 {
				t.Fatalf("status %d, want 401", code)
			}
			if !strings.Contains(challenge, `error="invalid_token"`) && tc.name != "wrong scheme" {
				t.Errorf("challenge %q", challenge)
			}
			if h.reached.Load() != before {
				t.Fatal("request reached the next stage")
			}
			if d := time.Since(start); d > 50*time.Millisecond {
				t.Errorf("took %v", d)
			}
		})
	}
	if attackerJWKS != 0 {
		t.Fatalf("attacker-controlled URL fetched %d times", attackerJWKS)
	}
	// The control: the untampered token passes.
	if code, _, _ := h.do("Bearer "+good, ""); code != 200 {
		t.Fatalf("good token: %d", code)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestJWTAccepted: every supported algorithm verifies, the leeway edges
// hold, and the identity carries subject, scopes, roles and claims.
func TestJWTAccepted(t *testing.T) {
	h := newHarness(t, Policy{MaxLifetime: time.Hour, RequiredClaims: []string{"jti"}}, "")
	k := h.k
	now := h.now
	P := claimsJSON(now, `"realm_access":{"roles":["admin","user"]},"tenant":"acme"`)
	cases := []struct{ name, token string }{
		{"RS256", mint(t, `{"alg":"RS256","kid":"k-rsa"}`, P, "RS256", k.rsa)},
		{"PS256", mint(t, `{"alg":"PS256","kid":"k-ps"}`, P, "PS256", k.rsa2)},
		{"ES256", mint(t, `{"alg":"ES256","kid":"k-ec"}`, P, "ES256", k.ec)},
		{"EdDSA", mint(t, `{"alg":"EdDSA","kid":"k-ed"}`, P, "EdDSA", k.ed)},
		{"HS256", mint(t, `{"alg":"HS256","kid":"hs"}`, P, "HS256", k.hmac)},
		{"EdDSA without kid", mint(t, `{"alg":"EdDSA"}`, P, "EdDSA", k.ed)},
		{"exp 59 s ago within 60 s skew", h.rs256(fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":"rampart","iat":%d,"exp":%d,"jti":"x"}`, iss, now.Unix()-600, now.Unix()-59))},
		{"nbf 30 s ahead", h.rs256(claimsJSON(now, fmt.Sprintf(`"nbf":%d`, now.Unix()+30)))},
		{"aud list", h.rs256(fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":["other","rampart"],"iat":%d,"exp":%d,"jti":"x"}`, iss, now.Unix(), now.Unix()+60))},
		{"fractional exp", h.rs256(fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":"rampart","iat":%d,"exp":%d.5,"jti":"x"}`, iss, now.Unix(), now.Unix()+60))},
	}
	for _, tc := range cases {
		code, _, s := h.do("Bearer "+tc.token, "")
		if code != 200 {
			t.Errorf("%s: status %d", tc.name, code)
			continue
		}
		if s.Identity == nil || s.Identity.Subject != "alice" || s.Identity.Method != "jwt" || s.Identity.Issuer != iss {
			t.Errorf("%s: identity %+v", tc.name, s.Identity)
		}
	}
	_, _, s := h.do("Bearer "+cases[0].token, "")
	id := s.Identity
	if strings.Join(id.Scopes, ",") != "read,write" || strings.Join(id.Roles, ",") != "admin,user" || id.Claims["tenant"] != "acme" || id.TokenID != "j1" {
		t.Errorf("identity %+v", id)
	}
	// Missing required claim.
	if code, _, _ := h.do("Bearer "+h.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":"rampart","iat":%d,"exp":%d}`, iss, now.Unix(), now.Unix()+60)), ""); code != 401 {
		t.Errorf("missing jti: %d", code)
	}
	// No credential: 401 without an error code in the challenge.
	code, ch, _ := h.do("", "")
	if code != 401 || ch != `Bearer realm="rampart"` {
		t.Errorf("no token: %d %q", code, ch)
	}
}

func TestAllAlgorithmsVerify(t *testing.T) {
	k := keysOnce(t)
	cases := []struct {
		alg  string
		priv any
		pub  crypto.PublicKey
	}{
		{"RS256", k.rsa, &k.rsa.PublicKey}, {"RS384", k.rsa, &k.rsa.PublicKey}, {"RS512", k.rsa, &k.rsa.PublicKey},
		{"PS256", k.rsa, &k.rsa.PublicKey}, {"PS384", k.rsa, &k.rsa.PublicKey}, {"PS512", k.rsa, &k.rsa.PublicKey},
		{"ES256", k.ec, &k.ec.PublicKey}, {"ES384", k.ec384, &k.ec384.PublicKey}, {"ES512", k.ec521, &k.ec521.PublicKey},
		{"EdDSA", k.ed, k.ed.Public()},
		{"HS256", k.hmac, nil}, {"HS384", k.hmac, nil}, {"HS512", k.hmac, nil},
	}
	for _, c := range cases {
		var key *jws.Key
		var err error
		if c.pub == nil {
			key, err = jws.NewHMACKey("k", c.alg, k.hmac)
		} else {
			key, err = jws.NewPublicKey("k", c.alg, c.pub)
		}
		if err != nil {
			t.Fatalf("%s: %v", c.alg, err)
		}
		is := NewIssuer(IssuerOptions{Name: "i", ID: iss, Audiences: []string{"rampart"}, Algorithms: []string{c.alg}, Keys: NewStaticKeys([]*jws.Key{key}), ClockSkew: time.Minute})
		tok := mint(t, `{"alg":"`+c.alg+`","kid":"k"}`, claimsJSON(time.Now(), ""), c.alg, c.priv)
		pt, f := parse(tok)
		if f != nil {
			t.Fatalf("%s: %v", c.alg, f)
		}
		if _, f := is.verify(context.Background(), pt, time.Now(), Policy{}); f != nil {
			t.Errorf("%s: %v", c.alg, f)
		}
	}
}

func TestTypRequired(t *testing.T) {
	h := newHarness(t, Policy{}, "at+jwt")
	P := claimsJSON(h.now, "")
	for typ, want := range map[string]int{"at+jwt": 200, "application/at+jwt": 200, "AT+JWT": 200, "JWT": 401, "": 401} {
		hdr := `{"alg":"RS256","kid":"k-rsa","typ":"` + typ + `"}`
		if typ == "" {
			hdr = `{"alg":"RS256","kid":"k-rsa"}`
		}
		if code, _, _ := h.do("Bearer "+mint(t, hdr, P, "RS256", h.k.rsa), ""); code != want {
			t.Errorf("J18 typ %q: %d, want %d", typ, code, want)
		}
	}
}

func TestKeyBinding(t *testing.T) {
	k := keysOnce(t)
	if _, err := jws.NewHMACKey("h", "HS256", []byte("short")); err == nil {
		t.Error("J19 short HMAC secret accepted")
	}
	if _, err := jws.NewPublicKey("r", "ES256", &k.rsa.PublicKey); err == nil {
		t.Error("RSA key bound to ES256")
	}
	if _, err := jws.NewPublicKey("e", "ES384", &k.ec.PublicKey); err == nil {
		t.Error("P-256 key bound to ES384")
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := jws.NewPublicKey("s", "RS256", &small.PublicKey); err == nil {
		t.Error("1024-bit RSA key accepted")
	}
	// A JWK without alg binds to the one allowed algorithm that fits.
	j, _ := json.Marshal(map[string]string{"kty": "RSA", "kid": "a", "n": enc.EncodeToString(k.rsa.N.Bytes()), "e": "AQAB"})
	if key, err := jws.ParseJWK(j, []string{"RS256", "ES256"}); err != nil || key.Alg != "RS256" {
		t.Errorf("alg-less JWK: %v %v", key, err)
	}
	if _, err := jws.ParseJWK(j, []string{"RS256", "PS256"}); err == nil {
		t.Error("alg-less RSA JWK bound with two candidate algorithms")
	}
	// An EC point off the curve is refused.
	bad, _ := json.Marshal(map[string]string{"kty": "EC", "crv": "P-256", "kid": "b", "x": enc.EncodeToString(make([]byte, 32)), "y": enc.EncodeToString(big.NewInt(7).FillBytes(make([]byte, 32)))})
	if _, err := jws.ParseJWK(bad, []string{"ES256"}); err == nil {
		t.Error("off-curve EC key accepted")
	}
	priv, _ := json.Marshal(map[string]string{"kty": "OKP", "crv": "Ed25519", "x": enc.EncodeToString(k.ed.Public().(ed25519.PublicKey)), "d": "AAAA"})
	if _, err := jws.ParseJWK(priv, []string{"EdDSA"}); err == nil {
		t.Error("private JWK accepted as verification key")
	}
}

// TestRevocationAndReplay: a revoked jti is refused even when the token is
// cached; a single-use route accepts each jti once.
func TestRevocationAndReplay(t *testing.T) {
	store := NewJTIStore()
	h := newHarness(t, Policy{JTIs: store}, "")
	tok := h.rs256(claimsJSON(h.now, ""))
	if c, _, _ := h.do("Bearer "+tok, ""); c != 200 {
		t.Fatalf("before revocation: %d", c)
	}
	store.Revoke("j1", time.Time{}, h.now)
	if c, _, _ := h.do("Bearer "+tok, ""); c != 401 {
		t.Fatalf("revoked (cached) token: %d", c)
	}
	store.SetRevoked(nil, h.now) // a reload's configured list leaves runtime revocations
	if c, _, _ := h.do("Bearer "+tok, ""); c != 401 {
		t.Fatalf("a reload dropped a runtime revocation: %d", c)
	}
	store.Lift("j1", "", "", h.now)
	c, _, sc := h.do("Bearer "+tok, "")
	if c != 200 || sc.Identity == nil {
		t.Fatalf("after lifting: %d", c)
	}
	// Every token of a subject, cached ones included, until the time.
	id := sc.Identity
	store.RevokeSubject(id.Issuer, id.Subject, h.now.Add(time.Hour), h.now)
	if c, _, _ := h.do("Bearer "+tok, ""); c != 401 {
		t.Fatalf("subject revoked: %d", c)
	}
	if l := store.List(h.now); len(l) != 1 || l[0].Subject != id.Subject {
		t.Fatalf("list %+v", l)
	}

	once := newHarness(t, Policy{JTIs: NewJTIStore(), SingleUse: true}, "")
	tok = once.rs256(claimsJSON(once.now, ""))
	if c, _, _ := once.do("Bearer "+tok, ""); c != 200 {
		t.Fatalf("first use: %d", c)
	}
	if c, _, _ := once.do("Bearer "+tok, ""); c != 401 {
		t.Fatalf("replay: %d", c)
	}
	noJTI := once.rs256(fmt.Sprintf(`{"sub":"a","iss":%q,"aud":"rampart","iat":%d,"exp":%d}`, iss, once.now.Unix(), once.now.Unix()+60))
	if c, _, _ := once.do("Bearer "+noJTI, ""); c != 401 {
		t.Fatalf("single-use without jti: %d", c)
	}
}

// TestTokenSourceOptIns: query and cookie tokens only where a route opted
// in, and only the named parameter or cookie.
func TestTokenSourceOptIns(t *testing.T) {
	k := keysOnce(t)
	key, _ := jws.NewPublicKey("k-rsa", "RS256", &k.rsa.PublicKey)
	is := NewIssuer(IssuerOptions{Name: "i", ID: iss, Audiences: []string{"rampart"}, Algorithms: []string{"RS256"}, Keys: NewStaticKeys([]*jws.Key{key}), ClockSkew: time.Minute})
	tok := mint(t, `{"alg":"RS256","kid":"k-rsa"}`, claimsJSON(time.Now(), ""), "RS256", k.rsa)
	try := func(o JWTOptions, query, cookie string) int {
		o.Issuers = []*Issuer{is}
		h := NewJWT(o)(func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(200); return nil })
		req := httptest.NewRequest("GET", "http://gw/x?"+query, nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: cookie, Value: tok})
		}
		req = req.WithContext(pipeline.WithScope(req.Context(), &pipeline.Scope{}))
		w := httptest.NewRecorder()
		if err := h(w, req); err != nil {
			return pipeline.AsError(err).Status
		}
		return w.Code
	}
	cases := []struct {
		name          string
		o             JWTOptions
		query, cookie string
		want          int
	}{
		{"query without opt-in", JWTOptions{}, "access_token=" + tok, "", 401},
		{"query with opt-in", JWTOptions{QueryParam: "access_token"}, "access_token=" + tok, "", 200},
		{"other parameter", JWTOptions{QueryParam: "t"}, "access_token=" + tok, "", 401},
		{"cookie without opt-in", JWTOptions{}, "", "session", 401},
		{"cookie with opt-in", JWTOptions{Cookie: "session"}, "", "session", 200},
		{"other cookie", JWTOptions{Cookie: "session"}, "", "other", 401},
	}
	for _, c := range cases {
		if got := try(c.o, c.query, c.cookie); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// BenchmarkRevocationCheck: the runtime revocation check a cached token
// pays on every request, with 1,000 jtis and 1,000 subjects revoked.
func BenchmarkRevocationCheck(b *testing.B) {
	s := NewJTIStore()
	now := time.Now()
	for i := 0; i < 1000; i++ {
		s.Revoke(fmt.Sprintf("jti-%d", i), now.Add(time.Hour), now)
		s.RevokeSubject("https://idp", fmt.Sprintf("user-%d", i), now.Add(time.Hour), now)
	}
	id := &pipeline.Identity{TokenID: "jti-live", Issuer: "https://idp", Subject: "alice"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s.Revoked(id, now) {
			b.Fatal("revoked")
		}
	}
}
