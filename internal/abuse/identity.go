package abuse

import (
	"hash/maphash"
	"math"
	"slices"
	"strconv"
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
}

// ObserveRead feeds a successful GET: a caller (the identity when
// authenticated, else the address) reading more distinct paths than the
// threshold within the window is reported once per window as
// abuse.scraping, and with action ban sanctioned like by the other
// detectors.
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
	n := 0
	g.reads.update(g.hash(k), true, func(w *readWindow, _ bool) bool {
		if w.start.IsZero() || now.Sub(w.start) >= sc.window {
			*w = readWindow{start: now}
		}
		if e := w.add(maphash.String(g.seed, path)); e >= sc.distinct {
			n = e
			return false // reported: the window starts over
		}
		return true
	})
	if n == 0 {
		return
	}
	if sc.ban {
		g.sanctionKey(st, k, "scraping", c, now)
		return
	}
	g.events.Emit(pipeline.Event{Time: now, Name: "abuse.scraping", Code: "abuse.scraping", ClientIP: clientip.KeyString(clientip.Key(c.IP, st.v6Bits)),
		Subject: c.Subject, Reason: strconv.Itoa(n) + " distinct objects read within " + sc.window.String(),
		Route: c.Route, Attrs: map[string]string{"detector": "scraping", "count": strconv.Itoa(n), "window": sc.window.String(), "key": k.Kind(), "category": c.Category}})
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
	free := readBits - w.set
	if free == 0 {
		return math.MaxInt32
	}
	return int(math.Round(-readBits * math.Log(float64(free)/readBits)))
}
