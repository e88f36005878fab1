package observe

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// lineHandler is a slog.Handler that writes one JSON object per record,
// like slog.JSONHandler, but built for the access log's hot path: records
// are encoded into a pooled buffer with no reflection for the common kinds
// and written with a single Write call. Levels are not written (every
// access-log line is the same level).
type lineHandler struct {
	w      io.Writer
	mu     *sync.Mutex
	pre    []byte // encoded WithAttrs attributes, each followed by ','
	groups []string
	pool   *sync.Pool
}

// NewLineHandler returns the access log's JSON handler writing to w.
func NewLineHandler(w io.Writer) slog.Handler {
	return &lineHandler{w: w, mu: &sync.Mutex{}, pool: &sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}}
}

func (h *lineHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h2 := *h
	h2.pre = append([]byte(nil), h.pre...)
	for _, a := range as {
		if n := len(h2.pre); true {
			h2.pre = appendAttr(h2.pre, a)
			if len(h2.pre) > n {
				h2.pre = append(h2.pre, ',')
			}
		}
	}
	return &h2
}

func (h *lineHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.pre = append([]byte(nil), h.pre...)
	h2.pre = appendString(h2.pre, name)
	h2.pre = append(h2.pre, ":{"...)
	h2.groups = append(append([]string(nil), h.groups...), name)
	return &h2
}

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	bp := h.pool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","msg":`...)
	b = appendString(b, r.Message)
	b = append(b, ',')
	b = append(b, h.pre...)
	r.Attrs(func(a slog.Attr) bool {
		n := len(b)
		b = appendAttr(b, a)
		if len(b) > n {
			b = append(b, ',')
		}
		return true
	})
	b = b[:len(b)-1] // the last ','
	for range h.groups {
		b = append(b, '}')
	}
	b = append(b, '}', '\n')
	h.mu.Lock()
	_, err := h.w.Write(b)
	h.mu.Unlock()
	if cap(b) <= 64<<10 {
		*bp = b
		h.pool.Put(bp)
	}
	return err
}

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

// appendString appends s as a JSON string, escaping as encoding/json does
// (including <, >, & and the line separators U+2028/U+2029); invalid UTF-8
// becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
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
