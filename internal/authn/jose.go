// Package authn authenticates callers. This file is the strict JWS compact
// parser: it accepts only what RFC 7515/7519 and RFC 8725 allow and
// refuses the encodings that let two parsers disagree about a token.
package authn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// Reason codes of failed authentication. The client always sees the same
// generic 401; these go to the logs.
const (
	ReasonMissing      = "authn.missing"
	ReasonMalformed    = "authn.malformed"
	ReasonAlgorithm    = "authn.bad_algorithm"
	ReasonCrit         = "authn.unsupported_crit"
	ReasonType         = "authn.bad_type"
	ReasonIssuer       = "authn.unknown_issuer"
	ReasonUnknownKID   = "authn.unknown_kid"
	ReasonSignature    = "authn.bad_signature"
	ReasonExpired      = "authn.expired"
	ReasonNoExpiry     = "authn.no_expiry"
	ReasonNotYetValid  = "authn.not_yet_valid"
	ReasonIssuedFuture = "authn.issued_in_future"
	ReasonLifetime     = "authn.lifetime_too_long"
	ReasonAudience     = "authn.bad_audience"
	ReasonClaims       = "authn.missing_claim"
	ReasonTooLarge     = "authn.too_large"
	ReasonRevoked      = "authn.revoked"
	ReasonReplayed     = "authn.replayed"
	ReasonKeysUnavail  = "authn.keys_unavailable"
)

// Failure is why a credential was refused.
type Failure struct {
	Reason string
	Detail string
}

func (f *Failure) Error() string {
	if f.Detail == "" {
		return f.Reason
	}
	return f.Reason + ": " + f.Detail
}

func fail(reason, format string, args ...any) *Failure {
	return &Failure{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// b64 is base64url without padding, rejecting non-zero trailing bits, so
// that each token has exactly one encoding (a token whose signature differs
// only in unused bits is not the same token).
var b64 = base64.RawURLEncoding.Strict()

// header is the protected header of a JWS.
type header struct {
	Alg  string
	Kid  string
	Typ  string
	Crit bool // any "crit" member (no extension is supported)
	B64  bool // a "b64" member (RFC 7797 unencoded payload): refused
}

// token is a parsed, not yet verified, JWS compact token.
type token struct {
	header       header
	claims       map[string]any
	signingInput string
	signature    []byte
	raw          string
}

// MaxTokenLength bounds a token: anything longer is refused before parsing.
const MaxTokenLength = 8 << 10

// parse splits and decodes a compact JWS without verifying it.
func parse(raw string) (*token, *Failure) {
	if len(raw) > MaxTokenLength {
		return nil, fail(ReasonTooLarge, "token of %d bytes", len(raw))
	}
	// Exactly three segments. Counting dots first bounds the work on
	// "Bearer ......" floods (CVE-2025-30204 class).
	if strings.Count(raw, ".") != 2 {
		return nil, fail(ReasonMalformed, "not a three-part compact JWS")
	}
	h, rest, _ := strings.Cut(raw, ".")
	p, s, _ := strings.Cut(rest, ".")
	if h == "" || p == "" {
		return nil, fail(ReasonMalformed, "empty segment")
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, fail(ReasonMalformed, "header encoding")
	}
	pb, err := b64.DecodeString(p)
	if err != nil {
		return nil, fail(ReasonMalformed, "payload encoding")
	}
	sig, err := b64.DecodeString(s)
	if err != nil {
		return nil, fail(ReasonMalformed, "signature encoding")
	}
	hm, err := decodeObject(hb)
	if err != nil {
		return nil, fail(ReasonMalformed, "header: %v", err)
	}
	t := &token{signingInput: raw[:len(h)+1+len(p)], signature: sig, raw: raw}
	for k, v := range hm {
		switch k {
		case "alg":
			a, ok := v.(string)
			if !ok {
				return nil, fail(ReasonAlgorithm, "alg is not a string")
			}
			t.header.Alg = a
		case "kid":
			kid, ok := v.(string)
			if !ok || len(kid) > 256 {
				return nil, fail(ReasonMalformed, "kid")
			}
			t.header.Kid = kid
		case "typ":
			typ, ok := v.(string)
			if !ok {
				return nil, fail(ReasonType, "typ is not a string")
			}
			t.header.Typ = typ
		case "crit":
			t.header.Crit = true
		case "b64":
			t.header.B64 = true
		case "enc", "zip", "p2c", "p2s", "epk", "apu", "apv", "iv", "tag":
			// JWE members: this is not a signed token.
			return nil, fail(ReasonMalformed, "JWE header member %q", k)
		}
		// jku, x5u, x5c, jwk and other members are never followed.
	}
	if t.header.Alg == "" {
		return nil, fail(ReasonAlgorithm, "no alg")
	}
	if t.header.Crit || t.header.B64 {
		return nil, fail(ReasonCrit, "crit or b64 present")
	}
	claims, err := decodeObject(pb)
	if err != nil {
		return nil, fail(ReasonMalformed, "claims: %v", err)
	}
	t.claims = claims
	return t, nil
}

// decodeObject decodes a JSON object, refusing duplicate member names at
// any depth (Go's encoding/json would silently keep the last one: a
// parser differential), invalid UTF-8 and trailing data. Numbers stay
// json.Number so that NumericDate checks see exactly what was sent.
func decodeObject(b []byte) (map[string]any, error) {
	if len(b) == 0 || b[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	if !utf8Valid(b) {
		return nil, errors.New("invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

const maxDepth = 32

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("bad member name")
				}
				if _, dup := m[k]; dup {
					return nil, fmt.Errorf("duplicate member %q", k)
				}
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				m[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return m, nil
		case '[':
			var a []any
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return a, nil
		}
		return nil, errors.New("unexpected delimiter")
	default:
		return t, nil
	}
}

func utf8Valid(b []byte) bool {
	return strings.ToValidUTF8(string(b), "\uFFFD") == string(b)
}

// numericDate reads a NumericDate claim: a JSON number (integer or
// fraction) within a sane range. Strings, booleans and huge values are
// malformed. ok is false when the claim is absent.
func numericDate(claims map[string]any, name string) (sec int64, ok bool, f *Failure) {
	v, present := claims[name]
	if !present {
		return 0, false, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return 0, false, fail(ReasonMalformed, "%s is not a number", name)
	}
	x, err := n.Float64()
	if err != nil || math.IsNaN(x) || x < 0 || x > 1e11 {
		return 0, false, fail(ReasonMalformed, "%s out of range", name)
	}
	return int64(x), true, nil
}
