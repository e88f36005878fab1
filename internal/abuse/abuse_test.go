package abuse

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// v4 returns the i-th address of 10.0.0.0/8 (16.7M addresses).
func v4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// v6 returns an address in the i-th /64 of 2001:db8::/32, host part h.
func v6(i int, h uint16) netip.Addr {
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	b[4], b[5], b[6], b[7] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	b[14], b[15] = byte(h>>8), byte(h)
	return netip.AddrFrom16(b)
}

func scanGuard(maxClients int) *Guard {
	return New(Options{BanFor: time.Minute, MaxClients: maxClients, Detectors: []Detector{
		{Name: "scanning", Threshold: 20, Window: time.Minute, Match: Codes("router.not_found")},
		{Name: "brute_force", Threshold: 10, Window: time.Minute, Match: Statuses(false, 401)},
	}})
}

// TestFloodOfAddressesStaysBounded is the denial of service the guard
// once had: a million distinct client addresses, each sending one 404,
// (through a trusted proxy, or an IPv6 host walking its prefix) must
// neither grow the guard past its bound nor make a new address cost more
// than a constant number of steps; a brute-forcer active during the flood
// is still banned.
func TestFloodOfAddressesStaysBounded(t *testing.T) {
	const capacity, flood = 10000, 1000000
	g := scanGuard(capacity)
	now := time.Unix(1_700_000_000, 0)
	attacker := netip.MustParseAddr("192.0.2.66")
	banned := false
	for i := 0; i < flood; i++ {
		g.Observe(Client{IP: v4(i)}, 404, "router.not_found", false, now)
		if i%1000 == 0 && g.Observe(Client{IP: attacker}, 401, "authn.invalid_token", false, now) != "" {
			banned = true
		}
	}
	if n := g.counts.len(); n > capacity+tableShards*4 {
		t.Fatalf("counters hold %d entries after %d addresses, bound %d", n, flood, capacity)
	}
	steps := 0
	for i := range g.counts.shards {
		steps += g.counts.shards[i].steps
	}
	// Every insertion past the bound evicts once; CLOCK's hand moves at
	// most twice per eviction amortised (a mark is cleared once per touch).
	if steps > 2*(flood+flood/1000) {
		t.Fatalf("eviction took %d hand steps for %d insertions: not O(1) amortised", steps, flood)
	}
	if !banned {
		t.Fatal("a brute-forcer active during the flood was not banned")
	}
	if _, ok := g.Banned(attacker, "", now); !ok {
		t.Fatal("the brute-forcer's ban was evicted by the flood")
	}
}

// TestIPv6KeyedByPrefix: an IPv6 host spreading 404s over the addresses
// of its /64 is one client: it is banned, and the ban covers every
// address of the prefix but not the neighbouring prefix.
func TestIPv6KeyedByPrefix(t *testing.T) {
	g := scanGuard(1000)
	now := time.Unix(1_700_000_000, 0)
	fired := ""
	for h := 0; h < 20; h++ {
		fired = g.Observe(Client{IP: v6(7, uint16(h+1))}, 404, "router.not_found", false, now)
	}
	if fired != "scanning" {
		t.Fatalf("20 404s from one /64: fired %q", fired)
	}
	if _, ok := g.Banned(v6(7, 999), "", now); !ok {
		t.Fatal("another address of the banned /64 is not banned")
	}
	if _, ok := g.Banned(v6(8, 1), "", now); ok {
		t.Fatal("the neighbouring /64 is banned")
	}
	// An IPv4-mapped address is the IPv4 client.
	for i := 0; i < 20; i++ {
		g.Observe(Client{IP: netip.MustParseAddr("::ffff:192.0.2.9")}, 404, "router.not_found", false, now)
	}
	if _, ok := g.Banned(netip.MustParseAddr("192.0.2.9"), "", now); !ok {
		t.Fatal("an IPv4-mapped client is not its IPv4 address")
	}
	// Lifting by any address of the prefix lifts the prefix.
	g.Lift(g.Key(v6(7, 5)))
	if _, ok := g.Banned(v6(7, 1), "", now); ok {
		t.Fatal("lift by an address of the prefix did not lift it")
	}
}

