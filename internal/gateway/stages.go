package gateway

import (
	"io"
	"net/http"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// bodyLimit refuses bodies over max bytes with 413: at once when
// Content-Length says so (before a 100-continue is sent), otherwise when
// the streamed body crosses the limit. It also records any body read error
// in the scope, so that the proxy blames the client (400/413), not the
// upstream.
func bodyLimit(max int64) pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			if r.ContentLength > max {
				e := pipeline.Deny(http.StatusRequestEntityTooLarge, "request.too_large", "request body too large")
				e.Close = true
				return e
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = &bodyGuard{ReadCloser: http.MaxBytesReader(nil, r.Body, max), scope: pipeline.ScopeOf(r.Context())}
			}
			return next(w, r)
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
