package observe

// JSON encoding shared by the access log and the security event stream:
// appended straight into byte slices, no reflection for the common kinds.

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
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
		b = pipeline.AppendJSONString(b, a.Key)
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
	b = pipeline.AppendJSONString(b, a.Key)
	b = append(b, ':')
	switch v.Kind() {
	case slog.KindString:
		b = pipeline.AppendJSONString(b, v.String())
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
			b = pipeline.AppendJSONString(b, "!ERROR:"+err.Error())
		} else {
			b = append(b, enc...)
		}
	}
	return b
}
