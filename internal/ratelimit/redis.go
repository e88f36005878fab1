package ratelimit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/config"
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
// failure policy of each limit decides).
func Client(c *config.Redis) redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: c.Addresses, MasterName: c.MasterName, Username: c.Username, Password: c.Password.Reveal(), DB: c.DB,
		DialTimeout: time.Second, ReadTimeout: c.Timeout.D(), WriteTimeout: c.Timeout.D(), PoolTimeout: c.Timeout.D(),
		MaxRetries: -1,
	})
}

// ErrStoreOpen is returned while the Redis circuit breaker is open.
var ErrStoreOpen = errors.New("rate limit store circuit open")

// Redis is a store shared by every gateway instance: one Lua call per
// check, with a circuit breaker that stops calling a failing Redis for a
// while (the rule's failure policy then applies) and retries on its own.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	calls   chan *call
	stop    chan struct{}

	mu        sync.Mutex
	failures  int
	openUntil time.Time
}

// call is one queued check.
type call struct {
	key   string
	T     int64
	tau   int64
	reply chan callResult
}

type callResult struct {
	vals []int64
	err  error
}

// NewRedis wraps a go-redis client. prefix namespaces the keys. Checks
// are coalesced: whatever checks are waiting when the previous batch
// returns go to Redis together, pipelined, one write and one read for all
// of them; under load that amortises the round trip over many requests.
func NewRedis(client redis.UniversalClient, prefix string, timeout time.Duration) *Redis {
	r := &Redis{client: client, prefix: prefix, timeout: timeout, calls: make(chan *call, 1024), stop: make(chan struct{})}
	go r.loop()
	return r
}

// Close stops the batching loop.
func (r *Redis) Close() { close(r.stop) }

const maxBatch = 128

func (r *Redis) loop() {
	batch := make([]*call, 0, maxBatch)
	for {
		select {
		case <-r.stop:
			return
		case c := <-r.calls:
			batch = append(batch[:0], c)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case c := <-r.calls:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		r.run(batch)
	}
}

func (r *Redis) run(batch []*call) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	cmds, err := r.exec(ctx, batch)
	if err != nil && isNoScript(err) {
		// Redis restarted and lost the script: load it once and retry.
		if lerr := gcraScript.Load(ctx, r.client).Err(); lerr == nil {
			cmds, err = r.exec(ctx, batch)
		}
	}
	for i, c := range batch {
		var res callResult
		if err != nil && cmds == nil {
			res.err = err
		} else {
			res.vals, res.err = cmds[i].Int64Slice()
		}
		c.reply <- res
	}
}

func (r *Redis) exec(ctx context.Context, batch []*call) ([]*redis.Cmd, error) {
	pipe := r.client.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		cmds[i] = gcraScript.EvalSha(ctx, pipe, []string{r.prefix + c.key}, c.T, c.tau)
	}
	_, err := pipe.Exec(ctx)
	if err != nil && !isNoScript(err) {
		// A reply-level error of one command is in its Cmd; a transport
		// error fails them all.
		for _, cmd := range cmds {
			if cmd.Err() == nil {
				return cmds, nil
			}
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return cmds, nil
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
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
	return r.client.Ping(ctx).Err()
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
	c := &call{key: key, T: T, tau: T * int64(l.Burst), reply: make(chan callResult, 1)}
	timer := time.NewTimer(r.timeout)
	defer timer.Stop()
	var res []int64
	var err error
	select {
	case r.calls <- c:
		select {
		case out := <-c.reply:
			res, err = out.vals, out.err
		case <-timer.C:
			err = context.DeadlineExceeded
		case <-ctx.Done():
			err = ctx.Err()
		}
	case <-timer.C:
		err = context.DeadlineExceeded
	case <-ctx.Done():
		err = ctx.Err()
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
