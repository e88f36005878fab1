package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/redis/go-redis/v9"
)

// abuseWith is abuseConfig (no Redis) with settings in place of its
// "ban_for: 1s" line (settings: whole lines, ban_for among them).
func abuseWith(up, settings string) string {
	return strings.Replace(abuseConfig(up, ""), "  ban_for: 1s\n", settings, 1)
}

// getStatus sends a GET for path to addr from the source address src and
// returns its status line(s).
func getStatus(t *testing.T, src, addr, path string) string {
	return strings.Join(statusLines(rawExchangeFrom(t, src, addr, "GET "+path+" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")), ",")
}

func abuseConfig(up, redisLine string) string {
	return `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up + `"}]}]
authn:
  jwt:
    - ` + hsIssuer() + `
` + redisLine + `abuse:
  ban_for: 1s
  brute_force: {threshold: 5, sensitive_threshold: 5, window: 1m}
  scanning: {threshold: 8, window: 1m}
routes:
  - id: login
    path: /login
    upstream: svc
    sensitive: true
    auth: {jwt: [idp]}
    authorize: any_authenticated
  - id: public
    prefix: /public
    upstream: svc
    category: read
    public: true
`
}

// TestBruteForceBan: five 401s in the window ban the client (403
// abuse.banned, nothing forwarded, even with a valid token); the ban lifts
// after its TTL. Bans propagate between instances through Redis, and an
// operator lift applies everywhere.
func TestBruteForceBan(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	_, addr := startGateway(t, abuseConfig(up.hostPort(), ""))
	good := hsToken(t, map[string]any{"sub": "alice"})
	try := func(a, tok, path string) string {
		hdr := ""
		if tok != "" {
			hdr = "Authorization: Bearer " + tok + "\r\n"
		}
		return strings.Join(statusLines(rawExchange(t, a, "GET "+path+" HTTP/1.1\r\nHost: gw\r\n"+hdr+"Connection: close\r\n\r\n")), ",")
	}
	for i := 0; i < 5; i++ {
		if c := try(addr, "wrong.token.here", "/login"); c != "401" {
			t.Fatalf("attempt %d: %s", i, c)
		}
	}
	before := len(up.received())
	if c := try(addr, good, "/login"); c != "403" {
		t.Fatalf("after the threshold: %s, want 403 (banned)", c)
	}
	if c := try(addr, "", "/public/x"); c != "403" {
		t.Fatalf("banned client on a public route: %s", c)
	}
	if len(up.received()) != before {
		t.Fatal("a banned client's request was forwarded")
	}
	time.Sleep(1100 * time.Millisecond)
	if c := try(addr, good, "/login"); c != "200" {
		t.Fatalf("after the ban TTL: %s", c)
	}
}

// TestScanningBan: many requests for unknown paths ban the scanner.
func TestScanningBan(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	_, addr := startGateway(t, abuseConfig(up.hostPort(), ""))
	for i := 0; i < 8; i++ {
		rawExchange(t, addr, "GET /wp-admin/"+string(rune('a'+i))+" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	}
	if c := statusLines(rawExchange(t, addr, "GET /public/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); len(c) != 1 || c[0] != "403" {
		t.Fatalf("scanner not banned: %v", c)
	}
}

func TestBansPropagateThroughRedis(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	rs := startRedis(t, "")
	up := newUpstream(t, nil)
	line := "rate_limiting:\n  redis: {addresses: [\"" + rs.Addr + "\"]}\n"
	cfg := strings.Replace(abuseConfig(up.hostPort(), line), "ban_for: 1s", "ban_for: 1m", 1)
	g1, a1 := startGateway(t, cfg)
	g2, a2 := startGateway(t, cfg)
	time.Sleep(200 * time.Millisecond) // subscriptions established
	for i := 0; i < 5; i++ {
		rawExchange(t, a1, "GET /login HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer x.y.z\r\nConnection: close\r\n\r\n")
	}
	ip := netip.MustParseAddr("127.0.0.1")
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, banned := g2.Guard().Banned(ip, "", time.Now()); banned {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := statusLines(rawExchange(t, a2, "GET /public/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); len(c) != 1 || c[0] != "403" {
		t.Fatalf("ban did not reach the second instance: %v", c)
	}
	// A third instance started later loads the ban.
	_, a3 := startGateway(t, cfg)
	time.Sleep(200 * time.Millisecond)
	if c := statusLines(rawExchange(t, a3, "GET /public/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); len(c) != 1 || c[0] != "403" {
		t.Fatalf("new instance did not load the ban: %v", c)
	}
	// An operator lifts it on one instance: it is lifted everywhere.
	g1.Guard().Lift(g1.Guard().Key(ip))
	deadline = time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, banned := g2.Guard().Banned(ip, "", time.Now()); !banned {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := statusLines(rawExchange(t, a2, "GET /public/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); len(c) != 1 || c[0] != "200" {
		t.Fatalf("lift did not reach the second instance: %v", c)
	}
}

// TestAnomalyBan: behind a trusted proxy, twenty clients at a steady pace
// teach the baseline; one client flooding far above it is banned, the
// others are not.
func TestAnomalyBan(t *testing.T) {
	up := newUpstream(t, nil)
	cfg := `version: 1
listeners: [{name: public, address: "127.0.0.1:0", trusted_proxies: [127.0.0.1]}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
abuse:
  ban_for: 1m
  scanning: {disabled: true}
  enumeration: {disabled: true}
  brute_force: {disabled: true}
  anomaly: {interval: 400ms, z: 6, min_requests: 20, action: ban}
routes:
  - {id: public, prefix: /public, upstream: svc, public: true}
`
	parsed, err := config.Parse([]byte(cfg), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The detector's intervals follow the gateway's clock, stepped here:
	// a slow machine cannot spill one interval's requests into the next.
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	_, addr := startConfig(t, parsed, pipeline.Deps{Now: clock})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	get := func(ip string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/public/x", nil)
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for interval := 0; interval < 6; interval++ {
		for c := 1; c <= 20; c++ {
			for k := 0; k < 8+c%5; k++ {
				get("198.51.100." + strconv.Itoa(c))
			}
		}
		if interval == 4 {
			for k := 0; k < 300; k++ {
				get("203.0.113.66")
			}
		}
		mu.Lock()
		now = now.Add(420 * time.Millisecond)
		mu.Unlock()
	}
	get("198.51.100.1") // closes the last interval
	if c := get("203.0.113.66"); c != 403 {
		t.Fatalf("flooding client: %d, want 403 (banned as an anomaly)", c)
	}
	for c := 1; c <= 20; c++ {
		if code := get("198.51.100." + strconv.Itoa(c)); code != 200 {
			t.Fatalf("normal client %d: %d", c, code)
		}
	}
}

// TestTightenAction: with action: tighten, a detected client is throttled
// to tighten_to (429 abuse.throttled beyond it) instead of banned.
func TestTightenAction(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	cfg := abuseWith(up.hostPort(), "  ban_for: 1m\n  action: tighten\n  tighten_to: {rate: 1, per: 1h, burst: 2}\n")
	_, addr := startGateway(t, cfg)
	try := func(path, auth string) string {
		hdr := ""
		if auth != "" {
			hdr = "Authorization: Bearer " + auth + "\r\n"
		}
		resp := rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: gw\r\n"+hdr+"Connection: close\r\n\r\n")
		c := strings.Join(statusLines(resp), ",")
		if c == "429" {
			checkProblem(t, resp, "abuse.throttled")
		}
		return c
	}
	for i := 0; i < 5; i++ {
		try("/login", "bad.token.x")
	}
	got := []string{try("/public/a", ""), try("/public/b", ""), try("/public/c", "")}
	if strings.Join(got, " ") != "200 200 429" {
		t.Fatalf("tightened client: %v, want two allowed then 429", got)
	}
}

// TestCredentialStuffingLocksAccount: failed logins on one account from
// five client IPs lock that account (even with the right password, from a
// fresh IP); other accounts are unaffected and no IP is banned.
func TestCredentialStuffingLocksAccount(t *testing.T) {
	upLogin := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["password"] != "right" {
			w.WriteHeader(401)
		}
	})
	cfg := `version: 1
listeners: [{name: public, address: "127.0.0.1:0", trusted_proxies: [127.0.0.1]}]
upstreams: [{name: accounts, allow_plaintext: true, targets: [{url: "http://` + upLogin.hostPort() + `"}]}]
abuse:
  ban_for: 1m
  credential_stuffing: {distinct_ips: 5, window: 1m}
routes:
  - id: login
    path: /login
    methods: [POST]
    upstream: accounts
    public: true
    abuse_account: {json_field: username}
`
	_, addr := startGateway(t, cfg)
	login := func(ip, user, pass string) int {
		body := `{"username":"` + user + `","password":"` + pass + `"}`
		return postFrom(t, "http://"+addr+"/login", ip, "application/json", body)
	}
	for i := 1; i <= 5; i++ {
		if c := login("198.51.100."+strconv.Itoa(i), "Alice", "guess"+strconv.Itoa(i)); c != 401 {
			t.Fatalf("attempt %d: %d", i, c)
		}
	}
	before := len(upLogin.received())
	if c := login("203.0.113.9", "alice", "right"); c != 403 {
		t.Fatalf("locked account: %d, want 403", c)
	}
	if len(upLogin.received()) != before {
		t.Fatal("a login for a locked account was forwarded")
	}
	if c := login("198.51.100.1", "bob", "right"); c != 200 {
		t.Fatalf("another account from an attacking IP: %d (no IP ban expected)", c)
	}
	// The upstream still received the exact body.
	got := upLogin.received()
	if !strings.Contains(got[len(got)-1].Body, `"username":"bob"`) {
		t.Fatalf("body not forwarded intact: %q", got[len(got)-1].Body)
	}
}

// TestAccountLocksShared: an account locked on one instance is locked on
// another through Redis.
func TestAccountLocksShared(t *testing.T) {
	rs := startRedis(t, "")
	upLogin := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) })
	cfg := `version: 1
listeners: [{name: public, address: "127.0.0.1:0", trusted_proxies: [127.0.0.1]}]
upstreams: [{name: accounts, allow_plaintext: true, targets: [{url: "http://` + upLogin.hostPort() + `"}]}]
rate_limiting:
  redis: {addresses: ["` + rs.Addr + `"]}
abuse:
  ban_for: 1m
  credential_stuffing: {distinct_ips: 3, window: 1m}
routes:
  - {id: login, path: /login, methods: [POST], upstream: accounts, public: true, abuse_account: {form_field: user}}
`
	_, a1 := startGateway(t, cfg)
	g2, a2 := startGateway(t, cfg)
	time.Sleep(200 * time.Millisecond)
	login := func(addr, ip string) int {
		return postFrom(t, "http://"+addr+"/login", ip, "application/x-www-form-urlencoded", "user=carol&pass=x")
	}
	for i := 1; i <= 3; i++ {
		login(a1, "198.51.100."+strconv.Itoa(i))
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && !g2.Guard().AccountLocked("carol", time.Now()) {
		time.Sleep(20 * time.Millisecond)
	}
	if c := login(a2, "203.0.113.1"); c != 403 {
		t.Fatalf("lock did not reach the second instance: %d", c)
	}
}

// postFrom POSTs body as a client behind a trusted proxy (X-Forwarded-For:
// ip) and returns the status.
func postFrom(t *testing.T, url, ip, ctype, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestFuzzingBan: a client trying malformed input after input (broken
// JSON, values the schema refuses, an injection the WAF catches, encoded
// traversal) is banned after the fuzzing threshold; nothing it sent
// reached the service, and its next valid request is refused too.
func TestFuzzingBan(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	cfg := strings.Replace(abuseConfig(up.hostPort(), ""), "  scanning: {threshold: 8, window: 1m}\n",
		"  scanning: {threshold: 8, window: 1m}\n  fuzzing: {threshold: 6, window: 1m}\n", 1)
	cfg += "    validate: {content_types: [application/json], json: {max_depth: 4}}\n" // on the public route, the last
	_, addr := startGateway(t, cfg)
	post := func(path, body string) string {
		raw := "POST " + path + " HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body
		return strings.Join(statusLines(rawExchange(t, addr, raw)), ",")
	}
	for i, attempt := range []struct{ path, body string }{
		{"/public/a", `{"a":`},
		{"/public/a", `{"a":[[[[[[1]]]]]]}`},
		{"/public/a", `{"a":1,"a":2}`},
		{"/public/%2e%2e/etc/passwd", `{}`},
		{"/public/a", "\xff\xfe"},
		{"/public/a", `{"a":"\ud800"}`},
	} {
		if c := post(attempt.path, attempt.body); !strings.HasPrefix(c, "4") || c == "403" && i < 5 {
			t.Fatalf("attempt %d (%q): %s", i, attempt.body, c)
		}
	}
	if c := post("/public/a", `{"ok":true}`); c != "403" {
		t.Fatalf("after the fuzzing threshold a valid request got %s, want 403 (banned)", c)
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("the service received %d requests from the fuzzer", n)
	}
}

// TestIdentitySpreadThroughGateway: one token used from five client
// addresses is reported (abuse.identity_spread); the requests are served.
func TestIdentitySpreadThroughGateway(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	cfg, err := config.Parse([]byte(abuseWith(up.hostPort(),
		"  ban_for: 1s\n  identity_spread: {addresses: 5, identities: 50, window: 1m}\n")), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessLog.Enabled = new(bool)
	ev := &pipeline.EventRecorder{}
	_, addr := startConfig(t, cfg, pipeline.Deps{Now: time.Now, Events: ev})
	tok := hsToken(t, map[string]any{"sub": "alice"})
	for i := range 5 {
		got := statusLines(rawExchangeFrom(t, fmt.Sprintf("127.0.0.%d", 20+i), addr,
			"GET /login HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+tok+"\r\nConnection: close\r\n\r\n"))
		if len(got) != 1 || got[0] != "200" {
			t.Fatalf("request %d: %v", i, got)
		}
	}
	waitUntil(t, "an identity spread event", func() bool {
		for _, e := range ev.Events() {
			if e.Code == "abuse.identity_spread" && e.Subject == "alice" && e.Attrs["kind"] == "addresses" {
				return true
			}
		}
		return false
	})
}

// TestScrapingBan: a client walking through object after object is banned
// (action ban) once it has read the threshold of distinct objects; the
// service stops receiving its requests. Reading one object repeatedly is
// not scraping.
func TestScrapingBan(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	_, addr := startGateway(t, abuseWith(up.hostPort(),
		"  ban_for: 1m\n  scraping: {distinct: 30, window: 1m, action: ban}\n"))
	get := func(src, path string) string { return getStatus(t, src, addr, path) }
	for range 60 {
		if c := get("127.0.0.31", "/public/item/1"); c != "200" {
			t.Fatalf("one object read again: %s", c)
		}
	}
	banned := 0
	for i := range 60 {
		if get("127.0.0.32", fmt.Sprintf("/public/item/%d", i)) == "403" {
			banned = i
			break
		}
	}
	if banned < 25 || banned > 40 {
		t.Fatalf("the scraper was banned after %d objects (threshold 30)", banned)
	}
	before := len(up.received())
	if c := get("127.0.0.32", "/public/item/1"); c != "403" || len(up.received()) != before {
		t.Fatalf("after the ban: %s", c)
	}
}

// TestLearnedScrapingBan: once a route has learned that its callers read
// two to four objects in a window, a client reading a few dozen is
// banned there (far below the configured 1,000), and the service
// receives nothing more from it.
func TestLearnedScrapingBan(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	_, addr := startGateway(t, abuseWith(up.hostPort(),
		"  ban_for: 1m\n  scraping: {distinct: 1000, window: 1s, action: ban, learned: {windows: 20, floor: 15}}\n"))
	get := func(src, path string) string { return getStatus(t, src, addr, path) }
	for c := range 20 {
		for i := range 2 + c%3 {
			if s := get(fmt.Sprintf("127.0.0.%d", 40+c), fmt.Sprintf("/public/item/%d", 100*c+i)); s != "200" {
				t.Fatalf("a usual reader: %s", s)
			}
		}
	}
	time.Sleep(1100 * time.Millisecond)
	for c := range 20 { // their windows end and are learned
		if s := get(fmt.Sprintf("127.0.0.%d", 40+c), "/public/item/1"); s != "200" {
			t.Fatalf("a usual reader, next window: %s", s)
		}
	}
	banned := 0
	for i := range 200 {
		if get("127.0.0.70", fmt.Sprintf("/public/item/%d", 5000+i)) == "403" {
			banned = i
			break
		}
	}
	if banned < 12 || banned > 25 {
		t.Fatalf("the scraper was banned after %d objects (learned threshold 15)", banned)
	}
	before := len(up.received())
	if c := get("127.0.0.70", "/public/item/1"); c != "403" || len(up.received()) != before {
		t.Fatalf("after the ban: %s", c)
	}
}

// identityAbuseConfig is abuseConfig with a session cookie, an
// enumeration detector, an orders route for authenticated callers and
// (redisLine) shared state.
func identityAbuseConfig(t *testing.T, up, redisLine string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(identityAbuseYAML(up, redisLine)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func identityAbuseYAML(up, redisLine string) string {
	y := strings.Replace(abuseConfig(up, redisLine), "  ban_for: 1s\n",
		"  ban_for: 1m\n  session_cookie: sid\n  enumeration: {threshold: 6, window: 1m}\n", 1)
	return y + "  - id: orders\n    prefix: /orders\n    upstream: svc\n    auth: {jwt: [idp]}\n    authorize: any_authenticated\n"
}

// TestIdentityEnumerationBan: an authenticated caller probing other
// users' orders from a pool of five addresses (each address far below
// the threshold) is banned as an identity: refused from a fresh address,
// on every instance sharing Redis, while other callers from the same
// addresses are served; the service receives nothing of the banned
// caller; an operator lift through the admin API restores the caller
// everywhere.
func TestIdentityEnumerationBan(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	rs := startRedis(t, "")
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/orders/1" {
			w.WriteHeader(http.StatusNotFound) // someone else's order
		}
	})
	cfg := identityAbuseConfig(t, up.hostPort(), "rate_limiting:\n  redis: {addresses: [\""+rs.Addr+"\"]}\n")
	ev := &pipeline.EventRecorder{}
	g1, a1 := startConfig(t, cfg, pipeline.Deps{Now: time.Now, Events: ev})
	g2, a2 := startGateway(t, identityAbuseYAML(up.hostPort(), "rate_limiting:\n  redis: {addresses: [\""+rs.Addr+"\"]}\n"))
	mallory, alice := hsToken(t, map[string]any{"sub": "mallory"}), hsToken(t, map[string]any{"sub": "alice"})
	get := func(addr, src, tok, path string) string {
		return strings.Join(statusLines(rawExchangeFrom(t, src, addr, "GET "+path+" HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+tok+"\r\nConnection: close\r\n\r\n")), ",")
	}
	time.Sleep(200 * time.Millisecond) // subscriptions established
	for i := range 6 {
		if c := get(a1, fmt.Sprintf("127.0.0.%d", 40+i%5), mallory, fmt.Sprintf("/orders/%d", 100+i)); c != "404" {
			t.Fatalf("probe %d: %s", i, c)
		}
	}
	before := len(up.received())
	if c := get(a1, "127.0.0.60", mallory, "/orders/1"); c != "403" {
		t.Fatalf("the banned identity from a fresh address: %s", c)
	}
	waitUntil(t, "the identity ban on the second instance", func() bool {
		_, _, banned := g2.Guard().IdentitySanction("https://idp.test", "mallory", time.Now())
		return banned
	})
	if c := get(a2, "127.0.0.61", mallory, "/orders/1"); c != "403" {
		t.Fatalf("the banned identity on the second instance: %s", c)
	}
	if n := len(up.received()); n != before {
		t.Fatalf("the service received %d requests of the banned identity", n-before)
	}
	if c := get(a1, "127.0.0.40", alice, "/orders/1"); c != "200" {
		t.Fatalf("another caller from the same address: %s", c)
	}
	var banned *pipeline.Event
	for _, e := range ev.Events() {
		if e.Code == "abuse.banned" && e.Attrs["key"] == "identity" {
			banned = &e
		}
	}
	if banned == nil || banned.Subject != "mallory" || banned.Attrs["client"] != "identity:mallory@https:%2F%2Fidp.test" || banned.Attrs["detector"] != "enumeration" {
		t.Fatalf("ban event: %+v", banned)
	}
	if err := g1.liftBan(banned.Attrs["client"], "tester"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the lift on the second instance", func() bool { return get(a2, "127.0.0.61", mallory, "/orders/1") == "200" })
	if bans := g2.Guard().List(time.Now()); len(bans) != 0 {
		t.Fatalf("bans after the lift: %+v", bans)
	}
}

// TestSessionBan: failed logins carrying one session cookie from five
// addresses (one each) ban the session: the cookie is refused before
// authentication from any address, a client without it is not, and the
// cookie's value appears in no event, no dashboard and no Redis key.
func TestSessionBan(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	rs := startRedis(t, "")
	up := newUpstream(t, nil)
	ev := &pipeline.EventRecorder{}
	g, addr := startConfig(t, identityAbuseConfig(t, up.hostPort(), "rate_limiting:\n  redis: {addresses: [\""+rs.Addr+"\"]}\n"),
		pipeline.Deps{Now: time.Now, Events: ev})
	const secret = "s3cret-session-value"
	login := func(src, cookie string) string {
		return strings.Join(statusLines(rawExchangeFrom(t, src, addr,
			"GET /login HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer x.y.z\r\n"+cookie+"Connection: close\r\n\r\n")), ",")
	}
	for i := range 5 {
		if c := login(fmt.Sprintf("127.0.0.%d", 70+i), "Cookie: theme=dark; sid="+secret+"\r\n"); c != "401" {
			t.Fatalf("attempt %d: %s", i, c)
		}
	}
	if c := login("127.0.0.80", "Cookie: sid="+secret+"\r\n"); c != "403" {
		t.Fatalf("the banned session from a fresh address: %s", c)
	}
	if c := login("127.0.0.80", ""); c != "401" {
		t.Fatalf("the same address without the session: %s", c)
	}
	bans := g.Guard().List(time.Now())
	if len(bans) != 1 || bans[0].Client.Kind() != "session" {
		t.Fatalf("bans: %+v", bans)
	}
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rc.Close()
	keys, err := rc.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if dump := fmt.Sprintf("%+v %v %v", ev.Events(), bans[0].Client, keys); strings.Contains(dump, secret) {
		t.Fatal("the session cookie's value was kept")
	} else if !strings.Contains(fmt.Sprint(keys), bans[0].Client.String()) {
		t.Fatalf("the session ban is not shared: %v", keys)
	}
}

// TestRouteAnomalyThroughGateway: a route's usual load raises nothing;
// an interval with ten times the load is reported as an abuse.anomaly
// naming the route, its category and the evidence.
func TestRouteAnomalyThroughGateway(t *testing.T) {
	t.Setenv("RAMPART_AUTHZ_SECRET", authzSecret)
	up := newUpstream(t, nil)
	cfg, err := config.Parse([]byte(abuseWith(up.hostPort(),
		"  ban_for: 1s\n  anomaly: {interval: 10s, routes: {min_requests: 5}}\n")), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func() { mu.Lock(); now = now.Add(10 * time.Second); mu.Unlock() }
	ev := &pipeline.EventRecorder{}
	_, addr := startConfig(t, cfg, pipeline.Deps{Now: clock, Events: ev})
	client := &http.Client{}
	burst := func(n int) {
		for i := range n {
			resp, err := client.Get("http://" + addr + "/public/item/" + strconv.Itoa(i%5))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		advance()
	}
	anomalies := func() (out []pipeline.Event) {
		for _, e := range ev.Events() {
			if e.Code == "abuse.anomaly" && e.Attrs["scope"] == "route" {
				out = append(out, e)
			}
		}
		return out
	}
	for i := range 6 {
		burst(10 + i%3)
	}
	if a := anomalies(); len(a) != 0 {
		t.Fatalf("the usual load reported: %+v", a)
	}
	burst(150)
	burst(1)
	a := anomalies()
	if len(a) != 1 || a[0].Route != "public" || a[0].Attrs["category"] != "read" || a[0].Attrs["signal"] != "request_rate" || a[0].Attrs["observed"] != "150.0" {
		t.Fatalf("the flood: %+v", a)
	}
}
