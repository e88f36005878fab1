package pipeline

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
)

// buffered is a request body a stage has read whole: the stages after it
// take its bytes (BufferedBody) instead of reading and copying it again.
type buffered struct {
	bytes.Reader
	b []byte
}

func (*buffered) Close() error { return nil }

// ReadBody returns r's body whole, read once per request: the first
// stage that asks reads it and puts it back as a buffered body; a later
// one gets the same bytes. The bytes are shared: callers must not
// modify them. A body of declared length is read into one buffer of
// that size.
func ReadBody(r *http.Request) ([]byte, error) {
	if b, ok := BufferedBody(r); ok {
		return b, nil
	}
	var body []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= maxPresized {
		body = make([]byte, n)
		if _, err = io.ReadFull(r.Body, body); err == nil {
			err = expectEOF(r.Body)
		}
	} else {
		body, err = io.ReadAll(r.Body)
	}
	if err != nil {
		return nil, err
	}
	bb := &buffered{b: body}
	bb.Reset(body)
	r.Body = bb
	return body, nil
}

// maxPresized bounds the buffer ReadBody sizes by a declared length
// before reading (larger bodies grow as they arrive).
const maxPresized = 1 << 20

// expectEOF reads past a body's declared end: a body longer than it
// declared is an error (net/http's own bodies never are).
func expectEOF(body io.Reader) error {
	var one [1]byte
	n, err := body.Read(one[:])
	switch {
	case n > 0:
		return errors.New("request body longer than its Content-Length")
	case err == io.EOF:
		return nil
	}
	return err
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

// Digest is the SHA-256 of parts, each ended by a zero byte, then tail:
// how a stage names a request by what it carries. Short inputs are
// hashed from the stack, without allocating.
func Digest(tail []byte, parts ...string) [32]byte {
	var buf [512]byte
	b := buf[:0]
	for _, p := range parts {
		b = append(append(b, p...), 0)
	}
	if len(b)+len(tail) <= len(buf) {
		return sha256.Sum256(append(b, tail...))
	}
	h := sha256.New()
	h.Write(b)
	h.Write(tail)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
