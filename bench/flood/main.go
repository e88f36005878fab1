// Command flood sends requests for paths no route serves, each from a
// client address never used before (in X-Forwarded-For, for a gateway that
// trusts the sender as its proxy): the flood of new addresses that an
// attacker behind a proxy, or an IPv6 host walking its addresses, can
// produce. Even requests come from IPv4 addresses (10.0.0.0/8), odd ones
// from IPv6 addresses each in a /64 of its own (2001:db8::/32). Bounded by
// -n and -duration.
//
// With -hs-secret each request is also a new identity and a new session:
// a token for subject flood-N (HS256 under the secret, issuer
// https://flood.test, audience bench) and a cookie sid=flood-N, for
// /id/N, a route that authenticates it and refuses it (403 authz.denied,
// a signal counted by address, identity and session at once).
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/testtoken"
)

func addr(i int) string {
	if i%2 == 0 {
		j := i / 2
		return netip.AddrFrom4([4]byte{10, byte(j >> 16), byte(j >> 8), byte(j)}).String()
	}
	j := i / 2
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	b[4], b[5], b[6], b[7] = byte(j>>24), byte(j>>16), byte(j>>8), byte(j)
	b[15] = 1
	return netip.AddrFrom16(b).String()
}

func main() {
	target := flag.String("target", "http://127.0.0.1:8080", "gateway base URL")
	start := flag.Int("start", 0, "index of the first address")
	n := flag.Int("n", 1000000, "requests (one new address each)")
	rate := flag.Int("rate", 0, "requests per second (0: as fast as possible)")
	conns := flag.Int("conns", 8, "connections")
	dur := flag.Duration("duration", 10*time.Minute, "stop after this long")
	secret := flag.String("hs-secret", "", "HS256 secret: each request a new identity and session")
	flag.Parse()
	tr := &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var next, sent, failed atomic.Int64
	next.Store(int64(*start))
	deadline := time.Now().Add(*dur)
	began := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= *start+*n {
					return
				}
				if *rate > 0 {
					due := began.Add(time.Duration(i-*start) * time.Second / time.Duration(*rate))
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				}
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/no-such-path/%d", *target, i), nil)
				if *secret != "" {
					req, _ = http.NewRequest("GET", fmt.Sprintf("%s/id/%d", *target, i), nil)
					req.Header.Set("Authorization", "Bearer "+testtoken.HS256(*secret, "https://flood.test", "bench", fmt.Sprintf("flood-%d", i), time.Hour))
					req.Header.Set("Cookie", fmt.Sprintf("sid=flood-%d", i))
				}
				req.Header.Set("X-Forwarded-For", addr(i))
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(began)
	fmt.Fprintf(os.Stderr, "flood: %d requests from new addresses in %.1fs (%.0f/s), %d failed\n",
		sent.Load(), el.Seconds(), float64(sent.Load())/el.Seconds(), failed.Load())
}
