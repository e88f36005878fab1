package abuse

import (
	"net/netip"
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

// spreadWindow is the distinct values seen for one key in a window.
type spreadWindow struct {
	start time.Time
	seen  map[string]struct{}
}

// spreadSettings are the signal's thresholds (zero: off).
type spreadSettings struct {
	addresses, identities int
	window                time.Duration
}

// ObserveIdentity feeds an authenticated request: identity is the
// caller's key (pipeline.Scope.Caller), subject its name for the event.
func (g *Guard) ObserveIdentity(identity, subject string, ip netip.Addr, now time.Time) {
	st := g.cfg.Load()
	sp := st.spread
	if sp.window <= 0 || identity == "" || !ip.IsValid() {
		return
	}
	k := clientip.Key(ip, st.v6Bits)
	addr := clientip.KeyString(k)
	if n := spreadAdd(g.idAddrs, identity, addr, sp.addresses, sp.window, now); n > 0 {
		g.spreadEvent("addresses", subject, addr, n, sp.window, now)
	}
	if n := spreadAdd(g.addrIDs, addr, identity, sp.identities, sp.window, now); n > 0 {
		g.spreadEvent("identities", subject, addr, n, sp.window, now)
	}
}

// spreadAdd adds value to key's window and returns the count when it
// reaches limit (the window then starts over), else 0.
func spreadAdd(t *table[string, spreadWindow], key, value string, limit int, window time.Duration, now time.Time) int {
	reached := 0
	t.update(key, true, func(w *spreadWindow, _ bool) bool {
		if w.seen == nil || now.Sub(w.start) >= window {
			*w = spreadWindow{start: now, seen: map[string]struct{}{}}
		}
		w.seen[value] = struct{}{}
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
