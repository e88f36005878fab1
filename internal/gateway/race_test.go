package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

func raceGateway(t *testing.T, v *voucherService, route string) (string, *idp) {
	p := newIDP(t, nil)
	p.addKey("k1", true)
	up := newUpstream(t, v.handler)
	src := "      discovery: true\n      allow_plaintext: true\n      min_refetch: 1s\n      refresh: 1h"
	cfg := strings.Replace(authConfig(up.hostPort(), p.srv.URL, src, ""), "    authorize: any_authenticated\n", "    authorize: any_authenticated\n"+route, 1)
	_, addr := startGateway(t, cfg)
	return addr, p
}

// parallel fires n requests at once (barrier-synchronised) and returns
// their statuses.
func parallel(n int, do func(i int) int) []int {
	start := make(chan struct{})
	out := make([]int, n)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = do(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func count(statuses []int) map[int]int {
	m := map[int]int{}
	for _, s := range statuses {
		m[s]++
	}
	return m
}

// A payment route without idempotency keys: twenty parallel identical
// redemptions by one caller reach the service once; another caller is not
// held up; the same request again after the window is a new one.
func TestRaceOnPaymentRoute(t *testing.T) {
	v := &voucherService{delay: 50 * time.Millisecond}
	addr, p := raceGateway(t, v, "    category: payment\n")
	alice, bob := p.token("k1", "alice", time.Hour), p.token("k1", "bob", time.Hour)
	got := count(parallel(20, func(int) int { s, _, _ := redeem(t, addr, alice, "", `{"voucher":"SUMMER"}`); return s }))
	if v.redeemed.Load() != 1 || got[201] != 1 || got[409]+got[429] != 19 {
		t.Fatalf("service redeemed %d times; statuses %v", v.redeemed.Load(), got)
	}
	if s, _, _ := redeem(t, addr, bob, "", `{"voucher":"SUMMER"}`); s != 201 {
		t.Fatalf("another caller: %d", s)
	}
	time.Sleep(1100 * time.Millisecond)
	if s, _, _ := redeem(t, addr, alice, "", `{"voucher":"SUMMER"}`); s != 201 || v.redeemed.Load() != 3 {
		t.Fatalf("after the window: %d, redeemed %d", s, v.redeemed.Load())
	}
	// Different requests at once by one caller: one at a time.
	got = count(parallel(10, func(i int) int {
		s, _, _ := redeem(t, addr, alice, "", fmt.Sprintf(`{"voucher":"V%d"}`, i))
		return s
	}))
	if got[201] < 1 || got[429] < 1 || got[201]+got[429] != 10 {
		t.Fatalf("different requests in parallel: %v", got)
	}
}

// On a write route the detector only flags: both requests pass, one
// abuse.race event says so. Reads are never counted.
func TestRaceFlagOnWriteRoute(t *testing.T) {
	v := &voucherService{}
	ev := &pipeline.EventRecorder{}
	p := newIDP(t, nil)
	p.addKey("k1", true)
	up := newUpstream(t, v.handler)
	src := "      discovery: true\n      allow_plaintext: true\n      min_refetch: 1s\n      refresh: 1h"
	cfg := strings.Replace(authConfig(up.hostPort(), p.srv.URL, src, ""), "    authorize: any_authenticated\n", "    authorize: any_authenticated\n    category: write\n", 1)
	parsed, err := config.Parse([]byte(cfg), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parsed.AccessLog.Enabled = new(bool)
	_, addr := startConfig(t, parsed, pipeline.Deps{Now: time.Now, Events: ev})
	alice := p.token("k1", "alice", time.Hour)
	for range 2 {
		if s, _, _ := redeem(t, addr, alice, "", `{"note":"hi"}`); s != 201 {
			t.Fatalf("flag mode refused: %d", s)
		}
	}
	for range 3 {
		if s := bearerGet(t, "http://"+addr+"/orders/redeem", alice); s != http.StatusMethodNotAllowed {
			t.Fatalf("GET: %d", s)
		}
	}
	races := func() (n int) {
		for _, e := range ev.Events() {
			if e.Code == "abuse.race" {
				n++
			}
		}
		return n
	}
	waitUntil(t, "an abuse.race event", func() bool { return races() == 1 })
	if v.redeemed.Load() != 2 {
		t.Fatalf("redeemed %d", v.redeemed.Load())
	}
}
