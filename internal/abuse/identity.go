package abuse

import (
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/clientip"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// The identity spread signal: one identity used from many client
// addresses within a window (a credential shared or stolen and replayed
// from a botnet), or one address carrying many identities (a client
// cycling accounts, tokens or API keys). Each is reported once per window
// as an abuse.identity_spread event; nothing is refused. The sets are
// bounded: a window ends when it reaches its threshold, and the tables
// hold at most max_clients entries each.

// spreadWindow is the distinct values seen for one key in a window, as
// 64-bit hashes: eight bytes each, the first without a map, so that a
// flood of one-request identities costs little per entry.
type spreadWindow struct {
	start int64 // unix ns
	seen  []uint64
}

// spreadSettings are the signal's thresholds (zero: off).
type spreadSettings struct {
	addresses, identities int
	window                time.Duration
}

// ObserveIdentity feeds a request of an authenticated client.
func (g *Guard) ObserveIdentity(c Client, now time.Time) {
	st := g.cfg.Load()
	sp := st.spread
	if sp.window <= 0 || c.Subject == "" || !c.IP.IsValid() {
		return
	}
	addr := AddrKey(clientip.Key(c.IP, st.v6Bits))
	identity := IdentityKey(c.Issuer, c.Subject)
	if n := spreadAdd(g.idAddrs, g.hash(identity), g.hash(addr), sp.addresses, sp.window, now); n > 0 {
		g.spreadEvent("addresses", c.Subject, addr.String(), n, sp.window, now)
	}
	if n := spreadAdd(g.addrIDs, g.hash(addr), g.hash(identity), sp.identities, sp.window, now); n > 0 {
		g.spreadEvent("identities", c.Subject, addr.String(), n, sp.window, now)
	}
}

// spreadAdd adds value (a hash) to key's window and returns the count
// when it reaches limit (the window then starts over), else 0.
func spreadAdd(t *table[uint64, spreadWindow], key, value uint64, limit int, window time.Duration, now time.Time) int {
	reached := 0
	ns := now.UnixNano()
	t.update(key, true, func(w *spreadWindow, _ bool) bool {
		if w.seen == nil || ns-w.start >= int64(window) {
			*w = spreadWindow{start: ns, seen: make([]uint64, 0, 1)}
		}
		if !slices.Contains(w.seen, value) {
			w.seen = append(w.seen, value)
		}
		if len(w.seen) >= limit {
			reached = len(w.seen)
			return false
		}
		return true
	})
	return reached
}

func (g *Guard) spreadEvent(kind, subject, addr string, n int, window time.Duration, now time.Time) {
	reason := subject + " used from " + strconv.Itoa(n) + " client addresses within " + window.String()
	if kind == "identities" {
		reason = addr + " carried " + strconv.Itoa(n) + " identities within " + window.String()
	}
	g.events.Emit(pipeline.Event{Time: now, Name: "abuse.identity_spread", Code: "abuse.identity_spread",
		ClientIP: addr, Subject: subject, Reason: reason, Attrs: map[string]string{"kind": kind, "count": strconv.Itoa(n)}})
}

// scrapeSettings are the scraping detector's (zero window: off).
type scrapeSettings struct {
	distinct int
	window   time.Duration
	ban      bool
	learn    learnSettings // zero z: the fixed threshold only
}

// learnSettings set a route's threshold from its callers' reads.
type learnSettings struct {
	z       float64
	floor   int
	windows int
}

// ObserveRead feeds a successful GET: a caller (the identity when
// authenticated, else the address) reading more distinct paths of one
// route within the window than the route's threshold is reported once
// per window as abuse.scraping, and with action ban sanctioned like by
// the other detectors. The threshold is the configured one, or lower:
// what the route's callers usually read in a window plus a margin, once
// the route has seen enough windows (readBaseline).
func (g *Guard) ObserveRead(c Client, path string, now time.Time) {
	st := g.cfg.Load()
	sc := st.scrape
	if sc.window <= 0 || !c.IP.IsValid() || st.allowed(c.IP) {
		return
	}
	var buf [1]Key
	kind := KeyIP
	if c.Subject != "" {
		kind = KeyIdentity
	}
	k := c.keys(kind, st.v6Bits, buf[:0])[0]
	var rb *readBaseline
	limit := sc.distinct
	if sc.learn.z > 0 {
		rb = g.readBaselineOf(c.Route)
		limit = rb.limit(sc)
	}
	n, ended := 0, 0
	g.reads.update(g.hash(k)^maphash.String(g.seed, c.Route)*0x9e3779b97f4a7c15, true, func(w *readWindow, _ bool) bool {
		if w.start.IsZero() || now.Sub(w.start) >= sc.window {
			ended = w.count()
			*w = readWindow{start: now}
		}
		if e := w.add(maphash.String(g.seed, path)); e >= limit {
			n = e
			return false // reported (and not learned): the window starts over
		}
		return true
	})
	if ended > 0 && rb != nil {
		rb.learn(ended, sc)
	}
	if n > 0 {
		g.reportScraping(st, c, k, n, limit, rb, now)
	}
}

// reportScraping sanctions or reports a caller that read n distinct
// objects of a route whose threshold is limit.
func (g *Guard) reportScraping(st *settings, c Client, k Key, n, limit int, rb *readBaseline, now time.Time) {
	sc := st.scrape
	if sc.ban {
		g.sanctionKey(st, k, "scraping", c, now)
		return
	}
	attrs := map[string]string{"detector": "scraping", "count": strconv.Itoa(n), "limit": strconv.Itoa(limit),
		"window": sc.window.String(), "key": k.Kind(), "category": c.Category}
	reason := strconv.Itoa(n) + " distinct objects read within " + sc.window.String()
	if mean, sd, ok := rb.learned(sc); ok && limit < sc.distinct {
		attrs["expected"] = strconv.FormatFloat(mean, 'f', 1, 64)
		reason += ", where the route's callers read " + strconv.FormatFloat(mean, 'f', 1, 64) + " ± " + strconv.FormatFloat(sd, 'f', 1, 64)
	}
	g.events.Emit(pipeline.Event{Time: now, Name: "abuse.scraping", Code: "abuse.scraping", ClientIP: clientip.KeyString(clientip.Key(c.IP, st.v6Bits)),
		Subject: c.Subject, Reason: reason, Route: c.Route, Attrs: attrs})
}

// readBaseline is what one route's callers usually read in a window:
// learned from every caller's window that ended without a report (a
// window reported as scraping is not learned from). The threshold it
// gives is kept in an atomic, so reads do not take its lock.
type readBaseline struct {
	mu     sync.Mutex
	stat   ewma
	seen   int
	learnt atomic.Int64 // the learned threshold, 0 until enough windows were seen
}

// readAlpha is the learning rate once a route has its first windows.
const readAlpha = 0.02

func (g *Guard) readBaselineOf(route string) *readBaseline {
	if v, ok := g.readRoutes.Load(route); ok {
		return v.(*readBaseline)
	}
	v, _ := g.readRoutes.LoadOrStore(route, &readBaseline{})
	return v.(*readBaseline)
}

// limit is the route's threshold: learned, between the floor and the
// configured one, once enough windows were seen; else the configured one.
func (b *readBaseline) limit(sc scrapeSettings) int {
	if l := int(b.learnt.Load()); l > 0 {
		return min(l, sc.distinct)
	}
	return sc.distinct
}

// learn takes in a caller's finished window of n distinct reads.
func (b *readBaseline) learn(n int, sc scrapeSettings) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seen++
	b.stat.add(float64(n), max(readAlpha, 1/float64(b.seen)))
	if b.seen >= sc.learn.windows {
		l := b.stat.mean + sc.learn.z*math.Sqrt(b.stat.variance)
		b.learnt.Store(int64(max(int(math.Ceil(l)), sc.learn.floor)))
	}
}

