package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/testtoken"
)

// BenchmarkIdentityFloodSideBySide measures what a flood of new
// identities costs the gateway, with the abuse detectors on and off
// (control), in turns on the same process: each flood request is a new
// address (behind a trusted proxy), a new HS256 token for a new subject
// and a new session cookie, refused by authorization (403: a signal
// every detector table counts under all three keys); first
// floodPreload of them fill the guard's tables. Per turn, floodTurn
// legitimate requests (a public route, proxied) and floodTurn/10 flood
// requests, each group's process CPU measured apart.
//
// Reported: the CPU of a flood request and of a legitimate one (µs,
// medians of turns) with detection on and off, and from them the share
// of one core a flood of 1,000 new identities per second leaves to
// legitimate traffic on a saturated gateway (1 − 1000/s × flood CPU),
// which bench/flood.sh measures end to end, where the noise of this VM
// (±30% per round) drowns it. Run with -test.cpu 1 (the gateway of
// bench/flood.sh runs on one core).
func BenchmarkIdentityFloodSideBySide(b *testing.B) {
	const secret = "flood-bench-secret-0123456789abcdef0123"
	b.Setenv("RAMPART_FLOOD_SECRET", secret)
	routes := "  - id: id\n    prefix: /id\n    upstream: svc\n    auth: {jwt: [flood]}\n    authorize: {scopes_all: [never]}\n" +
		"authn:\n  jwt:\n    - {name: flood, issuer: \"https://flood.test\", audiences: [bench], algorithms: [HS256], keys: [{kid: k, algorithm: HS256, secret: \"${env:RAMPART_FLOOD_SECRET}\"}]}\n"
	abuse := "abuse:\n  ban_for: 1m\n  session_cookie: sid\n  anomaly: {interval: 10s, action: log}\n"
	edit := func(extra string) func(string) string {
		return func(y string) string {
			y = strings.Replace(y, "    address: 127.0.0.1:0\n", "    address: 127.0.0.1:0\n    trusted_proxies: [127.0.0.1]\n", 1)
			return strings.Replace(y, "routes:\n", "routes:\n"+strings.SplitN(routes, "authn:", 2)[0], 1) + "authn:" + strings.SplitN(routes, "authn:", 2)[1] + extra
		}
	}
	type side struct {
		name  string
		h     http.Handler
		flood int // the next flood identity
		l, f  []float64
	}
	sides := []*side{{name: "detect"}, {name: "control"}}
	for i, extra := range []string{abuse, ""} {
		_, sides[i].h = benchGatewayWith(b, edit(extra))
		sides[i].flood = floodIdentities(b, sides[i].h, secret, 0, floodPreload)
	}
	b.ResetTimer()
	for done := 0; done < b.N; done += floodTurn {
		for _, s := range sides {
			reqs := floodRequests(secret, s.flood, floodTurn/10)
			cpu0 := processCPU()
			for _, r := range reqs {
				s.h.ServeHTTP(&discardWriter{h: http.Header{}}, r)
			}
			cpu1 := processCPU()
			for i := range floodTurn {
				legitRequest(b, s.h, done+i)
			}
			cpu2 := processCPU()
			s.flood += len(reqs)
			s.f = append(s.f, float64(cpu1-cpu0)/float64(len(reqs))/1e3)
			s.l = append(s.l, float64(cpu2-cpu1)/floodTurn/1e3)
		}
	}
	for _, s := range sides {
		f := median(s.f)
		b.ReportMetric(f, s.name+"-flood-µs")
		b.ReportMetric(median(s.l), s.name+"-legit-µs")
		b.ReportMetric(1-1000*f/1e6, s.name+"-share@1000/s")
	}
}

// floodPreload identities fill the guard before the turns; a turn is
// floodTurn legitimate requests and a tenth as many flood requests.
const (
	floodPreload = 50000
	floodTurn    = 2000
)

// floodIdentities sends n flood requests from identity from on and
// returns the next identity.
func floodIdentities(b *testing.B, h http.Handler, secret string, from, n int) int {
	for i := from; i < from+n; i += 1000 {
		for _, r := range floodRequests(secret, i, min(1000, from+n-i)) {
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, r)
			if w.status != http.StatusForbidden {
				b.Fatalf("a flood request: %d", w.status)
			}
		}
	}
	return from + n
}

// floodRequests builds n flood requests from identity from on: each a
// new address, subject and session.
func floodRequests(secret string, from, n int) []*http.Request {
	out := make([]*http.Request, n)
	for j := range out {
		i := from + j
		r := httptest.NewRequest("GET", fmt.Sprintf("http://gw/id/%d", i), nil)
		r.RemoteAddr = "127.0.0.1:5555"
		r.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		r.Header.Set("Authorization", "Bearer "+testtoken.HS256(secret, "https://flood.test", "bench", fmt.Sprintf("flood-%d", i), time.Hour))
		r.Header.Set("Cookie", fmt.Sprintf("sid=flood-%d", i))
		out[j] = r
	}
	return out
}

// legitRequest sends one legitimate GET through the public route.
func legitRequest(b *testing.B, h http.Handler, i int) {
	r := httptest.NewRequest("GET", "http://gw/api/items", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, r)
	if w.status != http.StatusOK {
		b.Fatalf("legitimate request %d: %d", i, w.status)
	}
}
