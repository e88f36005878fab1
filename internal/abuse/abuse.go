// Package abuse detects abusive clients from what the gateway answers them
// (bursts of 401s, of refusals across ids, of unknown paths) and bans
// them for a while. Bans are shared across instances through Redis when
// configured; operators can lift them.
package abuse

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Detector counts one kind of signal per client IP in fixed windows and
// fires when a client crosses the threshold within one window.
type Detector struct {
	// Name is the detector's name in events ("brute_force", ...).
	Name string
	// Match says whether a finished request is a signal.
	Match func(status int, code string, sensitive bool) bool
	// Threshold of signals per Window.
	Threshold int
	// Window of counting.
	Window time.Duration
}

type counter struct {
	n     int
	start time.Time
}

// Guard holds the detectors, the counters and the ban list. It lives
// outside the plan, so bans and counters survive reloads.
type Guard struct {
	mu        sync.RWMutex
	detectors []Detector
	counts    map[string]*counter // detector|ip
	bans      map[netip.Addr]time.Time
	allow     []netip.Prefix
	banFor    time.Duration
	log       *slog.Logger
	redis     redis.UniversalClient
	prefix    string
	stopSub   context.CancelFunc
	baseline  *Baseline
	banOutlie bool
}

// Options configure a Guard.
type Options struct {
	Detectors []Detector
	// BanFor is the ban duration.
	BanFor time.Duration
	// Allow lists clients never banned.
	Allow []netip.Prefix
	// Log receives security events.
	Log *slog.Logger
	// Redis, when set, shares bans across instances (key prefix Prefix).
	Redis  redis.UniversalClient
	Prefix string
	// Baseline, when set, scores every client against the learned
	// population; BanOutliers bans them, otherwise they are only reported.
	Baseline    *Baseline
	BanOutliers bool
}

// New builds a guard; with Redis it loads current bans and follows new
// ones and lifts published by other instances.
func New(o Options) *Guard {
	g := &Guard{detectors: o.Detectors, counts: map[string]*counter{}, bans: map[netip.Addr]time.Time{},
		allow: o.Allow, banFor: o.BanFor, log: o.Log, redis: o.Redis, prefix: o.Prefix,
		baseline: o.Baseline, banOutlie: o.BanOutliers}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.redis != nil {
		ctx, cancel := context.WithCancel(context.Background())
		g.stopSub = cancel
		go g.follow(ctx)
	}
	return g
}

// Close stops following Redis.
func (g *Guard) Close() {
	if g.stopSub != nil {
		g.stopSub()
	}
}

// Configure replaces detectors and settings on reload, keeping counters
// and bans.
func (g *Guard) Configure(o Options) {
	g.mu.Lock()
	g.detectors, g.allow, g.banFor, g.banOutlie = o.Detectors, o.Allow, o.BanFor, o.BanOutliers
	if (o.Baseline == nil) != (g.baseline == nil) {
		g.baseline = o.Baseline // keep the learned state unless turned on or off
	}
	g.mu.Unlock()
}

// Banned reports whether ip is banned at now, and until when.
func (g *Guard) Banned(ip netip.Addr, now time.Time) (time.Time, bool) {
	g.mu.RLock()
	until, ok := g.bans[ip]
	g.mu.RUnlock()
	if ok && !now.Before(until) {
		return time.Time{}, false // expired; swept with the counters
	}
	return until, ok
}

// Observe feeds one finished request. It returns the detector that banned
// the client, or "".
func (g *Guard) Observe(ip netip.Addr, status int, code string, sensitive bool, now time.Time) string {
	if !ip.IsValid() {
		return ""
	}
	g.observeBaseline(ip, status, now)
	g.mu.RLock()
	any := false
	for _, d := range g.detectors {
		if d.Match(status, code, sensitive) {
			any = true
			break
		}
	}
	g.mu.RUnlock()
	if !any {
		return "" // the common case: no lock taken for writing
	}
	g.mu.Lock()
	for _, p := range g.allow {
		if p.Contains(ip) {
			g.mu.Unlock()
			return ""
		}
	}
	fired := ""
	for _, d := range g.detectors {
		if !d.Match(status, code, sensitive) {
			continue
		}
		k := d.Name + "|" + ip.String()
		c := g.counts[k]
		if c == nil || now.Sub(c.start) >= d.Window {
			if len(g.counts) > 200000 {
				g.sweepLocked(now)
			}
			c = &counter{start: now}
			g.counts[k] = c
		}
		c.n++
		if c.n >= d.Threshold && fired == "" {
			fired = d.Name
			delete(g.counts, k)
		}
	}
	var until time.Time
	if fired != "" {
		until = now.Add(g.banFor)
		g.bans[ip] = until
	}
	g.mu.Unlock()
	if fired != "" {
		g.log.Warn("security event", "event", "abuse.banned", "detector", fired, "client_ip", ip.String(), "until", until.UTC().Format(time.RFC3339))
		g.publish(ip, until)
	}
	return fired
}

