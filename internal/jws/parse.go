package jws

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

// b64 is base64url without padding, rejecting non-zero trailing bits, so
// that each token has exactly one encoding (a token whose signature differs
// only in unused bits is not the same token).
var strict = base64.RawURLEncoding.Strict()

// Header is the protected header of a JWS: the members Rampart reads.
// jku, x5u, x5c, jwk and other members are never followed.
type Header struct {
	Alg string
	Kid string
	Typ string
}

// Token is a parsed, not yet verified, JWS compact token.
type Token struct {
	Header       Header
	Claims       map[string]any
	SigningInput string
	Signature    []byte
	Raw          string
}

// Kinds of parse errors.
const (
	TooLarge  = "too_large"
	Malformed = "malformed"
	Algorithm = "bad_algorithm"
	Type      = "bad_type"
	Crit      = "unsupported_crit"
)

// ParseError is why a token does not parse: its Kind and a detail for logs.
type ParseError struct {
	Kind   string
	Detail string
}

func (e *ParseError) Error() string { return e.Kind + ": " + e.Detail }

func fail(kind, format string, args ...any) *ParseError {
	return &ParseError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// MaxTokenLength bounds a token: anything longer is refused before parsing.
const MaxTokenLength = 8 << 10

// Parse splits and decodes a compact JWS without verifying it. It accepts
// only what RFC 7515/7519 and RFC 8725 allow and refuses the encodings
// that let two parsers disagree about a token: exactly three segments,
// strict base64url, one JSON object per part without duplicate members at
// any depth, no crit or b64, no JWE members.
func Parse(raw string) (*Token, *ParseError) {
	if len(raw) > MaxTokenLength {
		return nil, fail(TooLarge, "token of %d bytes", len(raw))
	}
	// Exactly three segments. Counting dots first bounds the work on
	// "Bearer ......" floods (CVE-2025-30204 class).
	if strings.Count(raw, ".") != 2 {
		return nil, fail(Malformed, "not a three-part compact JWS")
	}
	h, rest, _ := strings.Cut(raw, ".")
	p, s, _ := strings.Cut(rest, ".")
	if h == "" || p == "" {
		return nil, fail(Malformed, "empty segment")
	}
	hb, err := strict.DecodeString(h)
	if err != nil {
		return nil, fail(Malformed, "header encoding")
	}
	pb, err := strict.DecodeString(p)
	if err != nil {
		return nil, fail(Malformed, "payload encoding")
	}
	sig, err := strict.DecodeString(s)
	if err != nil {
		return nil, fail(Malformed, "signature encoding")
	}
	hm, err := DecodeObject(hb)
	if err != nil {
		return nil, fail(Malformed, "header: %v", err)
	}
	t := &Token{SigningInput: raw[:len(h)+1+len(p)], Signature: sig, Raw: raw}
	var crit, unencoded bool
	for k, v := range hm {
		switch k {
		case "alg":
			a, ok := v.(string)
			if !ok {
				return nil, fail(Algorithm, "alg is not a string")
			}
			t.Header.Alg = a
		case "kid":
			kid, ok := v.(string)
			if !ok || len(kid) > 256 {
				return nil, fail(Malformed, "kid")
			}
			t.Header.Kid = kid
		case "typ":
			typ, ok := v.(string)
			if !ok {
				return nil, fail(Type, "typ is not a string")
			}
			t.Header.Typ = typ
		case "crit":
			crit = true
		case "b64":
			unencoded = true
		case "enc", "zip", "p2c", "p2s", "epk", "apu", "apv", "iv", "tag":
			// JWE members: this is not a signed token.
			return nil, fail(Malformed, "JWE header member %q", k)
		}
		// jku, x5u, x5c, jwk and other members are never followed.
	}
	if t.Header.Alg == "" {
		return nil, fail(Algorithm, "no alg")
	}
	if crit || unencoded {
		return nil, fail(Crit, "crit or b64 present")
	}
	claims, err := DecodeObject(pb)
	if err != nil {
		return nil, fail(Malformed, "claims: %v", err)
	}
	t.Claims = claims
	return t, nil
}

// DecodeObject decodes a JSON object, refusing duplicate member names at
// any depth (Go's encoding/json would silently keep the last one: a
// parser differential), invalid UTF-8 and trailing data. Numbers stay
// json.Number so that NumericDate checks see exactly what was sent.
func DecodeObject(b []byte) (map[string]any, error) {
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

// NumericDate reads a NumericDate claim: a JSON number (integer or
// fraction) within a sane range. Strings, booleans and huge values are
// malformed. ok is false when the claim is absent.
func NumericDate(claims map[string]any, name string) (sec int64, ok bool, err error) {
	v, present := claims[name]
	if !present {
		return 0, false, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return 0, false, fmt.Errorf("%s is not a number", name)
	}
	x, err := n.Float64()
	if err != nil || math.IsNaN(x) || x < 0 || x > 1e11 {
		return 0, false, fmt.Errorf("%s out of range", name)
	}
	return int64(x), true, nil
}
