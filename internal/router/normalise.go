// Package router normalises request paths and matches requests (host,
// method, path) to routes. The gateway routes, authorises and forwards on
// the one canonical path computed here, so the gateway and the service can
// never disagree about which resource was asked for.
package router

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Path errors. Each maps to 400 request.bad_path; the distinction is for
// logs and tests.
var (
	ErrNotAbsolute   = errors.New("path must start with /")
	ErrEncodedSlash  = errors.New("encoded '/' or '\\' in path")
	ErrBackslash     = errors.New("'\\' in path")
	ErrFragment      = errors.New("'#' in request target")
	ErrControl       = errors.New("control character or NUL in path")
	ErrBadEscape     = errors.New("malformed percent-encoding")
	ErrInvalidUTF8   = errors.New("path is not valid UTF-8")
	ErrEncodedDot    = errors.New("encoded dot segment")
	ErrEscapesRoot   = errors.New("dot segments escape the root")
	ErrSemicolon     = errors.New("';' (path parameters) in path")
	ErrTargetTooLong = errors.New("path too long")
)

// MaxPathLength bounds the request path the normaliser accepts.
const MaxPathLength = 8192

const upperHex = "0123456789ABCDEF"

// Normalise returns the canonical form of an escaped request path (the part
// of the request target before '?'):
//
//   - percent-encodings of unreserved characters (A-Z a-z 0-9 - . _ ~) are
//     decoded; every other encoding is kept, with upper-case hex digits, and
//     is never decoded twice (%252e stays %252e);
//   - raw bytes outside the RFC 3986 path characters are percent-encoded;
//   - "." and ".." segments are resolved (RFC 3986 §5.2.4) and empty
//     segments (//) removed; a trailing slash is kept.
//
// It rejects what no honest client sends and what back ends disagree about:
// an encoded '/' or '\', a raw '\', '#' or ';', NUL and control characters,
// malformed escapes, invalid UTF-8, encoded dot segments, and dot segments
// that climb above the root. Normalise is idempotent: for every accepted p,
// Normalise(Normalise(p)) == Normalise(p).
func Normalise(p string) (string, error) {
	if len(p) == 0 || p[0] != '/' {
		return "", ErrNotAbsolute
	}
	if len(p) > MaxPathLength {
		return "", ErrTargetTooLong
	}
	if isCanonical(p) {
		return p, nil
	}
	out := make([]byte, 0, len(p)+8)
	// segStarts records where each output segment begins (at its '/'), so
	// that ".." can pop the last one.
	segStarts := make([]int, 0, 8)
	rest := p[1:]
	trailing := false
	for {
		seg, tail, more := strings.Cut(rest, "/")
		canon, dot, err := canonicalSegment(seg)
		if err != nil {
			return "", err
		}
		switch {
		case dot == 1:
			trailing = true
		case dot == 2:
			if len(segStarts) == 0 {
				return "", ErrEscapesRoot
			}
			out = out[:segStarts[len(segStarts)-1]]
			segStarts = segStarts[:len(segStarts)-1]
			trailing = true
		case len(canon) == 0:
			// Empty segment: "//" merged; a final empty segment is the
			// trailing slash.
			trailing = !more || trailing
		default:
			segStarts = append(segStarts, len(out))
			out = append(out, '/')
			out = append(out, canon...)
			trailing = false
		}
		if !more {
			break
		}
		rest = tail
	}
	if len(out) == 0 || trailing {
		out = append(out, '/')
	}
	if len(out) > MaxPathLength {
		// Percent-encoding can grow a path; the limit holds for the
		// canonical form too, so that Normalise stays idempotent.
		return "", ErrTargetTooLong
	}
	return string(out), nil
}

// canonicalSegment canonicalises one segment. dot is 1 for ".", 2 for "..".
func canonicalSegment(seg string) (canon []byte, dot int, err error) {
	var buf []byte
	encodedDot := false
	hasHigh := false
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c == '%':
			var b byte
			if buf, b, err = appendEscape(buf, seg, i); err != nil {
				return nil, 0, err
			}
			i += 2
			encodedDot = encodedDot || b == '.'
			hasHigh = hasHigh || b >= 0x80
		case c == '\\':
			return nil, 0, ErrBackslash
		case c == '#':
			return nil, 0, ErrFragment
		case c == ';':
			return nil, 0, ErrSemicolon
		case c < 0x20 || c == 0x7f:
			return nil, 0, ErrControl
		case isPathChar(c):
			buf = append(buf, c)
		default:
			// Space, non-ASCII and other characters outside pchar are
			// percent-encoded so that the forwarded form is unambiguous.
			if c >= 0x80 {
				hasHigh = true
			}
			buf = append(buf, '%', upperHex[c>>4], upperHex[c&0xf])
		}
	}
	if hasHigh && !utf8.Valid(decodeAll(buf)) {
		return nil, 0, ErrInvalidUTF8
	}
	if len(buf) == 1 && buf[0] == '.' || len(buf) == 2 && buf[0] == '.' && buf[1] == '.' {
		if encodedDot {
			return nil, 0, ErrEncodedDot
		}
		return nil, len(buf), nil
	}
	return buf, 0, nil
}

// appendEscape canonicalises the escape %XX at seg[i:]: an unreserved
// byte is decoded, any other stays encoded, in upper case. It returns the
// byte the escape stands for. An encoded slash or backslash, or a control
// character, is refused: either would make the service see another path.
func appendEscape(buf []byte, seg string, i int) ([]byte, byte, error) {
	if i+2 >= len(seg) {
		return nil, 0, ErrBadEscape
	}
	hi, ok1 := unhex(seg[i+1])
	lo, ok2 := unhex(seg[i+2])
	if !ok1 || !ok2 {
		return nil, 0, ErrBadEscape
	}
	b := hi<<4 | lo
	switch {
	case isUnreserved(b):
		return append(buf, b), b, nil
	case b == '/' || b == '\\':
		return nil, 0, ErrEncodedSlash
	case b < 0x20 || b == 0x7f:
		return nil, 0, ErrControl
	}
	return append(buf, '%', upperHex[b>>4], upperHex[b&0xf]), b, nil
}

// decodeAll decodes every %XX of a canonical segment (for UTF-8 checks).
func decodeAll(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) {
			hi, _ := unhex(b[i+1])
			lo, _ := unhex(b[i+2])
			out = append(out, hi<<4|lo)
			i += 2
			continue
		}
		out = append(out, b[i])
	}
	return out
}

// isCanonical is the allocation-free fast path: p already is its own
// normal form when it holds only unreserved characters, safe sub-delims,
// ':' and '@', and no empty or dot segment.
func isCanonical(p string) bool {
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			c := p[i]
			if !isPathChar(c) {
				return false
			}
			continue
		}
		seg := p[segStart:i]
		if seg == "" && i < len(p) || seg == "." || seg == ".." {
			return false
		}
		segStart = i + 1
	}
	return true
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// isPathChar reports RFC 3986 pchar bytes that need no encoding, minus '%'
// (handled separately) and ';' (rejected).
func isPathChar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', '=', ':', '@':
		return true
	}
	return false
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Unescape decodes every percent-encoding of a canonical path or segment.
func Unescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	return string(decodeAll([]byte(s)))
}
