package abuse

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkObserveNewAddresses: every observation from an address never
// seen before, the table long full (the flood that once cost ~7 ms per new
// address past 200,000 counters). Its cost per op must not depend on b.N.
func BenchmarkObserveNewAddresses(b *testing.B) {
	g := scanGuard(100000)
	now := time.Unix(1_700_000_000, 0)
	for i := 0; i < 200000; i++ {
		g.Observe(Client{IP: v4(i)}, 404, "router.not_found", false, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.Observe(Client{IP: v4(200000 + i)}, 404, "router.not_found", false, now)
	}
}

// BenchmarkBannedCheckDuringFlood: the ban check every request makes,
// from several goroutines, while others flood the guard with new
// addresses: no global lock makes the check wait for the flood.
func BenchmarkBannedCheckDuringFlood(b *testing.B) {
	g := scanGuard(100000)
	now := time.Unix(1_700_000_000, 0)
	var n atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			g.Observe(Client{IP: v6(int(n.Add(1)), 1)}, 404, "router.not_found", false, now)
		}
	}()
	legit := netip.MustParseAddr("198.51.100.7")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.Banned(legit, "", now)
			g.Observe(Client{IP: legit}, 200, "", false, now)
		}
	})
	b.StopTimer()
	close(stop)
	<-done
}

// BenchmarkObserveRead is the scraping detector's cost for one successful
// GET of a known caller (the common case: its sketch exists).
func BenchmarkObserveRead(b *testing.B) {
	g := New(Options{Scrape: scrapeSettings{distinct: 1000, window: time.Minute}})
	ip := netip.MustParseAddr("203.0.113.9")
	now := time.Now()
	paths := make([]string, 512)
	for i := range paths {
		paths[i] = fmt.Sprintf("/products/%d", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		g.ObserveRead(Client{IP: ip}, paths[i%len(paths)], now)
	}
}
