// Package abuse detects abusive clients from what the gateway answers them
// (bursts of 401s, of refusals across ids, of unknown paths) and bans
// them for a while. Bans are shared across instances through Redis when
// configured; operators can lift them.
package abuse

import (
	"cmp"
	"context"
	"encoding/hex"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/clientip"
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

// counter is one detector's count for one client in its current window.
type counter struct {
	n     int32
	gen   uint32 // the settings generation that made it; a reload restarts counts
	start int64  // unix ns
}

type counterKey struct {
	detector uint8
	client   netip.Prefix
}

// settings are what a reload replaces; the request path reads them with
// one atomic load.
type settings struct {
	gen        uint32
	detectors  []Detector
	allow      []netip.Prefix
	banFor     time.Duration
	banOutlie  bool
	tighten    bool // detections tighten the client's limit instead of banning
	accountIPs int
	accountWin time.Duration
	v6Bits     int
	spread     spreadSettings
	scrape     scrapeSettings
}

// DefaultMaxClients bounds each of the guard's tables unless configured.
const DefaultMaxClients = 100000

// Guard holds the detectors, the counters and the ban list. It lives
// outside the plan, so bans and counters survive reloads.
//
// Security: every table is bounded and sharded (see table), so a client
// with an endless supply of addresses (a trusted proxy forwarding them, an
// IPv6 host using its /64) can neither grow memory nor slow anyone down;
// IPv6 clients are keyed by prefix (clientip.Key), so such a host is one
// client to the detectors and its ban covers the whole prefix.
type Guard struct {
	cfg      atomic.Pointer[settings]
	baseline atomic.Pointer[Baseline]
	counts   *table[counterKey, counter]
	bans     *table[netip.Prefix, sanction]
	log      *slog.Logger
	events   pipeline.Events
	redis    redis.UniversalClient
	prefix   string
	stopSub  context.CancelFunc
	reconfig sync.Mutex // serialises Configure

	// Account-level detection: failed logins on one account from many
	// client addresses (credential stuffing spread over a botnet).
	accountFail *table[string, accountWindow]
	locked      *table[string, time.Time]
	idAddrs     *table[string, spreadWindow] // identity → client addresses
	addrIDs     *table[string, spreadWindow] // client address → identities
	reads       *table[string, readWindow]   // caller → a sketch of the distinct paths read
	readSeed    maphash.Seed
}

type accountWindow struct {
	start time.Time
	ips   map[netip.Prefix]struct{}
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
	// distinct client addresses within AccountWindow (0: off).
	AccountIPs    int
	AccountWindow time.Duration
	// IPv6Prefix keys IPv6 clients by this prefix length (default 64).
	IPv6Prefix int
	// MaxClients bounds the detector counters, the bans, the accounts
	// followed and (per interval) the baseline's clients. Fixed at New.
	// Default DefaultMaxClients.
	MaxClients int
	// Spread are the identity spread thresholds (zero window: off).
	Spread spreadSettings
	// Scrape is the scraping detector (zero window: off).
	Scrape scrapeSettings
}

// New builds a guard; with Redis it loads current bans and follows new
// ones and lifts published by other instances.
func New(o Options) *Guard {
	n := o.MaxClients
	if n <= 0 {
		n = DefaultMaxClients
	}
	g := &Guard{counts: newTable[counterKey, counter](n), bans: newTable[netip.Prefix, sanction](n),
		accountFail: newTable[string, accountWindow](n), locked: newTable[string, time.Time](n),
		idAddrs: newTable[string, spreadWindow](n), addrIDs: newTable[string, spreadWindow](n),
		reads: newTable[string, readWindow](max(n/10, 1024)), readSeed: maphash.MakeSeed(),
		log: o.Log, events: o.Events, redis: o.Redis, prefix: o.Prefix}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.events == nil {
		g.events = pipeline.NoEvents{}
	}
	g.Configure(o)
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
// and bans (counters of a changed detector list restart).
func (g *Guard) Configure(o Options) {
	g.reconfig.Lock()
	defer g.reconfig.Unlock()
	var gen uint32
	if old := g.cfg.Load(); old != nil {
		gen = old.gen + 1
	}
	g.cfg.Store(&settings{gen: gen, detectors: o.Detectors, allow: o.Allow, banFor: o.BanFor,
		banOutlie: o.BanOutliers, tighten: o.Tighten, accountIPs: o.AccountIPs, accountWin: o.AccountWindow,
		v6Bits: cmp.Or(o.IPv6Prefix, clientip.DefaultIPv6Prefix), spread: o.Spread, scrape: o.Scrape})
	if b := g.baseline.Load(); (o.Baseline == nil) != (b == nil) {
		g.baseline.Store(o.Baseline) // keep the learned state unless turned on or off
	}
}

// Key is the key under which the guard keeps ip's state.
func (g *Guard) Key(ip netip.Addr) netip.Prefix { return clientip.Key(ip, g.cfg.Load().v6Bits) }

// Banned reports whether ip is banned at now, and until when. A client
// whose limit is tightened instead is not banned (see Tightened).
func (g *Guard) Banned(ip netip.Addr, now time.Time) (time.Time, bool) {
	sc, ok := g.sanction(g.Key(ip), now)
	if !ok || sc.tighten {
		return time.Time{}, false
	}
	return sc.until, true
}

// Tightened reports whether ip's limit is tightened at now.
func (g *Guard) Tightened(ip netip.Addr, now time.Time) bool {
	sc, ok := g.sanction(g.Key(ip), now)
	return ok && sc.tighten
}

func (g *Guard) sanction(k netip.Prefix, now time.Time) (sc sanction, ok bool) {
	g.bans.update(k, false, func(v *sanction, _ bool) bool {
		sc, ok = *v, now.Before(v.until)
		return ok // an expired ban goes when it is next looked at
	})
	return sc, ok
}

// Observe feeds one finished request. It returns the detector that banned
// the client, or "".
func (g *Guard) Observe(ip netip.Addr, status int, code string, sensitive bool, now time.Time) string {
	if !ip.IsValid() {
		return ""
	}
	st := g.cfg.Load()
	k := clientip.Key(ip, st.v6Bits)
	g.observeBaseline(st, k, status, now)
	matched := false
	for _, d := range st.detectors {
		if d.Match(status, code, sensitive) {
			matched = true
			break
		}
	}
	if !matched || st.allowed(ip) {
		return "" // the common case: no table touched
	}
	fired := ""
	for i, d := range st.detectors {
		if !d.Match(status, code, sensitive) {
			continue
		}
		if g.count(st, uint8(i), k, d, now) && fired == "" {
			fired = d.Name
		}
	}
	if fired == "" {
		return ""
	}
	sc := sanction{until: now.Add(st.banFor), tighten: st.tighten}
	g.bans.set(k, sc)
	g.event(eventName(sc), clientip.KeyString(k), map[string]string{"detector": fired, "until": sc.until.UTC().Format(time.RFC3339)})
	g.publish(k, sc)
	return fired
}

// count adds one signal of detector i for client k and reports whether it
// crossed the threshold (the count then starts over).
func (g *Guard) count(st *settings, i uint8, k netip.Prefix, d Detector, now time.Time) (fired bool) {
	ns := now.UnixNano()
	g.counts.update(counterKey{i, k}, true, func(c *counter, _ bool) bool {
		if c.gen != st.gen || ns-c.start >= int64(d.Window) {
			*c = counter{gen: st.gen, start: ns}
		}
		c.n++
		fired = int(c.n) >= d.Threshold
		return !fired
	})
	return fired
}

// observeBaseline feeds the learned baseline and acts on the outliers of
// an interval that just closed.
func (g *Guard) observeBaseline(st *settings, k netip.Prefix, status int, now time.Time) {
	b := g.baseline.Load()
	if b == nil {
		return
	}
	for out, signal := range b.Add(k, status, now) {
		if st.allowed(out.Addr()) {
			continue
		}
		key := clientip.KeyString(out)
		if !st.banOutlie {
			g.event("abuse.anomaly", key, map[string]string{"signal": signal})
			continue
		}
		sc := sanction{until: now.Add(st.banFor), tighten: st.tighten}
		g.bans.set(out, sc)
		g.event(eventName(sc), key, map[string]string{"detector": "anomaly:" + signal, "until": sc.until.UTC().Format(time.RFC3339)})
		g.publish(out, sc)
	}
}

func (st *settings) allowed(ip netip.Addr) bool {
	for _, p := range st.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// AccountLocked reports whether logins for account (on a route) are
// locked at now.
func (g *Guard) AccountLocked(account string, now time.Time) bool {
	if account == "" {
		return false
	}
	locked := false
	g.locked.update(account, false, func(until *time.Time, _ bool) bool {
		locked = now.Before(*until)
		return locked
	})
	return locked
}

// ObserveLogin feeds the outcome of a login attempt naming account: a 401
// from a new client counts towards locking the account.
func (g *Guard) ObserveLogin(account string, ip netip.Addr, status int, now time.Time) bool {
	if account == "" || status != 401 {
		return false
	}
	st := g.cfg.Load()
	if st.accountIPs <= 0 {
		return false
	}
	k := clientip.Key(ip, st.v6Bits)
	fired := false
	g.accountFail.update(account, true, func(w *accountWindow, _ bool) bool {
		if w.ips == nil || now.Sub(w.start) >= st.accountWin {
			*w = accountWindow{start: now, ips: map[netip.Prefix]struct{}{}}
		}
		w.ips[k] = struct{}{} // bounded: the window ends at accountIPs clients
		fired = len(w.ips) >= st.accountIPs
		return !fired
	})
	if !fired {
		return false
	}
	until := now.Add(st.banFor)
	g.locked.set(account, until)
	g.event("abuse.account_locked", "", map[string]string{"detector": "credential_stuffing", "account": account, "until": until.UTC().Format(time.RFC3339)})
	g.publishLock(account, until)
	return true
}

// Ban bans client k until the given time (operators, other instances).
func (g *Guard) Ban(k netip.Prefix, until time.Time) { g.bans.set(k, sanction{until: until}) }

// BanEverywhere bans client k until the given time here and, with Redis,
// on every instance (an operator's ban through the admin API).
func (g *Guard) BanEverywhere(k netip.Prefix, until time.Time) {
	sc := sanction{until: until}
	g.bans.set(k, sc)
	g.publish(k, sc)
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

// Lift removes client k's ban locally and, with Redis, everywhere.
func (g *Guard) Lift(k netip.Prefix) {
	g.bans.remove(k)
	if g.redis != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := LiftShared(ctx, g.redis, g.prefix, k); err != nil {
			g.log.Warn("lifting a shared ban", "client", clientip.KeyString(k), "err", err)
		}
	}
}

func (g *Guard) publish(k netip.Prefix, sc sanction) {
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
	key := clientip.KeyString(k)
	g.redis.Set(ctx, g.prefix+"ban:"+key, v, time.Until(sc.until))
	g.redis.Publish(ctx, g.prefix+"bans", "ban "+key+" "+v)
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
					g.locked.set(string(acc), time.Unix(sec, 0))
				}
				continue
			}
			k, ok := parseKey(f[1])
			if !ok {
				continue
			}
			switch {
			case f[0] == "ban" && len(f) >= 3:
				if sc, ok := parseSanction(f[2:]); ok {
					g.bans.set(k, sc)
				}
			case f[0] == "lift":
				g.bans.remove(k)
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
			g.locked.set(string(acc), time.Unix(sec, 0))
		}
	}
	iter := g.redis.Scan(ctx, 0, g.prefix+"ban:*", 1000).Iterator()
	for iter.Next(ctx) {
		rk := iter.Val()
		k, ok := parseKey(strings.TrimPrefix(rk, g.prefix+"ban:"))
		if !ok {
			continue
		}
		v, err := g.redis.Get(ctx, rk).Result()
		if err != nil {
			continue
		}
		if sc, ok := parseSanction(strings.Fields(v)); ok {
			g.bans.set(k, sc)
		}
	}
}

