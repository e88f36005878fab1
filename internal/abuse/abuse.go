// Package abuse detects abusive clients from what the gateway answers them
// (bursts of 401s, of refusals across ids, of unknown paths) and bans
// them for a while. Bans are shared across instances through Redis when
// configured; operators can lift them.
package abuse

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/pipeline"
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

// sanction is what a detected client gets: a ban, or a tightened limit.
type sanction struct {
	until   time.Time
	tighten bool
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
	bans      map[netip.Addr]sanction
	allow     []netip.Prefix
	banFor    time.Duration
	log       *slog.Logger
	events    pipeline.Events
	redis     redis.UniversalClient
	prefix    string
	stopSub   context.CancelFunc
	baseline  *Baseline
	banOutlie bool
	tighten   bool // detections tighten the client's limit instead of banning

	// Account-level detection: failed logins on one account from many
	// client IPs (credential stuffing spread over a botnet).
	accountIPs  int
	accountWin  time.Duration
	accountFail map[string]*accountWindow
	locked      map[string]time.Time
}

type accountWindow struct {
	start time.Time
	ips   map[netip.Addr]struct{}
}

// Options configure a Guard.
type Options struct {
	Detectors []Detector
	// BanFor is the ban duration.
	BanFor time.Duration
	// Allow lists clients never banned.
	Allow []netip.Prefix
	// Log receives operational messages (Redis trouble).
	Log *slog.Logger
	// Events receives the detectors' findings: bans, tightenings,
	// anomalies and account locks.
	Events pipeline.Events
	// Redis, when set, shares bans across instances (key prefix Prefix).
	Redis  redis.UniversalClient
	Prefix string
	// Baseline, when set, scores every client against the learned
	// population; BanOutliers bans them, otherwise they are only reported.
	Baseline    *Baseline
	BanOutliers bool
	// Tighten makes detections (and banned outliers) throttle the client
	// to the caller's tightened limit instead of refusing everything.
	Tighten bool
	// AccountIPs locks an account after failed logins from this many
	// distinct client IPs within AccountWindow (0: off).
	AccountIPs    int
	AccountWindow time.Duration
}