// TestIPv6PrefixConfigurable: with a /56, addresses of different /64s
// inside it are one client.
func TestIPv6PrefixConfigurable(t *testing.T) {
	g := New(Options{BanFor: time.Minute, IPv6Prefix: 56, Detectors: []Detector{
		{Name: "scanning", Threshold: 3, Window: time.Minute, Match: Codes("router.not_found")}}})
	now := time.Unix(1_700_000_000, 0)
	base := netip.MustParseAddr("2001:db8:0:100::1").As16()
	for i := 0; i < 3; i++ {
		b := base
		b[7] = byte(i) // /64s 2001:db8:0:100, :101, :102 — one /56
		g.Observe(Client{IP: netip.AddrFrom16(b)}, 404, "router.not_found", false, now)
	}
	if _, ok := g.Banned(netip.MustParseAddr("2001:db8:0:1ff::9"), "", now); !ok {
		t.Fatal("a /56 client spreading over its /64s is not one client")
	}
}

// TestBansBounded: bans are bounded too, and an expired ban goes.
func TestBansBounded(t *testing.T) {
	g := New(Options{BanFor: time.Second, MaxClients: 640})
	now := time.Unix(1_700_000_000, 0)
	for i := 0; i < 100000; i++ {
		g.Ban(g.Key(v4(i)), now.Add(time.Second))
	}
	if n := g.bans.len(); n > 640 {
		t.Fatalf("%d bans held, bound 640", n)
	}
	if g.ActiveBans(now.Add(2*time.Second)) != 0 {
		t.Fatal("expired bans counted as active")
	}
	k := g.Key(v4(99999))
	if _, ok := g.Banned(v4(99999), "", now.Add(2*time.Second)); ok {
		t.Fatal("an expired ban still applies")
	}
	if g.bans.update(k, false, func(*sanction, bool) bool { return true }) {
		t.Fatal("an expired ban looked at was kept")
	}
}

// TestAccountTablesBounded: attackers choose account names freely; the
// account tables stay bounded and cheap.
func TestAccountTablesBounded(t *testing.T) {
	g := New(Options{BanFor: time.Minute, MaxClients: 6400, AccountIPs: 3, AccountWindow: time.Minute})
	now := time.Unix(1_700_000_000, 0)
	for i := 0; i < 200000; i++ {
		g.ObserveLogin("user"+string(rune(i)), v4(i), 401, now)
	}
	if n := g.accountFail.len(); n > 6400 {
		t.Fatalf("%d accounts followed, bound 6400", n)
	}
	for i := 0; i < 3; i++ {
		g.ObserveLogin("carol", v4(i), 401, now)
	}
	if !g.AccountLocked("carol", now) {
		t.Fatal("account not locked after failures from 3 clients")
	}
}

// TestBaselineBounded: the baseline scores at most its bound of clients
// per interval, however many arrive.
func TestBaselineBounded(t *testing.T) {
	b := NewBaseline(time.Second, 6, 1, 6400)
	now := time.Unix(1_700_000_000, 0)
	for i := 0; i < 200000; i++ {
		b.Add(netip.PrefixFrom(v4(i), 32), 200, 0, now)
	}
	n := 0
	for i := range b.shards {
		n += len(b.shards[i].clients)
	}
	if n > 6400 {
		t.Fatalf("baseline holds %d clients, bound 6400", n)
	}
}

