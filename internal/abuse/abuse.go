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
	// Keys are the keys it counts by (KeyIP, KeyIdentity, KeySession;
	// zero: KeyIP). Each key has its own count, and the key whose count
	// crosses the threshold is the one sanctioned.
	Keys KeyKinds
}

// KeyKinds is a set of the kinds of key a detector counts by.
type KeyKinds uint8

// The kinds of key.
const (
	KeyIP KeyKinds = 1 << iota
	KeyIdentity
	KeySession
)

// Client is who a finished request came from, under every key the guard
// may count it by.
type Client struct {
	IP      netip.Addr
	Issuer  string // with Subject: the authenticated identity, if any
	Subject string
	Session string // the session cookie's hash (SessionHasher), if any
	// Route and Category are where the request went ("" before routing),
	// for the events.
	Route, Category string
	// Bytes is the size of the answer's body.
	Bytes int64
}

// keys returns c's keys of the kinds in ks.
func (c Client) keys(ks KeyKinds, v6Bits int, out []Key) []Key {
	if ks == 0 {
		ks = KeyIP
	}
	if ks&KeyIP != 0 && c.IP.IsValid() {
		out = append(out, AddrKey(clientip.Key(c.IP, v6Bits)))
	}
	if ks&KeyIdentity != 0 && c.Subject != "" {
		out = append(out, IdentityKey(c.Issuer, c.Subject))
	}
	if ks&KeySession != 0 && c.Session != "" {
		out = append(out, SessionKey(c.Session))
	}
	return out
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

// counterKey is one detector's count of one key, the key kept as a
// 64-bit keyed hash: eight bytes per entry, whatever the key's length (a
// collision, one in 2^64 per pair, would only share a count).
type counterKey struct {
	detector uint8
	client   uint64
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
	cfg       atomic.Pointer[settings]
	baseline  atomic.Pointer[Baseline]
	endpoints atomic.Pointer[Endpoints]
	counts    *table[counterKey, counter]
	bans      *table[Key, sanction]
	idBans    atomic.Bool // an identity or session was ever sanctioned: their lookups are worth making
	log       *slog.Logger
	events    pipeline.Events
	redis     redis.UniversalClient
	prefix    string
	stopSub   context.CancelFunc
	reconfig  sync.Mutex // serialises Configure

	// Account-level detection: failed logins on one account from many
	// client addresses (credential stuffing spread over a botnet).
	accountFail *table[string, accountWindow]
	locked      *table[string, time.Time]
	idAddrs     *table[uint64, spreadWindow] // identity (hash) → client addresses
	addrIDs     *table[uint64, spreadWindow] // client address (hash) → identities
	reads       *table[uint64, readWindow]   // caller and route (hash) → a sketch of the distinct paths read
	readRoutes  sync.Map                     // route → *readBaseline: what its callers usually read (kept across reloads)
	seed        maphash.Seed                 // of the hashes that key those tables and the counters
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
	// Endpoints, when set, learns every route's traffic and reports the
	// intervals that stand out (abuse.anomaly events naming the route).
	Endpoints *Endpoints
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
	g := &Guard{counts: newTable[counterKey, counter](n), bans: newTable[Key, sanction](n),
		accountFail: newTable[string, accountWindow](n), locked: newTable[string, time.Time](n),
		idAddrs: newTable[uint64, spreadWindow](n), addrIDs: newTable[uint64, spreadWindow](n),
		reads: newTable[uint64, readWindow](max(n/10, 1024)), seed: maphash.MakeSeed(),
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
	if e := g.endpoints.Load(); e == nil || o.Endpoints == nil || !e.adopt(o.Endpoints) {
		g.endpoints.Store(o.Endpoints) // a new interval starts learning anew
	}
}

// hash is k's keyed hash, the key of the counters and the per-caller
// tables.
func (g *Guard) hash(k Key) uint64 { return maphash.Comparable(g.seed, k) }

// Key is the key under which the guard keeps ip's state.
func (g *Guard) Key(ip netip.Addr) Key { return AddrKey(clientip.Key(ip, g.cfg.Load().v6Bits)) }

// Banned reports whether ip (or the session, when not "") is banned at
// now, and until when. A client whose limit is tightened instead is not
// banned (see Tightened).
func (g *Guard) Banned(ip netip.Addr, session string, now time.Time) (time.Time, bool) {
	if sc, ok := g.sanction(g.Key(ip), now); ok && !sc.tighten {
		return sc.until, true
	}
	if session != "" && g.idBans.Load() {
		if sc, ok := g.sanction(SessionKey(session), now); ok && !sc.tighten {
			return sc.until, true
		}
	}
	return time.Time{}, false
}

// Tightened reports whether ip's limit is tightened at now.
func (g *Guard) Tightened(ip netip.Addr, now time.Time) bool {
	sc, ok := g.sanction(g.Key(ip), now)
	return ok && sc.tighten
}

// IdentitySanction reports whether an authenticated identity is
// sanctioned at now: until when, and whether tightened rather than
// banned.
func (g *Guard) IdentitySanction(issuer, subject string, now time.Time) (until time.Time, tighten, ok bool) {
	if !g.idBans.Load() {
		return time.Time{}, false, false // the common case: no identity was ever sanctioned
	}
	sc, ok := g.sanction(IdentityKey(issuer, subject), now)
	return sc.until, sc.tighten, ok
}

func (g *Guard) sanction(k Key, now time.Time) (sc sanction, ok bool) {
	g.bans.update(k, false, func(v *sanction, _ bool) bool {
		sc, ok = *v, now.Before(v.until)
		return ok // an expired ban goes when it is next looked at
	})
	return sc, ok
}

// Observe feeds one finished request: each detector it is a
// signal for counts it under each of the client's keys the detector
// counts by. It returns the detector that sanctioned a key, or "".
func (g *Guard) Observe(c Client, status int, code string, sensitive bool, now time.Time) string {
	if !c.IP.IsValid() {
		return ""
	}
	st := g.cfg.Load()
	g.observeBaseline(st, clientip.Key(c.IP, st.v6Bits), status, c.Bytes, now)
	matched := false
	for _, d := range st.detectors {
		if d.Match(status, code, sensitive) {
			matched = true
			break
		}
	}
	if !matched || st.allowed(c.IP) || code == CodeBanned || code == CodeThrottled {
		return "" // the common case: no table touched; a sanctioned client's refusals are not new signals
	}
	fired := ""
	var buf [3]Key
	for i, d := range st.detectors {
		if !d.Match(status, code, sensitive) {
			continue
		}
		for _, k := range c.keys(d.Keys, st.v6Bits, buf[:0]) {
			if g.count(st, uint8(i), k, d, now) {
				g.sanctionKey(st, k, d.Name, c, now)
				fired = cmp.Or(fired, d.Name)
			}
		}
	}
	return fired
}

// sanctionKey bans (or tightens) key k of client c for the ban
// duration, reports it and shares it.
func (g *Guard) sanctionKey(st *settings, k Key, detector string, c Client, now time.Time) {
	sc := sanction{until: now.Add(st.banFor), tighten: st.tighten}
	g.set(k, sc)
	attrs := map[string]string{"detector": detector, "until": sc.until.UTC().Format(time.RFC3339), "key": k.Kind()}
	if c.Category != "" {
		attrs["category"] = c.Category
	}
	ev := pipeline.Event{Time: now, Name: eventName(sc), Code: eventName(sc), Route: c.Route, Subject: c.Subject, Attrs: attrs}
	k.Tag(&ev)
	g.events.Emit(ev)
	g.publish(k, sc)
}

// set records a sanction of k.
func (g *Guard) set(k Key, sc sanction) {
	if !k.Addr.IsValid() {
		g.idBans.Store(true)
	}
	g.bans.set(k, sc)
}

// count adds one signal of detector i for client k and reports whether it
// crossed the threshold (the count then starts over).
func (g *Guard) count(st *settings, i uint8, k Key, d Detector, now time.Time) (fired bool) {
	ns := now.UnixNano()
	g.counts.update(counterKey{i, g.hash(k)}, true, func(c *counter, _ bool) bool {
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
func (g *Guard) observeBaseline(st *settings, k netip.Prefix, status int, bytes int64, now time.Time) {
	b := g.baseline.Load()
	if b == nil {
		return
	}
	for out, signal := range b.Add(k, status, bytes, now) {
		if st.allowed(out.Addr()) {
			continue
		}
		key := clientip.KeyString(out)
		if !st.banOutlie {
			g.event("abuse.anomaly", key, map[string]string{"signal": signal})
			continue
		}
		g.sanctionKey(st, AddrKey(out), "anomaly:"+signal, Client{}, now)
	}
}

// ObserveEndpoint feeds the route baselines one finished request.
func (g *Guard) ObserveEndpoint(route, category string, status int, bytes int64, now time.Time) {
	if e := g.endpoints.Load(); e != nil {
		e.Add(route, category, status, bytes, now)
	}
}

// EndpointEvent reports an endpoint anomaly on the security event stream.
func EndpointEvent(events pipeline.Events, now func() time.Time) func(EndpointAnomaly) {
	return func(a EndpointAnomaly) {
		f := func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }
		events.Emit(pipeline.Event{Time: now(), Name: "abuse.anomaly", Code: "abuse.anomaly", Route: a.Route, Reason: a.Reason(),
			Attrs: map[string]string{"scope": "route", "signal": a.Signal, "category": a.Category, "observed": f(a.Observed),
				"expected": f(a.Expected), "z": f(a.Z), "hour": strconv.Itoa(a.Hour)}})
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
func (g *Guard) Ban(k Key, until time.Time) { g.set(k, sanction{until: until}) }

// BanEverywhere bans client k until the given time here and, with Redis,
// on every instance (an operator's ban through the admin API).
func (g *Guard) BanEverywhere(k Key, until time.Time) {
	sc := sanction{until: until}
	g.set(k, sc)
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
func (g *Guard) Lift(k Key) {
	g.bans.remove(k)
	if g.redis != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := LiftShared(ctx, g.redis, g.prefix, k); err != nil {
			g.log.Warn("lifting a shared ban", "client", k.String(), "err", err)
		}
	}
}

func (g *Guard) publish(k Key, sc sanction) {
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
	key := k.String()
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
			k, err := ParseKey(f[1], g.cfg.Load().v6Bits)
			if err != nil {
				continue
			}
			switch {
			case f[0] == "ban" && len(f) >= 3:
				if sc, ok := parseSanction(f[2:]); ok {
					g.set(k, sc)
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
		k, err := ParseKey(strings.TrimPrefix(rk, g.prefix+"ban:"), g.cfg.Load().v6Bits)
		if err != nil {
			continue
		}
		v, err := g.redis.Get(ctx, rk).Result()
		if err != nil {
			continue
		}
		if sc, ok := parseSanction(strings.Fields(v)); ok {
			g.set(k, sc)
		}
	}
}

// KeyPrefix is where the guard keeps its shared state in a Redis whose
// rampart keys start with base (rate_limiting.redis.key_prefix).
func KeyPrefix(base string) string { return base + "abuse:" }

// LiftShared lifts client k's ban in a Redis shared by running instances
// (the `rampart bans lift` command).
func LiftShared(ctx context.Context, client redis.UniversalClient, prefix string, k Key) error {
	key := k.String()
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
	g.bans.each(func(_ Key, sc sanction) {
		if sc.until.After(now) {
			n++
		}
	})
	return n
}

// BanInfo is one sanctioned client.
type BanInfo struct {
	// Client is the key banned: an IPv4 address, an IPv6 prefix, an
	// identity or a session.
	Client  Key
	Until   time.Time
	Tighten bool
}

// List returns the clients sanctioned at now, soonest expiry first.
func (g *Guard) List(now time.Time) []BanInfo {
	var out []BanInfo
	g.bans.each(func(k Key, sc sanction) {
		if sc.until.After(now) {
			out = append(out, BanInfo{Client: k, Until: sc.until, Tighten: sc.tighten})
		}
	})
	slices.SortFunc(out, func(a, b BanInfo) int { return a.Until.Compare(b.Until) })
	return out
}
