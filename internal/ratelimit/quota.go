package ratelimit

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/redisbatch"
)

// CodeQuota is the decision code of an exhausted quota.
const CodeQuota = "quota.exceeded"

// QuotaStore counts requests per key in a calendar window.
type QuotaStore interface {
	// Incr adds one to key's count for the window ending at end and
	// returns the new count.
	Incr(ctx context.Context, key string, end time.Time) (int64, error)
}

// LocalQuotas is an in-process quota store (one machine), holding at
// most maxKeys consumers' counts: past that, the counts of ended windows
// go first, then arbitrary ones (their count starts again), so a flood
// of new consumers costs bounded memory and O(1) per request. Quotas
// that must hold for more consumers belong in Redis.
type LocalQuotas struct {
	counts *shards[quotaEntry]
}

type quotaEntry struct {
	n   int64
	end int64 // unix ns: the window's end
}

// NewLocalQuotas returns an empty store of at most maxKeys consumers.
func NewLocalQuotas(maxKeys int) *LocalQuotas {
	return &LocalQuotas{counts: newShards(maxKeys, func(e quotaEntry, now int64) bool { return e.end <= now })}
}

// Incr implements QuotaStore.
func (q *LocalQuotas) Incr(_ context.Context, key string, end time.Time) (int64, error) {
	var n int64
	q.counts.update(key, time.Now().UnixNano(), func(e quotaEntry, _ bool) (quotaEntry, bool) {
		if e.end != end.UnixNano() {
			e = quotaEntry{end: end.UnixNano()}
		}
		e.n++
		n = e.n
		return e, true
	})
	return n, nil
}

// RedisQuotas keeps quotas in Redis, shared by every instance and
// persistent across restarts; its counts go through the shared batcher.
type RedisQuotas struct {
	batch  *redisbatch.Batcher
	prefix string
}

// NewRedisQuotas counts through batch under prefix.
func NewRedisQuotas(batch *redisbatch.Batcher, prefix string) *RedisQuotas {
	return &RedisQuotas{batch: batch, prefix: prefix}
}

var quotaScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return n
`)

// Incr implements QuotaStore.
func (q *RedisQuotas) Incr(ctx context.Context, key string, end time.Time) (int64, error) {
	// The key names the window, so a late expiry never mixes windows.
	k := q.prefix + key + "|" + strconv.FormatInt(end.Unix(), 10)
	var cmd *redis.Cmd
	if err := q.batch.Do(ctx, func(ctx context.Context, p redis.Pipeliner) {
		cmd = quotaScript.EvalSha(ctx, p, []string{k}, end.Add(time.Hour).UnixMilli())
	}, quotaScript); err != nil {
		return 0, err
	}
	return cmd.Int64()
}

// Quota is one compiled quota of a route.
type Quota struct {
	// Name identifies the quota.
	Name string
	// Limit requests per window.
	Limit int64
	// Monthly selects calendar months (UTC); otherwise calendar days.
	Monthly bool
	// Keys build the consumer key (verified data only).
	Keys []Key
	// FallbackToClientIP counts by the client address in place of a part
	// the request lacks; otherwise such a request is refused.
	FallbackToClientIP bool
	// Store counts.
	Store QuotaStore
	// FailOpen admits requests when the store fails.
	FailOpen bool
}

// windowEnd is the end of the calendar day or month (UTC) holding now.
func windowEnd(now time.Time, monthly bool) time.Time {
	now = now.UTC()
	if monthly {
		return time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
}

// NewQuotas returns the quota stage of a route (nil without quotas).
func NewQuotas(routeID string, quotas []Quota, now func() time.Time) pipeline.Middleware {
	if len(quotas) == 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			s := pipeline.ScopeOf(r.Context())
			t := now()
			for i := range quotas {
				q := &quotas[i]
				key, missing := bucketKey(routeID+"#quota", i, q.Keys, q.FallbackToClientIP, s)
				if missing != "" {
					return keyMissing(missing)
				}
				end := windowEnd(t, q.Monthly)
				n, err := q.Store.Incr(r.Context(), key, end)
				if err != nil {
					if q.FailOpen {
						continue
					}
					return pipeline.DenyErr(http.StatusServiceUnavailable, "ratelimit.unavailable", "quota store unavailable", err)
				}
				if n > q.Limit {
					e := pipeline.Deny(http.StatusTooManyRequests, CodeQuota, "quota exceeded")
					secs := int(math.Ceil(end.Sub(t).Seconds()))
					e.Header = http.Header{"Retry-After": {strconv.Itoa(max(secs, 1))}}
					return e
				}
			}
			return next(w, r)
		}
	}
}