// TestGuardMemoryBounded: the heap held by a guard after a million
// addresses stays near what its bound allows (about 200 bytes per entry).
func TestGuardMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a million observations")
	}
	var g *Guard
	grown := heapGrowth(func() {
		g = New(Options{BanFor: time.Minute, MaxClients: 100000, Baseline: NewBaseline(time.Minute, 6, 50, 100000),
			Detectors: []Detector{{Name: "scanning", Threshold: 50, Window: time.Minute, Match: Codes("router.not_found")}}})
		now := time.Unix(1_700_000_000, 0)
		for i := 0; i < 1000000; i++ {
			g.Observe(Client{IP: v6(i, 1)}, 404, "router.not_found", false, now)
		}
	})
	if limit := int64(100000 * 2 * 300); grown > limit {
		t.Fatalf("guard holds %d MiB after a million clients; bound %d MiB", grown>>20, limit>>20)
	}
	runtime.KeepAlive(g)
}

// heapGrowth is how much live heap fill leaves behind.
func heapGrowth(fill func()) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fill()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

// An identity from many addresses and an address with many identities
// are each reported once per window; other traffic is not.
func TestIdentitySpread(t *testing.T) {
	ev := &pipeline.EventRecorder{}
	g := New(Options{Events: ev, Spread: spreadSettings{addresses: 3, identities: 3, window: time.Minute}})
	now := time.Unix(1000, 0)
	for i := range 5 {
		g.ObserveIdentity(Client{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), Issuer: "iss", Subject: "alice"}, now)
	}
	for i := range 5 {
		g.ObserveIdentity(Client{IP: netip.MustParseAddr("192.0.2.7"), Issuer: "iss", Subject: fmt.Sprint("user", i)}, now)
	}
	for range 20 {
		g.ObserveIdentity(Client{IP: netip.MustParseAddr("198.51.100.1"), Issuer: "iss", Subject: "bob"}, now) // one user, one address
	}
	kinds := map[string]int{}
	for _, e := range ev.Events() {
		if e.Code == "abuse.identity_spread" {
			kinds[e.Attrs["kind"]+":"+e.Subject+"@"+e.ClientIP]++
		}
	}
	if len(kinds) != 2 || kinds["addresses:alice@10.0.0.2"] != 1 || kinds["identities:user2@192.0.2.7"] != 1 {
		t.Fatalf("events: %v", kinds)
	}
}

// The scraping detector fires near its threshold of distinct paths, once
// per window, and never for one path read over and over.
func TestScraping(t *testing.T) {
	ev := &pipeline.EventRecorder{}
	g := New(Options{Events: ev, Scrape: scrapeSettings{distinct: 1000, window: time.Minute}})
	now := time.Unix(1000, 0)
	ip := netip.MustParseAddr("203.0.113.9")
	firedAt := 0
	for i := 1; i <= 1500; i++ {
		g.ObserveRead(Client{IP: ip}, fmt.Sprintf("/products/%d", i), now)
		if firedAt == 0 && len(ev.Events()) > 0 {
			firedAt = i
		}
	}
	if firedAt < 900 || firedAt > 1100 || len(ev.Events()) != 1 || ev.Events()[0].Code != "abuse.scraping" {
		t.Fatalf("fired at %d distinct reads; %d events", firedAt, len(ev.Events()))
	}
	for range 5000 {
		g.ObserveRead(Client{IP: netip.MustParseAddr("198.51.100.2")}, "/products/1", now)
	}
	if len(ev.Events()) != 1 {
		t.Fatal("one path read again and again was reported as scraping")
	}
}

