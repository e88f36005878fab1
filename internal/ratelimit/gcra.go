// Package ratelimit enforces request limits with GCRA (the generic cell
// rate algorithm: one timestamp per key, smooth, exact), in a local
// sharded store or in Redis shared by several gateway instances.
package ratelimit

import (
	"context"
	"time"
)

// Limit is a compiled rate: Rate requests per Period with bursts of Burst.
type Limit struct {
	// Rate requests per Period.
	Rate int
	// Period of the rate.
	Period time.Duration
	// Burst is how many requests may arrive at once. Default Rate.
	Burst int
}

// interval is GCRA's emission interval T.
func (l Limit) interval() time.Duration { return l.Period / time.Duration(l.Rate) }

// tolerance is how far ahead of now a key's theoretical arrival time may
// run: T × Burst.
func (l Limit) tolerance() time.Duration { return l.interval() * time.Duration(l.Burst) }

// Result is the outcome of one check.
type Result struct {
	// Allowed says whether the request may proceed.
	Allowed bool
	// Remaining is how many more requests would be allowed now.
	Remaining int
	// RetryAfter is, when refused, how long until one request is allowed.
	RetryAfter time.Duration
	// Reset is how long until the key is back to a full burst.
	Reset time.Duration
}

// Store checks and records one request against a key's limit.
type Store interface {
	Allow(ctx context.Context, key string, l Limit, now time.Time) (Result, error)
}

// gcra applies one arrival to a theoretical arrival time (unix ns): the
// same arithmetic as the Redis script.
func gcra(tat int64, l Limit, now int64) (newTat int64, r Result) {
	T := int64(l.interval())
	if T <= 0 {
		T = 1 // config validation forbids rates above one per nanosecond
	}
	tau := T * int64(l.Burst)
	if tat < now {
		tat = now
	}
	next := tat + T
	allowAt := next - tau
	if now < allowAt {
		r.RetryAfter = time.Duration(allowAt - now)
		r.Reset = time.Duration(tat - now)
		return tat, r
	}
	r.Allowed = true
	r.Remaining = int((now - allowAt) / T)
	r.Reset = time.Duration(next - now)
	return next, r
}

// Local is an in-process store: keys → theoretical arrival time, in
// bounded shards (shards). Entries whose time is in the past carry no
// information (the bucket is full) and are the first to go when a shard
// is full.
type Local struct {
	tat *shards[int64]
}

// NewLocal returns a local store holding at most maxKeys keys.
func NewLocal(maxKeys int) *Local {
	return &Local{tat: newShards(maxKeys, func(tat, now int64) bool { return tat <= now })}
}

// Allow implements Store.
func (l *Local) Allow(_ context.Context, key string, lim Limit, now time.Time) (Result, error) {
	n := now.UnixNano()
	var r Result
	l.tat.update(key, n, func(tat int64, _ bool) (int64, bool) {
		var next int64
		next, r = gcra(tat, lim, n)
		return next, r.Allowed
	})
	return r, nil
}

// Len is the number of keys held (tests).
func (l *Local) Len() int { return l.tat.len() }
