package ratelimit

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGCRAExactUnderContention: at a frozen instant exactly Burst requests
// pass, however many goroutines race; as time advances, exactly one more
// per emission interval.
func TestGCRAExactUnderContention(t *testing.T) {
	st := NewLocal(1000)
	lim := Limit{Rate: 10, Period: time.Second, Burst: 5}
	now := time.Unix(1000, 0)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if r, _ := st.Allow(context.Background(), "k", lim, now); r.Allowed {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 {
		t.Fatalf("%d allowed at one instant, want the burst of 5", ok.Load())
	}
	r, _ := st.Allow(context.Background(), "k", lim, now)
	if r.Allowed || r.RetryAfter != 100*time.Millisecond {
		t.Fatalf("refusal: %+v, want retry after one interval (100ms)", r)
	}
	// Over the next 10 s, at most 10/s more.
	allowed := 0
	for ms := 1; ms <= 10000; ms++ {
		if r, _ := st.Allow(context.Background(), "k", lim, now.Add(time.Duration(ms)*time.Millisecond)); r.Allowed {
			allowed++
		}
	}
	if allowed != 100 {
		t.Fatalf("%d allowed over 10 s at 10/s, want 100", allowed)
	}
	if r, _ := st.Allow(context.Background(), "other", lim, now); !r.Allowed || r.Remaining != 4 {
		t.Fatalf("independent key: %+v", r)
	}
}

func TestLocalBounded(t *testing.T) {
	st := NewLocal(64 * 16)
	lim := Limit{Rate: 1, Period: time.Hour, Burst: 1}
	now := time.Unix(1000, 0)
	for i := 0; i < 20000; i++ {
		st.Allow(context.Background(), "k"+string(rune(i)), lim, now)
	}
	if n := st.Len(); n > 64*16 {
		t.Fatalf("store holds %d keys, bound %d", n, 64*16)
	}
}

func TestIPv6Prefix(t *testing.T) {
	a := clientKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"), 64)
	b := clientKey(netip.MustParseAddr("2001:db8:1:2:bbbb::9"), 64)
	c := clientKey(netip.MustParseAddr("2001:db8:1:3::1"), 64)
	if a != b || a == c {
		t.Errorf("/64 keying: %s %s %s", a, b, c)
	}
	if clientKey(netip.MustParseAddr("192.0.2.7"), 64) != "192.0.2.7" {
		t.Error("IPv4 key")
	}
}

func BenchmarkLocalParallel(b *testing.B) {
	st := NewLocal(1 << 20)
	lim := Limit{Rate: 1000000, Period: time.Second, Burst: 1000000}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "route|0|198.51.100." + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		now := time.Now()
		for pb.Next() {
			st.Allow(context.Background(), keys[i%len(keys)], lim, now)
			i++
		}
	})
}

func TestQuotaWindows(t *testing.T) {
	now := time.Date(2026, 11, 27, 23, 59, 0, 0, time.UTC)
	if e := windowEnd(now, false); !e.Equal(time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("day end %v", e)
	}
	if e := windowEnd(time.Date(2026, 12, 31, 10, 0, 0, 0, time.UTC), true); !e.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("month end %v", e)
	}
	q := NewLocalQuotas()
	end := windowEnd(now, false)
	for i := 1; i <= 3; i++ {
		if n, _ := q.Incr(context.Background(), "k", end); n != int64(i) {
			t.Fatalf("count %d, want %d", n, i)
		}
	}
	if n, _ := q.Incr(context.Background(), "k", end.Add(24*time.Hour)); n != 1 {
		t.Fatalf("a new window starts at 1, got %d", n)
	}
}
