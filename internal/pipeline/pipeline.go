// Package pipeline is the kernel every request stage plugs into: one handler
// shape, one error value, one renderer and one request scope. It imports only
// the standard library so that every capability package can depend on it.
package pipeline

import "net/http"

// Handler serves a request. A non-nil error means nothing has been written
// to w yet; the caller renders it (see Render). A handler that has started
// the response must return nil and log any later failure itself.
type Handler func(w http.ResponseWriter, r *http.Request) error

// Middleware wraps the next stage. Middlewares are built once per route when
// a plan is compiled, never per request. A nil Middleware means "stage off".
type Middleware func(next Handler) Handler

// Chain composes middlewares around final, first element outermost. Nil
// entries are skipped.
func Chain(final Handler, mws ...Middleware) Handler {
	h := final
	for i := len(mws) - 1; i >= 0; i-- {
		if mws[i] != nil {
			h = mws[i](h)
		}
	}
	return h
}
