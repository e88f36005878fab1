package observe

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

func TestLiveSnapshot(t *testing.T) {
	l := NewLive()
	now := time.Unix(1_800_000_000, 0)
	for i := 0; i < 100; i++ {
		l.Request(now.Add(-time.Duration(i%3)*time.Second), "198.51.100.1", "read", 200, "", time.Duration(i)*100*time.Microsecond)
	}
	for i := 0; i < 7; i++ {
		l.Request(now, "203.0.113.9", "payment", 403, "waf.sqli", time.Millisecond)
	}
	l.Request(now.Add(-2*time.Minute), "192.0.2.1", "read", 200, "", time.Millisecond) // outside the window
	for i := 0; i < maxEvents+5; i++ {
		l.Emit(pipeline.Event{Name: "refusal", Code: "waf.sqli", RequestID: strconv.Itoa(i), Time: now})
	}
	s := l.Snapshot(now.Add(time.Second), nil) // the second of now is complete
	last := len(s.RPS) - 1
	if len(s.RPS) != 59 || s.Seconds[last] != now.Unix() {
		t.Fatalf("series %d, last %d", len(s.RPS), s.Seconds[last])
	}
	total := 0
	for _, n := range s.RPS {
		total += n
	}
	if total != 107 || s.Blocked[last] != 7 || s.Classes["2xx"] != 100 || s.Classes["4xx"] != 7 {
		t.Fatalf("total %d blocked %d classes %v", total, s.Blocked[last], s.Classes)
	}
	if len(s.Reasons) != 1 || s.Reasons[0] != (Count{"waf.sqli", 7}) {
		t.Fatalf("reasons %v", s.Reasons)
	}
	if s.Clients[0].IP != "198.51.100.1" || len(s.Offender) != 1 || s.Offender[0].IP != "203.0.113.9" || s.Offender[0].Refused != 7 {
		t.Fatalf("clients %v offenders %v", s.Clients, s.Offender)
	}
	// The repeats collapse into one row with their count.
	if len(s.Events) != 1 || s.Events[0].Stage != "waf" || s.Events[0].Count != maxEvents {
		t.Fatalf("events %d %+v", len(s.Events), s.Events[0])
	}
	// The current second is still filling: it is not in the series, but
	// it is in the totals.
	if cur := l.Snapshot(now, nil); cur.Seconds[len(cur.Seconds)-1] != now.Unix()-1 || cur.Classes["4xx"] != 7 {
		t.Fatalf("series end at %d (want %d), 4xx total %d", cur.Seconds[len(cur.Seconds)-1], now.Unix()-1, cur.Classes["4xx"])
	}
	if s.P99[last] <= 0 || s.P50[last] > s.P99[last] {
		t.Fatalf("latency p50 %v p99 %v", s.P50[last], s.P99[last])
	}
}

// TestLiveCategories: every category is listed, with the traffic and the
// refusals where they happened, and the findings by the category an event
// names or by its route's.
func TestLiveCategories(t *testing.T) {
	l := NewLive()
	now := time.Unix(1_800_000_000, 0)
	for i := 0; i < 100; i++ {
		l.Request(now, "198.51.100.1", "read", 200, "", time.Millisecond)
	}
	for i := 0; i < 7; i++ {
		l.Request(now, "203.0.113.9", "payment", 403, "waf.sqli", time.Millisecond)
	}
	l.Request(now, "203.0.113.9", "", 404, "router.not_found", time.Millisecond)
	l.Emit(pipeline.Event{Name: "refusal", Code: "waf.sqli", Time: now, Route: "redeem"})
	l.Emit(pipeline.Event{Name: "abuse.banned", Code: "abuse.banned", Time: now, Attrs: map[string]string{"category": "payment"}})
	l.Emit(pipeline.Event{Name: "abuse.race", Code: "abuse.race", Time: now, Route: "redeem"})
	cats := map[string]CategoryCount{}
	for _, c := range l.Snapshot(now.Add(time.Second), func(string) string { return "payment" }).Categories {
		cats[c.Category] = c
	}
	if len(cats) != 8 || cats["read"] != (CategoryCount{"read", 100, 0, 0}) || cats["payment"] != (CategoryCount{"payment", 7, 7, 2}) {
		t.Fatalf("categories %v", cats)
	}
}