// KeyPrefix is where the guard keeps its shared state in a Redis whose
// rampart keys start with base (rate_limiting.redis.key_prefix).
func KeyPrefix(base string) string { return base + "abuse:" }

// parseKey reads a client key as publish writes it (clientip.KeyString).
func parseKey(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err == nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// LiftShared lifts client k's ban in a Redis shared by running instances
// (the `rampart bans lift` command).
func LiftShared(ctx context.Context, client redis.UniversalClient, prefix string, k netip.Prefix) error {
	key := clientip.KeyString(k)
	if err := client.Del(ctx, prefix+"ban:"+key).Err(); err != nil {
		return err
	}
	return client.Publish(ctx, prefix+"bans", "lift "+key).Err()
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
	n := 0
	g.bans.each(func(_ netip.Prefix, sc sanction) {
		if sc.until.After(now) {
			n++
		}
	})
	return n
}

// BanInfo is one sanctioned client.
type BanInfo struct {
	// Client is the key banned: an IPv4 address or an IPv6 prefix.
	Client  netip.Prefix
	Until   time.Time
	Tighten bool
}

// List returns the clients sanctioned at now, soonest expiry first.
func (g *Guard) List(now time.Time) []BanInfo {
	var out []BanInfo
	g.bans.each(func(k netip.Prefix, sc sanction) {
		if sc.until.After(now) {
			out = append(out, BanInfo{Client: k, Until: sc.until, Tighten: sc.tighten})
		}
	})
	slices.SortFunc(out, func(a, b BanInfo) int { return a.Until.Compare(b.Until) })
	return out
}
