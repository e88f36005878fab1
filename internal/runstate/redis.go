package runstate

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/authn"
)

// The Redis layout, under the key prefix: two hashes and a channel.
//
//	runtime:revocations  field "jti\x00ID" or "sub\x00ISSUER\x00SUBJECT", value the unix time it ends
//	runtime:drains       field "UPSTREAM\x00TARGET", value "1"
//	runtime              channel: "changed" after every change
const (
	revocationsKey = "runtime:revocations"
	drainsKey      = "runtime:drains"
	channel        = "runtime"
	// rereadEvery bounds how long an instance that missed an
	// announcement (a Redis reconnect) runs on stale state.
	rereadEvery = 30 * time.Second
)

// redisChange writes a change and announces it; the announcement makes
// every instance, this one included, re-read and apply the state.
func (k *Keeper) redisChange(f func(context.Context, redis.Pipeliner)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := k.o.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		f(ctx, p)
		p.Publish(ctx, k.o.Prefix+channel, "changed")
		return nil
	})
	if err != nil {
		return err
	}
	return nil
}

// follow re-reads and applies the state on every announcement and every
// rereadEvery.
func (k *Keeper) follow(ctx context.Context) {
	defer close(k.done)
	sub := k.o.Redis.Subscribe(ctx, k.o.Prefix+channel)
	defer sub.Close()
	tick := time.NewTicker(rereadEvery)
	defer tick.Stop()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		snap, err := k.readRedis(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				k.o.Log.Warn("runtime state not re-read from Redis", "error", err.Error())
			}
			continue
		}
		k.apply(snap)
	}
}

// readRedis reads the whole state, deleting revocations that ended.
func (k *Keeper) readRedis(ctx context.Context) (Snapshot, error) {
	var s Snapshot
	revs, err := k.o.Redis.HGetAll(ctx, k.o.Prefix+revocationsKey).Result()
	if err != nil {
		return s, err
	}
	now := k.o.Now()
	var ended []string
	for field, v := range revs {
		sec, err := strconv.ParseInt(v, 10, 64)
		r, ok := parseRevocationField(field)
		if err != nil || !ok {
			continue
		}
		r.Until = time.Unix(sec, 0)
		if !now.Before(r.Until) {
			ended = append(ended, field)
			continue
		}
		s.Revocations = append(s.Revocations, r)
	}
	if len(ended) > 0 {
		k.o.Redis.HDel(ctx, k.o.Prefix+revocationsKey, ended...)
	}
	drains, err := k.o.Redis.HKeys(ctx, k.o.Prefix+drainsKey).Result()
	if err != nil {
		return s, err
	}
	for _, field := range drains {
		if u, t, ok := strings.Cut(field, "\x00"); ok {
			s.Drains = append(s.Drains, Drain{Upstream: u, Target: t})
		}
	}
	return s, nil
}

func revocationField(r authn.Revocation) string {
	if r.JTI != "" {
		return "jti\x00" + r.JTI
	}
	return "sub\x00" + r.Issuer + "\x00" + r.Subject
}

func parseRevocationField(f string) (authn.Revocation, bool) {
	kind, rest, _ := strings.Cut(f, "\x00")
	switch kind {
	case "jti":
		return authn.Revocation{JTI: rest}, rest != ""
	case "sub":
		iss, sub, ok := strings.Cut(rest, "\x00")
		return authn.Revocation{Issuer: iss, Subject: sub}, ok
	}
	return authn.Revocation{}, false
}

func drainField(d Drain) string { return d.Upstream + "\x00" + d.Target }

// sameRevocation reports whether a and b revoke the same token or
// subject.
func sameRevocation(a, b authn.Revocation) bool {
	return a.JTI == b.JTI && a.Issuer == b.Issuer && a.Subject == b.Subject
}