// TestLearnedScraping: on a route whose callers read a few objects per
// window, a caller reading far more is reported long before the
// configured threshold, with the threshold and what the route's callers
// usually read; on a route whose callers read many, the same caller is
// not; before a route has seen enough windows, the configured threshold
// holds.
func TestLearnedScraping(t *testing.T) {
	ev := &pipeline.EventRecorder{}
	sc := scrapeSettings{distinct: 1000, window: time.Minute, learn: learnSettings{z: 6, floor: 50, windows: 50}}
	g := New(Options{Events: ev, Scrape: sc})
	now := time.Unix(1000, 0)
	rng := mrand.New(mrand.NewPCG(3, 4))
	caller := func(i int) Client {
		return Client{IP: netip.AddrFrom4([4]byte{10, 1, byte(i / 250), byte(i % 250)}), Route: "orders"}
	}
	read := func(c Client, n int, route string) {
		c.Route = route
		for j := range n {
			g.ObserveRead(c, fmt.Sprintf("/%s/%d", route, rng.IntN(1000000)+j), now)
		}
	}
	// A fresh route: a caller reading 200 objects is under the
	// configured 1000.
	read(caller(9999), 200, "orders")
	if len(ev.Events()) != 0 {
		t.Fatal("reported before the route's baseline was learned")
	}
	// Three windows: 100 callers read 2–8 orders each; on "catalogue"
	// they read 150–250 items each.
	for range 3 {
		for i := range 100 {
			read(caller(i), 2+rng.IntN(7), "orders")
			read(caller(i), 150+rng.IntN(100), "catalogue")
		}
		now = now.Add(time.Minute)
	}
	for i := range 100 { // their windows end and are learned
		read(caller(i), 1, "orders")
		read(caller(i), 1, "catalogue")
	}
	if len(ev.Events()) != 0 {
		t.Fatalf("usual readers reported: %+v", ev.Events()[0])
	}
	scraper := Client{IP: netip.MustParseAddr("203.0.113.50")}
	read(scraper, 200, "orders")
	evs := ev.Events()
	if len(evs) == 0 || evs[0].Code != "abuse.scraping" || evs[0].Route != "orders" {
		t.Fatalf("a scraper of orders: %d events", len(evs))
	}
	if lim, _ := strconv.Atoi(evs[0].Attrs["limit"]); lim < 50 || lim > 60 || evs[0].Attrs["expected"] == "" {
		t.Fatalf("the learned threshold: %v", evs[0].Attrs)
	}
	read(scraper, 200, "catalogue")
	for _, e := range ev.Events() {
		if e.Route == "catalogue" {
			t.Fatal("200 reads reported on a route whose callers read as many")
		}
	}
}