// observeBaseline feeds the learned baseline and acts on the outliers of
// an interval that just closed.
func (g *Guard) observeBaseline(ip netip.Addr, status int, now time.Time) {
	g.mu.RLock()
	b, ban := g.baseline, g.banOutlie
	g.mu.RUnlock()
	if b == nil {
		return
	}
	for out, signal := range b.Add(ip, status, now) {
		if g.allowed(out) {
			continue
		}
		if !ban {
			g.log.Warn("security event", "event", "abuse.anomaly", "signal", signal, "client_ip", out.String())
			continue
		}
		until := now.Add(g.banFor)
		g.Ban(out, until)
		g.log.Warn("security event", "event", "abuse.banned", "detector", "anomaly:"+signal, "client_ip", out.String(), "until", until.UTC().Format(time.RFC3339))
		g.publish(out, until)
	}
}

func (g *Guard) allowed(ip netip.Addr) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	for _, p := range g.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (g *Guard) sweepLocked(now time.Time) {
	for k, c := range g.counts {
		if now.Sub(c.start) > time.Hour {
			delete(g.counts, k)
		}
	}
	for ip, until := range g.bans {
		if !now.Before(until) {
			delete(g.bans, ip)
		}
	}
}

// Ban bans ip until the given time (operators, other instances).
func (g *Guard) Ban(ip netip.Addr, until time.Time) {
	g.mu.Lock()
	g.bans[ip] = until
	g.mu.Unlock()
}

// Lift removes a ban locally and, with Redis, everywhere.
func (g *Guard) Lift(ip netip.Addr) {
	g.mu.Lock()
	delete(g.bans, ip)
	g.mu.Unlock()
	if g.redis != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		g.redis.Del(ctx, g.prefix+"ban:"+ip.String())
		g.redis.Publish(ctx, g.prefix+"bans", "lift "+ip.String())
	}
}

func (g *Guard) publish(ip netip.Addr, until time.Time) {
	if g.redis == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ttl := time.Until(until)
	g.redis.Set(ctx, g.prefix+"ban:"+ip.String(), strconv.FormatInt(until.Unix(), 10), ttl)
	g.redis.Publish(ctx, g.prefix+"bans", "ban "+ip.String()+" "+strconv.FormatInt(until.Unix(), 10))
}

// follow loads current bans from Redis and applies bans and lifts other
// instances publish.
func (g *Guard) follow(ctx context.Context) {
	sub := g.redis.Subscribe(ctx, g.prefix+"bans")
	defer sub.Close()
	g.loadBans(ctx)
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			f := strings.Fields(m.Payload)
			if len(f) < 2 {
				continue
			}
			ip, err := netip.ParseAddr(f[1])
			if err != nil {
				continue
			}
			switch {
			case f[0] == "ban" && len(f) == 3:
				if sec, err := strconv.ParseInt(f[2], 10, 64); err == nil {
					g.Ban(ip, time.Unix(sec, 0))
				}
			case f[0] == "lift":
				g.mu.Lock()
				delete(g.bans, ip)
				g.mu.Unlock()
			}
		}
	}
}

func (g *Guard) loadBans(ctx context.Context) {
	iter := g.redis.Scan(ctx, 0, g.prefix+"ban:*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		ip, err := netip.ParseAddr(strings.TrimPrefix(k, g.prefix+"ban:"))
		if err != nil {
			continue
		}
		v, err := g.redis.Get(ctx, k).Int64()
		if err == nil {
			g.Ban(ip, time.Unix(v, 0))
		}
	}
}

// LiftShared lifts a ban in a Redis shared by running instances (the
// `rampart bans lift` command).
func LiftShared(ctx context.Context, client redis.UniversalClient, prefix string, ip netip.Addr) error {
	if err := client.Del(ctx, prefix+"ban:"+ip.String()).Err(); err != nil {
		return err
	}
	return client.Publish(ctx, prefix+"bans", "lift "+ip.String()).Err()
}

// Statuses returns a Match for these response statuses (on any route, or
// only on sensitive routes).
func Statuses(onlySensitive bool, statuses ...int) func(int, string, bool) bool {
	return func(status int, _ string, sensitive bool) bool {
		if onlySensitive && !sensitive {
			return false
		}
		for _, s := range statuses {
			if s == status {
				return true
			}
		}
		return false
	}
}

// Codes returns a Match for these decision codes.
func Codes(codes ...string) func(int, string, bool) bool {
	return func(_ int, code string, _ bool) bool {
		for _, c := range codes {
			if c == code {
				return true
			}
		}
		return false
	}
}
