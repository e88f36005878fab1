package pipeline

import (
	"sync"
	"time"
)

// Event is one entry of the security event stream: a refusal decision, or
// something a stage or detector noticed (a WAF match in detection-only
// mode, shadow traffic, a ban). It carries identifiers and a redacted
// summary of the request, never credentials or payloads.
type Event struct {
	Time time.Time
	// Name is "refusal" for a refused request, otherwise the finding
	// ("waf.detected", "validate.undocumented", "abuse.banned", ...).
	Name string
	// Code is the decision code (refusals) or the finding's code.
	Code string
	// Status is the HTTP status of a refusal (0 otherwise).
	Status    int
	RequestID string
	Route     string
	ClientIP  string
	// Subject and Auth identify the caller when authenticated.
	Subject string
	Auth    string
	// Rules are the ids of the rules behind the decision (WAF rules).
	Rules []string
	// Reason is the operator-facing cause (never sent to clients).
	Reason string
	// Method, Host, Path and QueryKeys summarise the request: the
	// normalised path and the query's parameter names, no values.
	Method    string
	Host      string
	Path      string
	QueryKeys []string
	UserAgent string
	// Attrs are further details of a finding (detector, until, ...).
	Attrs map[string]string
}

// Events receives security events. Emit never blocks the request.
type Events interface {
	Emit(Event)
}

// NoEvents discards events.
type NoEvents struct{}

// Emit implements Events.
func (NoEvents) Emit(Event) {}

// EventRecorder keeps the events emitted to it (tests, and embedding
// programs that read events in-process).
type EventRecorder struct {
	mu     sync.Mutex
	events []Event
}

// Emit implements Events.
func (r *EventRecorder) Emit(ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

// Events returns a copy of the events so far.
func (r *EventRecorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