// TestKeyText: every key reads back from its text, which has no space
// and no slash (it travels in Redis messages and as one URL path
// segment), and session keys never carry the cookie.
func TestKeyText(t *testing.T) {
	h := NewSessionHasher([]byte("k"))
	for _, k := range []Key{
		AddrKey(netip.MustParsePrefix("203.0.113.7/32")),
		AddrKey(netip.MustParsePrefix("2001:db8:1:2::/64")),
		IdentityKey("https://idp.example/realms/a b", "alice@example.com"),
		IdentityKey("CN=Rampart CA,O=Example", "CN=svc/one@two"),
		IdentityKey("rampart", "billing-service"),
		SessionKey(h.Hash("cookie-value")),
	} {
		s := k.String()
		if !k.Addr.IsValid() && (strings.ContainsAny(s, " /") || strings.Contains(s, "cookie-value")) {
			t.Errorf("%q: a space, a slash or the secret", s)
		}
		back, err := ParseKey(s, 64)
		if err != nil || back != k {
			t.Errorf("%q read back as %+v (%v), want %+v", s, back, err, k)
		}
	}
	if got := IdentityKey("https://idp.test", "mallory").String(); got != "identity:mallory@https:%2F%2Fidp.test" {
		t.Errorf("identity text %q", got)
	}
	for _, bad := range []string{"identity:", "identity:alice", "identity:@iss", "session:", "session:xyz", "alice", "10.0.0.0/8"} {
		if _, err := ParseKey(bad, 64); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if h.Hash("a") == NewSessionHasher([]byte("other")).Hash("a") || h.Hash("a") != h.Hash("a") || h.Hash("") != "" {
		t.Error("session hashes: not keyed, not stable, or an empty value hashed")
	}
}

// TestGuardMemoryBoundedIdentities: a flood where every request is a new
// address, a new identity and a new session, refused (a signal under all
// three keys) and feeding the identity spread tables, the scraping
// sketches and the route baseline, leaves the guard within its bound.
func TestGuardMemoryBoundedIdentities(t *testing.T) {
	if testing.Short() {
		t.Skip("300,000 observations")
	}
	const clients = 100000
	var g *Guard
	grown := heapGrowth(func() {
		g = New(Options{BanFor: time.Minute, MaxClients: clients, Baseline: NewBaseline(time.Minute, 6, 50, clients),
			Endpoints: NewEndpoints(time.Minute, 6, 20, func(EndpointAnomaly) {}),
			Spread:    spreadSettings{addresses: 10, identities: 10, window: 10 * time.Minute},
			Scrape:    scrapeSettings{distinct: 1000, window: 10 * time.Minute},
			Detectors: []Detector{{Name: "enumeration", Threshold: 30, Window: time.Minute, Keys: KeyIP | KeyIdentity | KeySession, Match: Statuses(false, 403)}}})
		now := time.Unix(1_700_000_000, 0)
		h := NewSessionHasher([]byte("k"))
		for i := range 300000 {
			c := Client{IP: v6(i, 1), Issuer: "https://flood.test", Subject: fmt.Sprint("flood-", i), Session: h.Hash(fmt.Sprint("flood-", i)), Route: "id", Category: "read"}
			g.Observe(c, 403, "authz.denied", false, now)
			g.ObserveIdentity(c, now)
			g.ObserveRead(c, fmt.Sprint("/id/", i), now)
			g.ObserveEndpoint("id", "read", 403, 100, now)
		}
	})
	t.Logf("guard heap after 300,000 identities: %d MiB", grown>>20)
	if limit := int64(clients * 2 * 300); grown > limit { // 43 MiB measured; identity spread held 127 MiB in maps of strings before
		t.Fatalf("guard holds %d MiB; bound %d MiB", grown>>20, limit>>20)
	}
	runtime.KeepAlive(g)
}

// TestIdentityStage: a banned identity is refused (403) from the stage
// after authentication; a tightened one is held to its limit (429
// abuse.throttled once the throttle refuses, 503 when its store fails);
// other callers pass.
func TestIdentityStage(t *testing.T) {
	now := time.Unix(5000, 0)
	g := New(Options{})
	g.Ban(IdentityKey("https://idp", "mallory"), now.Add(time.Minute))
	g.set(IdentityKey("https://idp", "trudy"), sanction{until: now.Add(time.Minute), tighten: true})
	var left int
	var storeErr error
	var keys []string
	throttle := func(_ context.Context, key string, _ time.Time) (bool, time.Duration, error) {
		keys = append(keys, key)
		left--
		return left >= 0, 7 * time.Second, storeErr
	}
	h := IdentityStage(func() *Guard { return g }, throttle)(func(w http.ResponseWriter, r *http.Request) error { return nil })
	call := func(subject string) error {
		r := httptest.NewRequest("GET", "/orders/1", nil)
		s := &pipeline.Scope{Start: now, Identity: &pipeline.Identity{Issuer: "https://idp", Subject: subject}}
		return h(httptest.NewRecorder(), r.WithContext(pipeline.WithScope(r.Context(), s)))
	}
	status := func(err error) int {
		var d *pipeline.Error
		if errors.As(err, &d) {
			return d.Status
		}
		return 0
	}
	if err := call("alice"); err != nil {
		t.Fatalf("an unsanctioned caller: %v", err)
	}
	if c := status(call("mallory")); c != http.StatusForbidden {
		t.Fatalf("a banned identity: %d", c)
	}
	left = 2
	for i := range 2 {
		if err := call("trudy"); err != nil {
			t.Fatalf("a tightened identity within its limit, request %d: %v", i, err)
		}
	}
	if c := status(call("trudy")); c != http.StatusTooManyRequests {
		t.Fatalf("a tightened identity over its limit: %d", c)
	}
	if keys[0] != "abuse|identity:trudy@https:%2F%2Fidp" {
		t.Fatalf("bucket %q", keys[0])
	}
	left, storeErr = 5, errors.New("store down")
	if c := status(call("trudy")); c != http.StatusServiceUnavailable {
		t.Fatalf("the limit store failing: %d", c)
	}
}
