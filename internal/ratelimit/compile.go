package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/redisbatch"
)

// Stages compiles a route's rate_limits, split in two: those keyed by the
// client IP and the route alone run before authentication (cheap refusals
// first, and floods of bad credentials are limited too); identity-keyed
// ones run after authorization. shared is nil without Redis.
func Stages(r config.Route, local Store, shared *Shared, now func() time.Time) (pre, post pipeline.Middleware) {
	var early, late []Rule
	for _, rl := range r.RateLimits {
		rule := Rule{Name: rl.Name, Store: local, Limit: LimitOf(rl.Rate, rl.Per, rl.Burst)}
		if rl.Store == "redis" && shared != nil {
			rule.Store, rule.Fallback, rule.FailOpen = shared.limiter, local, rl.OnStoreError == "fail_open"
		}
		var identity bool
		rule.Keys, identity = keys(rl.Key)
		rule.FallbackToClientIP = rl.OnMissingKey == "client_ip"
		if rl.TierClaim != "" {
			identity = true
			rule.TierClaim, rule.Tiers = rl.TierClaim, map[string]Limit{}
			for name, tier := range rl.Tiers {
				rule.Tiers[name] = LimitOf(tier.Rate, tier.Per, tier.Burst)
			}
		}
		if identity {
			late = append(late, rule)
		} else {
			early = append(early, rule)
		}
	}
	pre = New(Options{RouteID: r.ID, Rules: early, Now: now})
	post = New(Options{RouteID: r.ID + "#id", Rules: late, Now: now})
	return pre, post
}

// LimitOf is a configured rate: rate requests per period, with burst.
func LimitOf(rate int, per config.Duration, burst int) Limit {
	return Limit{Rate: rate, Period: per.D(), Burst: burst}
}

// QuotaStage compiles a route's quotas over store (local, or Redis when
// configured: shared and persistent).
func QuotaStage(r config.Route, store QuotaStore, now func() time.Time) pipeline.Middleware {
	var qs []Quota
	for _, q := range r.Quotas {
		cq := Quota{Name: q.Name, Limit: q.Limit, Monthly: q.Period == "month", Store: store, FailOpen: q.OnStoreError == "fail_open"}
		cq.Keys, _ = keys(q.Key)
		cq.FallbackToClientIP = q.OnMissingKey == "client_ip"
		qs = append(qs, cq)
	}
	return NewQuotas(r.ID, qs, now)
}

// keys maps configured key names to verified key sources; identity
// reports whether any needs the authenticated caller.
func keys(names []string) (parts []Key, identity bool) {
	for _, s := range names {
		k, _ := config.ParseLimitKey(s) // checked at load
		parts = append(parts, Key{Part: keyPart(k.Kind), Claim: k.Claim})
		identity = identity || k.Identity()
	}
	return parts, identity
}

// keyPart maps a config key kind to the limiter's key source.
func keyPart(kind string) KeyPart {
	switch kind {
	case config.LimitKeySubject:
		return KeySubject
	case config.LimitKeyAPIKey:
		return KeyAPIKey
	case config.LimitKeyClaim:
		return KeyClaim
	case config.LimitKeyRoute:
		return KeyRoute
	}
	return KeyClientIP
}

// Shared is the Redis client, limit store and quota store of a redis
// section, shared by every gateway instance, and the config it was made
// from. Connecting is lazy: a Redis that is down at start is handled by
// each limit's failure policy.
type Shared struct {
	fingerprint string
	client      redis.UniversalClient
	batch       *redisbatch.Batcher
	limiter     *Redis
	quotas      *RedisQuotas
}

// OpenShared returns prev when the section is unchanged, a new client
// otherwise (nil without a section).
func OpenShared(c *config.Redis, prev *Shared) *Shared {
	if c == nil {
		return nil
	}
	fp := fmt.Sprintf("%v|%s|%s|%s|%d|%s|%s", c.Addresses, c.MasterName, c.Username, c.Password.Reveal(), c.DB, c.Timeout, c.KeyPrefix)
	if prev != nil && prev.fingerprint == fp {
		return prev
	}
	client := Client(c)
	batch := redisbatch.New(client, c.Timeout.D())
	return &Shared{fingerprint: fp, client: client, batch: batch, limiter: NewRedis(batch, c.KeyPrefix, c.Timeout.D()),
		quotas: NewRedisQuotas(batch, c.KeyPrefix+"quota:")}
}

// Batcher returns the batcher of the Redis client's commands (nil on a
// nil Shared).
func (s *Shared) Batcher() *redisbatch.Batcher {
	if s == nil {
		return nil
	}
	return s.batch
}

// Client returns the Redis client (nil on a nil Shared).
func (s *Shared) Client() redis.UniversalClient {
	if s == nil {
		return nil
	}
	return s.client
}

// Quotas is the shared quota store, or local when s is nil.
func (s *Shared) Quotas(local QuotaStore) QuotaStore {
	if s == nil {
		return local
	}
	return s.quotas
}

// Close stops the limiter and closes the client (nil: no-op).
func (s *Shared) Close() {
	if s != nil {
		s.batch.Close()
		_ = s.client.Close()
	}
}

// Health reports whether the shared store answers, for readiness:
// "ok", "recovering: limit checks paused" (its circuit breaker is open)
// or "unreachable".
func (s *Shared) Health(ctx context.Context, now time.Time) (string, bool) {
	err := s.limiter.Ready(ctx, now)
	switch {
	case errors.Is(err, ErrStoreOpen):
		return "recovering: limit checks paused", false
	case err != nil:
		return "unreachable", false
	}
	return "ok", true
}
