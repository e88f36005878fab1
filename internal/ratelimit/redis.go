package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/redisbatch"
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

// Client opens the go-redis client of a rate_limiting.redis section:
// standalone, Sentinel (master_name) or Cluster (several addresses). It is
// the one constructor, for the gateway's shared state and for the CLI.
// Calls time out after the section's timeout and are not retried (the
// failure policy of each limit decides). It speaks RESP2: the gateway
// uses no RESP3 feature, and with RESP3 the client looks for push
// notifications before every reply (a fifth of a command's CPU).
func Client(c *config.Redis) redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: c.Addresses, MasterName: c.MasterName, Username: c.Username, Password: c.Password.Reveal(), DB: c.DB,
		DialTimeout: time.Second, ReadTimeout: c.Timeout.D(), WriteTimeout: c.Timeout.D(), PoolTimeout: c.Timeout.D(),
		MaxRetries: -1, Protocol: 2,
	})
}

// ErrStoreOpen is returned while the Redis circuit breaker is open.
var ErrStoreOpen = errors.New("rate limit store circuit open")

// Redis is a store shared by every gateway instance: one Lua call per
// check, with a circuit breaker that stops calling a failing Redis for a
// while (the rule's failure policy then applies) and retries on its own.
type Redis struct {
	batch   *redisbatch.Batcher
	prefix  string
	timeout time.Duration

	mu        sync.Mutex
	failures  int
	openUntil time.Time
}

// NewRedis checks limits through batch (its checks are coalesced with
// the other Redis commands of concurrent requests). prefix namespaces
// the keys.
func NewRedis(batch *redisbatch.Batcher, prefix string, timeout time.Duration) *Redis {
	return &Redis{batch: batch, prefix: prefix, timeout: timeout}
}

const (
	breakerFailures = 5
	breakerOpenFor  = 2 * time.Second
)

// Ready reports whether limit checks can use Redis now: the one source of
// truth for readiness probes and for the routes. While the circuit is open
// (after failures, for a moment after Redis recovers) checks are refused
// with ErrStoreOpen, so the store is not ready even if Redis answers a
// ping; otherwise Redis must answer one.
func (r *Redis) Ready(ctx context.Context, now time.Time) error {
	r.mu.Lock()
	open := now.Before(r.openUntil)
	r.mu.Unlock()
	if open {
		return ErrStoreOpen
	}
	return r.batch.Client().Ping(ctx).Err()
}

// Allow implements Store.
func (r *Redis) Allow(ctx context.Context, key string, l Limit, now time.Time) (Result, error) {
	r.mu.Lock()
	if now.Before(r.openUntil) {
		r.mu.Unlock()
		return Result{}, ErrStoreOpen
	}
	r.mu.Unlock()
	T := l.interval().Microseconds()
	if T < 1 {
		T = 1
	}
	var cmd *redis.Cmd
	err := r.batch.Do(ctx, func(ctx context.Context, p redis.Pipeliner) {
		cmd = gcraScript.EvalSha(ctx, p, []string{r.prefix + key}, T, T*int64(l.Burst))
	}, gcraScript)
	var res []int64
	if err == nil {
		res, err = cmd.Int64Slice()
	}
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