// New builds a guard; with Redis it loads current bans and follows new
// ones and lifts published by other instances.
func New(o Options) *Guard {
	g := &Guard{detectors: o.Detectors, counts: map[string]*counter{}, bans: map[netip.Addr]sanction{},
		allow: o.Allow, banFor: o.BanFor, log: o.Log, redis: o.Redis, prefix: o.Prefix,
		baseline: o.Baseline, banOutlie: o.BanOutliers, tighten: o.Tighten,
		accountIPs: o.AccountIPs, accountWin: o.AccountWindow,
		accountFail: map[string]*accountWindow{}, locked: map[string]time.Time{}}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.events = o.Events
	if g.events == nil {
		g.events = pipeline.NoEvents{}
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
	g.detectors, g.allow, g.banFor, g.banOutlie, g.tighten = o.Detectors, o.Allow, o.BanFor, o.BanOutliers, o.Tighten
	g.accountIPs, g.accountWin = o.AccountIPs, o.AccountWindow
	if (o.Baseline == nil) != (g.baseline == nil) {
		g.baseline = o.Baseline // keep the learned state unless turned on or off
	}
	g.mu.Unlock()
}

// Banned reports whether ip is banned at now, and until when. A client
// whose limit is tightened instead is not banned (see Tightened).
func (g *Guard) Banned(ip netip.Addr, now time.Time) (time.Time, bool) {
	sc, ok := g.sanction(ip, now)
	if !ok || sc.tighten {
		return time.Time{}, false
	}
	return sc.until, true
}

// Tightened reports whether ip's limit is tightened at now.
func (g *Guard) Tightened(ip netip.Addr, now time.Time) bool {
	sc, ok := g.sanction(ip, now)
	return ok && sc.tighten
}

func (g *Guard) sanction(ip netip.Addr, now time.Time) (sanction, bool) {
	g.mu.RLock()
	sc, ok := g.bans[ip]
	g.mu.RUnlock()
	if ok && !now.Before(sc.until) {
		return sanction{}, false // expired; swept with the counters
	}
	return sc, ok
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
	var sc sanction
	if fired != "" {
		sc = sanction{until: now.Add(g.banFor), tighten: g.tighten}
		g.bans[ip] = sc
	}
	g.mu.Unlock()
	if fired != "" {
		g.event(eventName(sc), ip.String(), map[string]string{"detector": fired, "until": sc.until.UTC().Format(time.RFC3339)})
		g.publish(ip, sc)
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
			g.event("abuse.anomaly", out.String(), map[string]string{"signal": signal})
			continue
		}
		g.mu.RLock()
		sc := sanction{until: now.Add(g.banFor), tighten: g.tighten}
		g.mu.RUnlock()
		g.set(out, sc)
		g.event(eventName(sc), out.String(), map[string]string{"detector": "anomaly:" + signal, "until": sc.until.UTC().Format(time.RFC3339)})
		g.publish(out, sc)
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
	for ip, sc := range g.bans {
		if !now.Before(sc.until) {
			delete(g.bans, ip)
		}
	}
}

// AccountLocked reports whether logins for account (on a route) are
// locked at now.
func (g *Guard) AccountLocked(account string, now time.Time) bool {
	if account == "" {
		return false
	}
	g.mu.RLock()
	until, ok := g.locked[account]
	g.mu.RUnlock()
	return ok && now.Before(until)
}

// ObserveLogin feeds the outcome of a login attempt naming account: a 401
// from a new client IP counts towards locking the account.
func (g *Guard) ObserveLogin(account string, ip netip.Addr, status int, now time.Time) bool {
	if account == "" || status != 401 {
		return false
	}
	g.mu.Lock()
	if g.accountIPs <= 0 {
		g.mu.Unlock()
		return false
	}
	w := g.accountFail[account]
	if w == nil || now.Sub(w.start) >= g.accountWin {
		if len(g.accountFail) > 100000 {
			for k, v := range g.accountFail {
				if now.Sub(v.start) >= g.accountWin {
					delete(g.accountFail, k)
				}
			}
		}
		w = &accountWindow{start: now, ips: map[netip.Addr]struct{}{}}
		g.accountFail[account] = w
	}
	w.ips[ip] = struct{}{}
	fired := len(w.ips) >= g.accountIPs
	var until time.Time
	if fired {
		until = now.Add(g.banFor)
		g.locked[account] = until
		delete(g.accountFail, account)
	}
	g.mu.Unlock()
	if fired {
		g.event("abuse.account_locked", "", map[string]string{"detector": "credential_stuffing", "account": account, "until": until.UTC().Format(time.RFC3339)})
		g.publishLock(account, until)
	}
	return fired
}

// Ban bans ip until the given time (operators, other instances).
func (g *Guard) Ban(ip netip.Addr, until time.Time) { g.set(ip, sanction{until: until}) }

func (g *Guard) set(ip netip.Addr, sc sanction) {
	g.mu.Lock()
	g.bans[ip] = sc
	g.mu.Unlock()
}

// event puts a detector finding on the security event stream.
func (g *Guard) event(name, clientIP string, attrs map[string]string) {
	g.events.Emit(pipeline.Event{Name: name, Code: name, ClientIP: clientIP, Attrs: attrs})
}

func eventName(sc sanction) string {
	if sc.tighten {
		return "abuse.tightened"
	}
	return "abuse.banned"
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

func (g *Guard) publish(ip netip.Addr, sc sanction) {
	if g.redis == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	kind := "ban"
	if sc.tighten {
		kind = "tighten"
	}
	v := strconv.FormatInt(sc.until.Unix(), 10) + " " + kind
	g.redis.Set(ctx, g.prefix+"ban:"+ip.String(), v, time.Until(sc.until))
	g.redis.Publish(ctx, g.prefix+"bans", "ban "+ip.String()+" "+v)
}

// publishLock shares an account lock with the other instances. Account
// names travel hex-encoded so that no byte of them can break the message.
func (g *Guard) publishLock(account string, until time.Time) {
	if g.redis == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	a := hex.EncodeToString([]byte(account))
	g.redis.Set(ctx, g.prefix+"lock:"+a, strconv.FormatInt(until.Unix(), 10), time.Until(until))
	g.redis.Publish(ctx, g.prefix+"bans", "lock "+a+" "+strconv.FormatInt(until.Unix(), 10))
}

// parseSanction reads "UNIX [ban|tighten]".
func parseSanction(f []string) (sanction, bool) {
	if len(f) == 0 {
		return sanction{}, false
	}
	sec, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return sanction{}, false
	}
	return sanction{until: time.Unix(sec, 0), tighten: len(f) > 1 && f[1] == "tighten"}, true
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
			if f[0] == "lock" && len(f) == 3 {
				acc, err1 := hex.DecodeString(f[1])
				sec, err2 := strconv.ParseInt(f[2], 10, 64)
				if err1 == nil && err2 == nil {
					g.mu.Lock()
					g.locked[string(acc)] = time.Unix(sec, 0)
					g.mu.Unlock()
				}
				continue
			}
			ip, err := netip.ParseAddr(f[1])
			if err != nil {
				continue
			}
			switch {
			case f[0] == "ban" && len(f) >= 3:
				if sc, ok := parseSanction(f[2:]); ok {
					g.set(ip, sc)
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
	locks := g.redis.Scan(ctx, 0, g.prefix+"lock:*", 1000).Iterator()
	for locks.Next(ctx) {
		k := locks.Val()
		acc, err := hex.DecodeString(strings.TrimPrefix(k, g.prefix+"lock:"))
		if err != nil {
			continue
		}
		if sec, err := g.redis.Get(ctx, k).Int64(); err == nil {
			g.mu.Lock()
			g.locked[string(acc)] = time.Unix(sec, 0)
			g.mu.Unlock()
		}
	}
	iter := g.redis.Scan(ctx, 0, g.prefix+"ban:*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		ip, err := netip.ParseAddr(strings.TrimPrefix(k, g.prefix+"ban:"))
		if err != nil {
			continue
		}
		v, err := g.redis.Get(ctx, k).Result()
		if err != nil {
			continue
		}
		if sc, ok := parseSanction(strings.Fields(v)); ok {
			g.set(ip, sc)
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

// ActiveBans counts the clients banned or tightened at now.
func (g *Guard) ActiveBans(now time.Time) int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	n := 0
	for _, sc := range g.bans {
		if sc.until.After(now) {
			n++
		}
	}
	return n
}

// BanInfo is one sanctioned client.
type BanInfo struct {
	IP      netip.Addr
	Until   time.Time
	Tighten bool
}

// List returns the clients sanctioned at now, soonest expiry first.
func (g *Guard) List(now time.Time) []BanInfo {
	g.mu.RLock()
	out := make([]BanInfo, 0, len(g.bans))
	for ip, sc := range g.bans {
		if sc.until.After(now) {
			out = append(out, BanInfo{IP: ip, Until: sc.until, Tighten: sc.tighten})
		}
	}
	g.mu.RUnlock()
	slices.SortFunc(out, func(a, b BanInfo) int { return a.Until.Compare(b.Until) })
	return out
}
