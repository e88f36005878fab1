package observe

import (
	"strconv"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

func TestLiveSnapshot(t *testing.T) {
	l := NewLive()
	now := time.Unix(1_800_000_000, 0)
	for i := 0; i < 100; i++ {
		l.Request(now.Add(-time.Duration(i%3)*time.Second), "198.51.100.1", 200, "", time.Duration(i)*100*time.Microsecond)
	}
	for i := 0; i < 7; i++ {
		l.Request(now, "203.0.113.9", 403, "waf.sqli", time.Millisecond)
	}
	l.Request(now.Add(-2*time.Minute), "192.0.2.1", 200, "", time.Millisecond) // outside the window
	for i := 0; i < maxEvents+5; i++ {
		l.Emit(pipeline.Event{Name: "refusal", Code: "waf.sqli", RequestID: strconv.Itoa(i), Time: now})
	}
	s := l.Snapshot(now)
	if len(s.RPS) != 60 || s.Seconds[59] != now.Unix() {
		t.Fatalf("series %d, last %d", len(s.RPS), s.Seconds[59])
	}
	total := 0
	for _, n := range s.RPS {
		total += n
	}
	if total != 107 || s.Blocked[59] != 7 || s.Classes["2xx"] != 100 || s.Classes["4xx"] != 7 {
		t.Fatalf("total %d blocked %d classes %v", total, s.Blocked[59], s.Classes)
	}
	if len(s.Reasons) != 1 || s.Reasons[0] != (Count{"waf.sqli", 7}) {
		t.Fatalf("reasons %v", s.Reasons)
	}
	if s.Clients[0].IP != "198.51.100.1" || len(s.Offender) != 1 || s.Offender[0].IP != "203.0.113.9" || s.Offender[0].Refused != 7 {
		t.Fatalf("clients %v offenders %v", s.Clients, s.Offender)
	}
	if len(s.Events) != 50 || s.Events[0].Stage != "waf" {
		t.Fatalf("events %d %+v", len(s.Events), s.Events[0])
	}
	if s.P99[59] <= 0 || s.P50[59] > s.P99[59] {
		t.Fatalf("latency p50 %v p99 %v", s.P50[59], s.P99[59])
	}
}

// TestLiveEventOrder: the newest event comes first, before and after the
// ring wraps.
func TestLiveEventOrder(t *testing.T) {
	l := NewLive()
	for i := 0; i < 3; i++ {
		l.Emit(pipeline.Event{Code: "c" + strconv.Itoa(i)})
	}
	if s := l.Snapshot(time.Now()); s.Events[0].Code != "c2" || s.Events[2].Code != "c0" {
		t.Fatalf("order %+v", s.Events)
	}
	for i := 3; i < maxEvents+10; i++ {
		l.Emit(pipeline.Event{Code: "c" + strconv.Itoa(i)})
	}
	if s := l.Snapshot(time.Now()); s.Events[0].Code != "c"+strconv.Itoa(maxEvents+9) || s.Events[1].Code != "c"+strconv.Itoa(maxEvents+8) {
		t.Fatalf("order after wrap %+v", s.Events[:2])
	}
}