// learned returns the route's learned mean and deviation, if in use.
func (b *readBaseline) learned(sc scrapeSettings) (mean, sd float64, ok bool) {
	if b == nil {
		return 0, 0, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stat.mean, math.Sqrt(b.stat.variance), b.seen >= sc.learn.windows
}

// readBits is the size of a caller's distinct-path sketch: 256 bytes, so
// a full table of readers stays small whatever the threshold.
const readBits = 2048

// readWindow estimates the distinct paths a caller read in a window by
// linear counting: each path sets one bit of a fixed bitmap; n distinct
// paths leave about readBits·e^(−n/readBits) bits clear. Accurate to a
// few percent up to several thousand paths, in constant memory.
type readWindow struct {
	start time.Time
	bits  [readBits / 64]uint64
	set   int
}

// add sets h's bit and returns the estimated distinct count.
func (w *readWindow) add(h uint64) int {
	i := h % readBits
	if w.bits[i/64]&(1<<(i%64)) == 0 {
		w.bits[i/64] |= 1 << (i % 64)
		w.set++
	}
	return w.count()
}

// count is the estimated distinct count.
func (w *readWindow) count() int {
	free := readBits - w.set
	if free == 0 {
		return math.MaxInt32
	}
	return int(math.Round(-readBits * math.Log(float64(free)/readBits)))
}
