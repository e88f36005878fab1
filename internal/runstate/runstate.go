// Package runstate keeps what operators change at runtime through the
// admin API (token revocations, drained upstream targets, bans) past a
// restart. With Redis the state lives there, shared by every instance:
// each change is one hash field, announced on a channel, and every
// instance re-reads the whole state and applies it (and re-reads it
// every half minute, in case an announcement was missed). Without Redis
// it is one file, written through the encrypted store (atomically, 0600)
// on every change and read back at start; a file that fails to decrypt
// stops the start with an error naming it, never an empty state.
package runstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/authn"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/ratelimit"
	"github.com/rampart-gw/rampart/internal/store"
)

// Drain is a drained upstream target.
type Drain struct {
	Upstream string `json:"upstream"`
	Target   string `json:"target"`
}

// Ban is a banned client (an address or an IPv6 prefix) until a time.
type Ban struct {
	Client string    `json:"client"`
	Until  time.Time `json:"until"`
}

// Snapshot is the whole runtime state.
type Snapshot struct {
	Revocations []authn.Revocation `json:"revocations"`
	Drains      []Drain            `json:"drains"`
	// Bans are kept in the file only: with Redis the abuse guard shares
	// its bans itself.
	Bans []Ban `json:"bans,omitempty"`
}

// Target is what the state is applied to.
type Target struct {
	// JTIs receives the runtime revocations (replacing those it had).
	JTIs *authn.JTIStore
	// Drain drains or resumes a target; an error (a target the plan no
	// longer has) is logged and the drain kept for a later plan.
	Drain func(upstream, target string, drained bool) error
	// Ban restores a ban read from the file and Bans lists those in
	// force (nil: abuse detection off).
	Ban  func(client string, until time.Time)
	Bans func(yield func(client string, until time.Time))
	Now  func() time.Time
	Log  *slog.Logger
}

// Options say where the state lives: Redis when Redis is set, else File
// (through Store; a nil Store writes plaintext), else nowhere.
type Options struct {
	File   string
	Store  *store.Store
	Redis  redis.UniversalClient
	Prefix string // the Redis key prefix (rate_limiting.redis.key_prefix)
	Target
	ownClient bool // Close closes Redis
}

// FromConfig opens the keeper cfg asks for: in Redis with a
// rate_limiting.redis section (its own client, as the section was at
// start), else in state.runtime_file, else nowhere.
func FromConfig(cfg *config.Config, t Target) (*Keeper, error) {
	o := Options{Target: t}
	switch {
	case cfg.RateLimiting.Redis != nil:
		o.Redis, o.Prefix, o.ownClient = ratelimit.Client(cfg.RateLimiting.Redis), cfg.RateLimiting.Redis.KeyPrefix, true
	case cfg.State != nil && cfg.State.RuntimeFile != "":
		secrets, err := store.FromConfig(cfg.State)
		if err != nil {
			return nil, err
		}
		o.File, o.Store = cfg.State.RuntimeFile, secrets
	}
	return Open(o)
}

// Keeper persists and shares the runtime state. A Keeper with neither
// Redis nor a file keeps nothing: its changes last until a restart.
type Keeper struct {
	o       Options
	mu      sync.Mutex
	snap    Snapshot       // the state as last written or read
	drained map[Drain]bool // drains applied to the running plan
	stop    context.CancelFunc
	done    chan struct{}
}

// Open reads the state and applies it; with Redis it then follows the
// changes other instances make until Close.
func Open(o Options) (*Keeper, error) {
	k := &Keeper{o: o}
	switch {
	case o.Redis != nil:
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		snap, err := k.readRedis(ctx)
		cancel()
		if err != nil {
			o.Log.Warn("runtime state not read from Redis; it will be when Redis answers", "error", err.Error())
		}
		k.apply(snap)
		ctx, k.stop = context.WithCancel(context.Background())
		k.done = make(chan struct{})
		go k.follow(ctx)
	case o.File != "":
		snap, err := k.readFile()
		if err != nil {
			return nil, err
		}
		k.apply(snap)
	}
	return k, nil
}

// Close stops following Redis.
func (k *Keeper) Close() {
	if k != nil && k.stop != nil {
		k.stop()
		<-k.done
		if k.o.ownClient {
			_ = k.o.Redis.Close()
		}
	}
}

// Where says where the state is kept, for the log.
func (k *Keeper) Where() string {
	switch {
	case k.o.Redis != nil:
		return "redis"
	case k.o.File != "":
		return k.o.File
	}
	return "memory (until restart)"
}

// Revoke records a runtime revocation of a jti, or of an issuer's
// subject, until a time (replacing one of the same token or subject).
func (k *Keeper) Revoke(jti, issuer, subject string, until time.Time) error {
	r := authn.Revocation{JTI: jti, Issuer: issuer, Subject: subject, Until: until}
	if k.o.Redis != nil {
		return k.redisChange(func(ctx context.Context, p redis.Pipeliner) {
			p.HSet(ctx, k.o.Prefix+revocationsKey, revocationField(r), r.Until.Unix())
		})
	}
	return k.fileChange(func(s *Snapshot) {
		s.Revocations = slices.DeleteFunc(s.Revocations, func(x authn.Revocation) bool { return sameRevocation(x, r) })
		s.Revocations = append(s.Revocations, r)
	})
}

