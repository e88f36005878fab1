package proxy

import (
	"sync"
	"time"
)

// breaker is a consecutive-failure circuit breaker. Closed: requests flow
// and failures are counted. Open: requests fail fast with ErrCircuitOpen.
// After openFor, one probe request is let through (half-open); its outcome
// closes or re-opens the breaker.
type breaker struct {
	threshold int
	openFor   time.Duration
	now       func() time.Time

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probing   bool
}

func newBreaker(threshold int, openFor time.Duration, now func() time.Time) *breaker {
	return &breaker{threshold: threshold, openFor: openFor, now: now}
}

// allow reports whether a request may go to the upstream.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return true
	}
	if b.now().Before(b.openUntil) || b.probing {
		return false
	}
	b.probing = true
	return true
}

func (b *breaker) record(failed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !failed {
		b.failures, b.openUntil, b.probing = 0, time.Time{}, false
		return
	}
	b.failures++
	if b.probing || b.failures >= b.threshold {
		b.openUntil = b.now().Add(b.openFor)
		b.probing = false
		b.failures = 0
	}
}

// open reports whether the breaker is currently refusing requests.
func (b *breaker) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.openUntil.IsZero() && (b.now().Before(b.openUntil) || b.probing)
}