// TestLiveEventOrder: the newest event comes first, before and after the
// ring wraps.
func TestLiveEventOrder(t *testing.T) {
	l := NewLive()
	for i := 0; i < 3; i++ {
		l.Emit(pipeline.Event{Code: "c" + strconv.Itoa(i)})
	}
	if s := l.Snapshot(time.Now(), nil); s.Events[0].Code != "c2" || s.Events[2].Code != "c0" {
		t.Fatalf("order %+v", s.Events)
	}
	for i := 3; i < maxEvents+10; i++ {
		l.Emit(pipeline.Event{Code: "c" + strconv.Itoa(i)})
	}
	if s := l.Snapshot(time.Now(), nil); s.Events[0].Code != "c"+strconv.Itoa(maxEvents+9) || s.Events[1].Code != "c"+strconv.Itoa(maxEvents+8) {
		t.Fatalf("order after wrap %+v", s.Events[:2])
	}
}

// TestQuantileInterpolates: a quantile inside a bucket is interpolated,
// not the bucket's upper bound.
func TestQuantileInterpolates(t *testing.T) {
	b := make([]int, len(latBounds)+1)
	b[3] = 100 // all between 1 ms and 2 ms
	if p50 := quantile(b, 100, 0.5); p50 != 1.5 {
		t.Errorf("p50 %v, want 1.5 (the middle of the 1-2 ms bucket)", p50)
	}
	if p99 := quantile(b, 100, 0.99); p99 <= 1.9 || p99 >= 2 {
		t.Errorf("p99 %v, want just under 2", p99)
	}
	b[3], b[len(latBounds)] = 0, 10 // all beyond the last bound
	if q := quantile(b, 10, 0.99); q != float64(latBounds[len(latBounds)-1])/1000 {
		t.Errorf("open bucket: %v", q)
	}
}

// TestEventRowsCollapse: one client's repeated refusals are one row with
// a count and the first and last time; other clients keep their rows.
func TestEventRowsCollapse(t *testing.T) {
	l := NewLive()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		l.Emit(pipeline.Event{Name: "refusal", Code: "abuse.banned", ClientIP: "203.0.113.9", Route: "none", Time: t0.Add(time.Duration(i) * time.Second)})
	}
	l.Emit(pipeline.Event{Name: "refusal", Code: "abuse.banned", ClientIP: "198.51.100.1", Route: "none", Time: t0.Add(10 * time.Second)})
	rows := l.Snapshot(t0.Add(time.Minute), nil).Events
	if len(rows) != 2 || rows[0].ClientIP != "198.51.100.1" || rows[1].Count != 5 ||
		rows[1].First != "2026-12-06T10:00:00Z" || rows[1].Time != "2026-12-06T10:00:04Z" {
		t.Fatalf("rows %+v", rows)
	}
}

// Requests are counted in parts by client; a snapshot adds them up, and
// a part that has seen no request for minutes does not bring back its
// clients of then.
func TestLiveParts(t *testing.T) {
	l := NewLive()
	now := time.Unix(1_800_000_000, 0)
	old := now.Add(-3 * time.Minute)
	l.Request(old, "192.0.2.77", "read", 200, "", time.Millisecond)
	for i := range 400 {
		l.Request(now, "198.51.100."+strconv.Itoa(i%200), "read", 200, "", time.Millisecond)
	}
	used := 0
	for i := range l.parts {
		if l.parts[i].minute == now.Unix()/60 {
			used++
		}
	}
	if used < liveParts/2 {
		t.Fatalf("200 clients fell in %d of %d parts", used, liveParts)
	}
	s := l.Snapshot(now.Add(time.Second), nil)
	if s.RPS[len(s.RPS)-1] != 400 || s.Classes["2xx"] != 400 {
		t.Fatalf("last second %d, 2xx %d", s.RPS[len(s.RPS)-1], s.Classes["2xx"])
	}
	for _, c := range s.Clients {
		if c.IP == "192.0.2.77" {
			t.Fatal("a client of three minutes ago is listed")
		}
		if c.Requests != 2 {
			t.Fatalf("client %s: %d requests, want 2", c.IP, c.Requests)
		}
	}
}

// Requests from many goroutines and snapshots at once (run with -race).
func TestLiveConcurrent(t *testing.T) {
	l := NewLive()
	now := time.Now()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				l.Request(now, "203.0.113."+strconv.Itoa(g*10+i%10), "write", 200, "", time.Millisecond)
			}
		}()
	}
	for range 20 {
		l.Snapshot(now, nil)
	}
	wg.Wait()
	if s := l.Snapshot(now, nil); s.Classes["2xx"] != 8000 {
		t.Fatalf("2xx %d, want 8000", s.Classes["2xx"])
	}
}

// BenchmarkLiveRequestParallel is the dashboard's count of a request from
// every core at once (-cpu 1,2,4,8): flat as cores grow, with no lock
// that all requests share.
func BenchmarkLiveRequestParallel(b *testing.B) {
	l := NewLive()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		ip := "198.51.100." + strconv.Itoa(int(n.Add(1)))
		now := time.Now()
		for pb.Next() {
			l.Request(now, ip, "read", 200, "", time.Millisecond)
		}
	})
}