// Unrevoke removes a runtime revocation.
func (k *Keeper) Unrevoke(jti, issuer, subject string) error {
	r := authn.Revocation{JTI: jti, Issuer: issuer, Subject: subject}
	if k.o.Redis != nil {
		return k.redisChange(func(ctx context.Context, p redis.Pipeliner) {
			p.HDel(ctx, k.o.Prefix+revocationsKey, revocationField(r))
		})
	}
	return k.fileChange(func(s *Snapshot) {
		s.Revocations = slices.DeleteFunc(s.Revocations, func(x authn.Revocation) bool { return sameRevocation(x, r) })
	})
}

// SetDrain records a target as drained or resumed.
func (k *Keeper) SetDrain(upstream, target string, drained bool) error {
	d := Drain{Upstream: upstream, Target: target}
	if k.o.Redis != nil {
		return k.redisChange(func(ctx context.Context, p redis.Pipeliner) {
			if drained {
				p.HSet(ctx, k.o.Prefix+drainsKey, drainField(d), "1")
			} else {
				p.HDel(ctx, k.o.Prefix+drainsKey, drainField(d))
			}
		})
	}
	return k.fileChange(func(s *Snapshot) {
		s.Drains = slices.DeleteFunc(s.Drains, func(x Drain) bool { return x == d })
		if drained {
			s.Drains = append(s.Drains, d)
		}
	})
}

// SaveBans records the bans in force, as Target.Bans lists them (the
// file only: with Redis the abuse guard shares bans itself).
func (k *Keeper) SaveBans() error {
	if k.o.Redis != nil || k.o.Bans == nil {
		return nil
	}
	var bans []Ban
	k.o.Bans(func(client string, until time.Time) { bans = append(bans, Ban{Client: client, Until: until}) })
	return k.fileChange(func(s *Snapshot) { s.Bans = bans })
}

// Reapply drains the targets of a new plan as the state says (a reload
// builds new pools for changed upstreams).
func (k *Keeper) Reapply() {
	k.mu.Lock()
	drains := slices.Clone(k.snap.Drains)
	k.mu.Unlock()
	for _, d := range drains {
		_ = k.o.Drain(d.Upstream, d.Target, true)
	}
}

// apply puts a snapshot in force: revocations replace the runtime ones,
// targets no longer drained resume, bans are restored.
func (k *Keeper) apply(s Snapshot) {
	now := k.o.Now()
	k.mu.Lock()
	old := k.snap.Drains
	k.snap = s
	k.mu.Unlock()
	k.o.JTIs.ReplaceRuntime(s.Revocations, now)
	for _, d := range old {
		if !slices.Contains(s.Drains, d) {
			_ = k.o.Drain(d.Upstream, d.Target, false)
		}
	}
	for _, d := range s.Drains {
		if err := k.o.Drain(d.Upstream, d.Target, true); err != nil {
			k.o.Log.Warn("a drained target is not in the running config; its drain is kept", "upstream", d.Upstream, "target", d.Target)
		}
	}
	if k.o.Ban != nil {
		for _, b := range s.Bans {
			if now.Before(b.Until) {
				k.o.Ban(b.Client, b.Until)
			}
		}
	}
}

// fileChange applies f to the state and writes the file (no file: the
// change is kept in memory only).
func (k *Keeper) fileChange(f func(*Snapshot)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.o.Now()
	next := Snapshot{Revocations: slices.Clone(k.snap.Revocations), Drains: slices.Clone(k.snap.Drains), Bans: slices.Clone(k.snap.Bans)}
	f(&next)
	next.Revocations = slices.DeleteFunc(next.Revocations, func(r authn.Revocation) bool { return !now.Before(r.Until) })
	next.Bans = slices.DeleteFunc(next.Bans, func(b Ban) bool { return !now.Before(b.Until) })
	if k.o.File != "" {
		b, err := json.Marshal(fileFormat{Version: 1, Snapshot: next})
		if err != nil {
			return err
		}
		if err := k.o.Store.Write(k.o.File, b); err != nil {
			return fmt.Errorf("runtime state not saved to %s: %w", k.o.File, err)
		}
	}
	k.snap = next
	return nil
}

// fileFormat is the file's JSON.
type fileFormat struct {
	Version int `json:"version"`
	Snapshot
}

// readFile reads the file (missing: an empty state).
func (k *Keeper) readFile() (Snapshot, error) {
	b, err := k.o.Store.Read(k.o.File)
	if errors.Is(err, fs.ErrNotExist) {
		return Snapshot{}, nil
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("runtime state: %w", err)
	}
	var f fileFormat
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		return Snapshot{}, fmt.Errorf("runtime state: %s is not a runtime state file (version 1)", k.o.File)
	}
	return f.Snapshot, nil
}
