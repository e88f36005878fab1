package pipeline

import (
	"bytes"
	"io"
	"net/http"
)

// buffered is a request body a stage has read whole: the stages after it
// take its bytes (BufferedBody) instead of reading and copying it again.
type buffered struct {
	*bytes.Reader
	b []byte
}

func (*buffered) Close() error { return nil }

// ReadBody returns r's body whole, read once per request: the first
// stage that asks reads it and puts it back as a buffered body; a later
// one gets the same bytes. The bytes are shared: callers must not
// modify them.
func ReadBody(r *http.Request) ([]byte, error) {
	if b, ok := BufferedBody(r); ok {
		return b, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = &buffered{bytes.NewReader(body), body}
	return body, nil
}

// BufferedBody returns r's body when a stage has read it whole
// (ReadBody) and nothing has read from it since.
func BufferedBody(r *http.Request) ([]byte, bool) {
	b, ok := r.Body.(*buffered)
	if !ok || b.Reader.Len() != len(b.b) {
		return nil, false
	}
	return b.b, true
}
