package pipeline

import (
	"net/http"
	"strconv"
	"strings"
)

// ProblemContentType is the RFC 9457 media type of every refusal.
const ProblemContentType = "application/problem+json"

// Render writes e as an RFC 9457 problem document carrying the stable code
// and the request id. It never writes e.Err: internal causes are for logs.
func Render(w http.ResponseWriter, r *http.Request, e *Error) {
	reqID := ""
	if s := ScopeOf(r.Context()); s != nil {
		reqID = s.RequestID
		s.Decision = e
	}
	h := w.Header()
	// Security: headers a previous stage may have set for a success
	// response must not leak into an error response.
	h.Del("Content-Encoding")
	h.Del("Content-Length")
	h.Del("Set-Cookie")
	for k, vs := range e.Header {
		h[k] = vs
	}
	h.Set("Content-Type", ProblemContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.Close {
		h.Set("Connection", "close")
	}
	body := problemJSON(e, reqID)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// problemJSON encodes the problem document by hand: the fields are few and
// fixed, and this runs on every refusal, including floods of them.
func problemJSON(e *Error, reqID string) []byte {
	var b strings.Builder
	b.Grow(160 + len(e.Detail) + len(reqID))
	b.WriteString(`{"type":"about:blank","title":`)
	writeJSONString(&b, statusTitle(e.Status))
	b.WriteString(`,"status":`)
	b.WriteString(strconv.Itoa(e.Status))
	b.WriteString(`,"code":`)
	writeJSONString(&b, e.Code)
	if e.Detail != "" {
		b.WriteString(`,"detail":`)
		writeJSONString(&b, e.Detail)
	}
	if len(e.Fields) > 0 {
		b.WriteString(`,"errors":[`)
		for i, f := range e.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"pointer":`)
			writeJSONString(&b, f.Pointer)
			b.WriteString(`,"detail":`)
			writeJSONString(&b, f.Detail)
			b.WriteByte('}')
		}
		b.WriteByte(']')
	}
	if reqID != "" {
		b.WriteString(`,"request_id":`)
		writeJSONString(&b, reqID)
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

func statusTitle(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

const hexDigits = "0123456789abcdef"

func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&':
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}
