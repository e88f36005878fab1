package observe

// JSON encoding shared by the access log and the security event stream:
// appended straight into byte slices, no reflection for the common kinds.

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendAttr appends "key":value, or nothing for an empty attribute.
func appendAttr(b []byte, a slog.Attr) []byte {
	v := a.Value.Resolve()
	if a.Key == "" && v.Kind() != slog.KindGroup && v.Equal(slog.Value{}) {
		return b // slog's rule: an attribute with empty key and value is dropped
	}
	if v.Kind() == slog.KindGroup {
		as := v.Group()
		if len(as) == 0 {
			return b
		}
		if a.Key == "" {
			for i, ga := range as {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendAttr(b, ga)
			}
			return b
		}
		b = appendString(b, a.Key)
		b = append(b, ":{"...)
		first := true
		for _, ga := range as {
			n := len(b)
			if !first {
				b = append(b, ',')
			}
			m := len(b)
			b = appendAttr(b, ga)
			if len(b) == m {
				b = b[:n]
				continue
			}
			first = false
		}
		return append(b, '}')
	}
	b = appendString(b, a.Key)
	b = append(b, ':')
	switch v.Kind() {
	case slog.KindString:
		b = appendString(b, v.String())
	case slog.KindInt64:
		b = strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		b = strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindFloat64:
		b = strconv.AppendFloat(b, v.Float64(), 'f', -1, 64)
	case slog.KindBool:
		b = strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		b = strconv.AppendInt(b, int64(v.Duration()), 10)
	case slog.KindTime:
		b = append(b, '"')
		b = v.Time().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	default:
		enc, err := json.Marshal(v.Any())
		if err != nil {
			b = appendString(b, "!ERROR:"+err.Error())
		} else {
			b = append(b, enc...)
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// plainASCII marks the ASCII bytes a JSON string carries as they are (not
// control characters, quotes, backslashes, or the HTML-sensitive <, >, &).
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string, escaping as encoding/json does
// (including <, >, & and the line separators U+2028/U+2029); invalid UTF-8
// becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
