package proxy

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestIsSpoofable(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"X-Forwarded-For", "x-forwarded-for", "X_Forwarded_For", "X-FORWARDED-HOST", "Forwarded", "X-Real-Ip", "x_real_ip",
		"X-Original-Url", "X-Rewrite-Url", "True-Client-Ip", "X-Client-Ip", "X-Http-Method-Override", "X_HTTP_METHOD_OVERRIDE",
		"X-Request-Id", "Cf-Connecting-Ip", "X-Envoy-External-Address", "X-Envoy-Original-Path-Something-Very-Long-Header-Name-Here",
		"Http2-Settings", "X-Forwarded-Prefix", "Fastly-Client-Ip",
	} {
		if !isSpoofable(name) {
			t.Errorf("%s not stripped", name)
		}
	}
	for _, name := range []string{"Accept", "Content-Type", "X-Forwarded", "X-Request", "Authorization", "X-Tenant-Id", "Cookie"} {
		if isSpoofable(name) {
			t.Errorf("%s stripped", name)
		}
	}
}

func TestStripUpgrade(t *testing.T) {
	t.Parallel()
	cases := []struct {
		up, conn string
		keep     bool
	}{
		{"websocket", "Upgrade", true},
		{"WebSocket", "keep-alive, Upgrade", true},
		{"h2c", "Upgrade, HTTP2-Settings", false},
		{"websocket, h2c", "Upgrade", false},
		{"websocket", "keep-alive", false},
		{"tls/1.2", "Upgrade", false},
	}
	for _, c := range cases {
		h := http.Header{"Upgrade": {c.up}, "Connection": {c.conn}, "Http2-Settings": {"x"}}
		stripUpgrade(h)
		if _, ok := h["Http2-Settings"]; ok {
			t.Errorf("%q: HTTP2-Settings kept", c.up)
		}
		if got := h.Get("Upgrade") != ""; got != c.keep {
			t.Errorf("Upgrade %q / Connection %q: kept=%v, want %v", c.up, c.conn, got, c.keep)
		}
		if !c.keep && connectionHas(h, "upgrade") {
			t.Errorf("%q: Connection still asks for an upgrade: %v", c.up, h["Connection"])
		}
	}
}

func targets(weights ...int) []*Target {
	var ts []*Target
	for i, w := range weights {
		ts = append(ts, &Target{Host: fmt.Sprintf("10.0.0.%d:80", i+1), weight: w})
	}
	return ts
}

func TestSmoothWeightedRoundRobin(t *testing.T) {
	t.Parallel()
	ts := targets(5, 1, 1)
	rr := newRoundRobin(ts)
	var seq string
	for i := 0; i < 7; i++ {
		seq += ts[rr.seq[i]].Host[7:8]
	}
	// nginx's smooth algorithm spreads the heavy target: a a b a c a a.
	if seq != "1121311" {
		t.Errorf("sequence %s, want 1121311", seq)
	}
	ts[0].unhealthy.Store(true)
	for i := 0; i < 10; i++ {
		if got := rr.pick(ts, "", acceptable{now: time.Now().UnixNano()}); got == ts[0] {
			t.Fatal("picked an unhealthy target")
		}
	}
}

// TestHashRingStability: removing one target remaps only its keys.
func TestHashRingStability(t *testing.T) {
	t.Parallel()
	ts := targets(1, 1, 1, 1)
	ring := newHashRing(ts)
	now := acceptable{now: time.Now().UnixNano()}
	before := map[string]*Target{}
	for i := 0; i < 1000; i++ {
		k := fmt.Sprint("client-", i)
		before[k] = ring.pick(ts, k, now)
	}
	ts[2].unhealthy.Store(true)
	moved := 0
	for k, t0 := range before {
		t1 := ring.pick(ts, k, now)
		if t1 == ts[2] {
			t.Fatal("picked the removed target")
		}
		if t0 != ts[2] && t1 != t0 {
			moved++
		}
	}
	if moved != 0 {
		t.Errorf("%d keys of healthy targets moved", moved)
	}
	share := 0
	for _, t0 := range before {
		if t0 == ts[0] {
			share++
		}
	}
	if share < 150 || share > 350 {
		t.Errorf("target 0 got %d of 1000 keys, want about 250", share)
	}
}

func TestBreaker(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	b := newBreaker(2, 10*time.Second, func() time.Time { return now })
	b.record(true)
	if !b.allow() {
		t.Fatal("opened after one failure")
	}
	b.record(true)
	if b.allow() {
		t.Fatal("not open after two failures")
	}
	now = now.Add(11 * time.Second)
	if !b.allow() {
		t.Fatal("no half-open probe after open_for")
	}
	if b.allow() {
		t.Fatal("second concurrent probe allowed")
	}
	b.record(true) // probe failed
	if b.allow() {
		t.Fatal("not re-opened after a failed probe")
	}
	now = now.Add(11 * time.Second)
	if !b.allow() {
		t.Fatal("no probe")
	}
	b.record(false)
	if !b.allow() || !b.allow() || b.open() {
		t.Fatal("not closed after a good probe")
	}
}
