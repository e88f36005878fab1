package pipeline

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a decision: a refusal with an HTTP status and a stable code
// ("stage.reason"). Detail is safe to show to the client; Err is the internal
// cause, logged with the request id and never sent.
type Error struct {
	Status int
	Code   string
	Detail string
	Err    error
	// Close asks the server to close the connection after the response
	// (framing errors, where the rest of the byte stream cannot be trusted).
	Close bool
	// Header holds extra response headers (for example Allow on a 405).
	Header http.Header
	// Rules are the ids of the rules behind the decision (WAF), for the
	// security event stream; never sent.
	Rules []string
	// Fields are client-safe details per offending input field, rendered
	// as the problem's "errors" member (validation failures).
	Fields []Field
	// Summarised refusals are reported by their stage in a summary event,
	// not one event each (load shedding: a flood of refusals that each
	// cost an event would take the CPU the shedding saves).
	Summarised bool
}

// Field names one offending input field by JSON pointer ("/body/age",
// "/query/limit") with a client-safe reason.
type Field struct {
	Pointer string
	Detail  string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s (%d): %s: %v", e.Code, e.Status, e.Detail, e.Err)
	}
	return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Detail)
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Deny returns a decision with a client-safe detail.
func Deny(status int, code, detail string) *Error {
	return &Error{Status: status, Code: code, Detail: detail}
}

// DenyErr is Deny with an internal cause that is logged but never sent.
func DenyErr(status int, code, detail string, cause error) *Error {
	return &Error{Status: status, Code: code, Detail: detail, Err: cause}
}

// AsError converts any error into a decision. Errors that are not decisions
// become a 500 gateway.internal whose cause is kept for the log only.
func AsError(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return &Error{Status: http.StatusInternalServerError, Code: "gateway.internal", Detail: "internal error", Err: err}
}

// Decision codes of a request body that could not be read whole.
const (
	// CodeBodyTooLarge: the body is over the route's limit, however it was
	// framed (Content-Length, chunked, streamed) and whichever stage read
	// past the limit first.
	CodeBodyTooLarge = "request.body_too_large"
	// CodeBodyError: the body ended early or its chunked framing is
	// malformed.
	CodeBodyError = "request.body_error"
)

// BodyTooLarge is the refusal of a body over the limit. The connection
// closes after it: the rest of the body is not read.
func BodyTooLarge(cause error) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge, Detail: "request body too large", Err: cause, Close: true}
}

// BodyReadError is the decision for a failure to read the client's body:
// 413 when it crossed the body limit, 400 otherwise. It is the client's
// doing, never a 500 or a 502.
func BodyReadError(err error) *Error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return BodyTooLarge(err)
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeBodyError, Detail: "malformed or incomplete request body", Err: err, Close: true}
}

// ErrShutdown is the cause with which the gateway ends the requests still
// in flight when a drain runs out of time.
var ErrShutdown = errors.New("gateway shutting down: drain timeout")

// CodeShutdown is the decision of a request ended by the drain deadline.
const CodeShutdown = "gateway.shutdown"
