package validate

import (
	"errors"
	"io"
	"net/http"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// BodyLimit refuses bodies over max bytes with 413: at once when
// Content-Length says so (before a 100-continue is sent), otherwise when
// the streamed body crosses the limit. It records any body read error in
// the scope, and when a later stage fails after the body could not be
// read, the body's failure is the decision (413 request.body_too_large or
// 400 request.body_error), whatever that stage made of its read error: a
// JSON check, the OpenAPI validator, the WAF or the proxy may be the one
// that reads past the limit first.
func BodyLimit(max int64) pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			if r.ContentLength > max {
				return pipeline.BodyTooLarge(nil)
			}
			if r.Body == nil || r.Body == http.NoBody {
				return next(w, r)
			}
			s := pipeline.ScopeOf(r.Context())
			r.Body = &bodyGuard{ReadCloser: http.MaxBytesReader(nil, r.Body, max), scope: s}
			err := next(w, r)
			if err != nil && s != nil && s.BodyError != nil {
				if pe, ok := errors.AsType[*pipeline.Error](err); !ok || pe.Status != 499 {
					return pipeline.BodyReadError(s.BodyError)
				}
			}
			return err
		}
	}
}

// bodyGuard records the first body read error other than EOF.
type bodyGuard struct {
	io.ReadCloser
	scope *pipeline.Scope
}

func (b *bodyGuard) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.scope != nil && b.scope.BodyError == nil {
		b.scope.BodyError = err
	}
	return n, err
}
