package pipeline

import (
	"net/http"
	"strconv"
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
	b := make([]byte, 0, 160+len(e.Detail)+len(reqID))
	b = append(b, `{"type":"about:blank","title":`...)
	b = AppendJSONString(b, statusTitle(e.Status))
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"code":`...)
	b = AppendJSONString(b, e.Code)
	if e.Detail != "" {
		b = append(b, `,"detail":`...)
		b = AppendJSONString(b, e.Detail)
	}
	if len(e.Fields) > 0 {
		b = append(b, `,"errors":[`...)
		for i, f := range e.Fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"pointer":`...)
			b = AppendJSONString(b, f.Pointer)
			b = append(b, `,"detail":`...)
			b = AppendJSONString(b, f.Detail)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if reqID != "" {
		b = append(b, `,"request_id":`...)
		b = AppendJSONString(b, reqID)
	}
	return append(b, "}\n"...)
}

func statusTitle(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}
