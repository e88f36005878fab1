package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcraScript is GCRA in one atomic round trip. It reads Redis's own clock
// (TIME), so every gateway instance sharing the store agrees on "now";
// times are microseconds, exact in Lua's doubles.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nxt = tat + T
local allow_at = nxt - tau
if now < allow_at then
  return {0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], nxt, 'PX', math.ceil((nxt - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / T), nxt - now}
`)

// ErrStoreOpen is returned while the Redis circuit breaker is open.
var ErrStoreOpen = errors.New("rate limit store circuit open")

// Redis is a store shared by every gateway instance: one Lua call per
// check, with a circuit breaker that stops calling a failing Redis for a
// while (the rule's failure policy then applies) and retries on its own.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration

	mu        sync.Mutex
	failures  int
	openUntil time.Time
}

// NewRedis wraps a go-redis client. prefix namespaces the keys.
func NewRedis(client redis.UniversalClient, prefix string, timeout time.Duration) *Redis {
	return &Redis{client: client, prefix: prefix, timeout: timeout}
}

const (
	breakerFailures = 5
	breakerOpenFor  = 2 * time.Second
)

// Allow implements Store.
func (r *Redis) Allow(ctx context.Context, key string, l Limit, now time.Time) (Result, error) {
	r.mu.Lock()
	if now.Before(r.openUntil) {
		r.mu.Unlock()
		return Result{}, ErrStoreOpen
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	T := l.interval().Microseconds()
	if T < 1 {
		T = 1
	}
	res, err := gcraScript.Run(ctx, r.client, []string{r.prefix + key}, T, T*int64(l.Burst)).Int64Slice()
	r.mu.Lock()
	if err != nil {
		r.failures++
		if r.failures >= breakerFailures {
			r.openUntil, r.failures = now.Add(breakerOpenFor), 0
		}
		r.mu.Unlock()
		return Result{}, err
	}
	r.failures = 0
	r.mu.Unlock()
	if len(res) != 3 {
		return Result{}, errors.New("rate limit script: unexpected reply")
	}
	out := Result{Allowed: res[0] == 1, Reset: time.Duration(res[2]) * time.Microsecond}
	if out.Allowed {
		out.Remaining = int(res[1])
	} else {
		out.RetryAfter = time.Duration(res[1]) * time.Microsecond
	}
	return out, nil
}
