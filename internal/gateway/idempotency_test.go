package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// voucherService would double-spend: every POST it receives redeems.
type voucherService struct {
	redeemed atomic.Int64
	delay    time.Duration
}

func (v *voucherService) handler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	time.Sleep(v.delay)
	n := v.redeemed.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", fmt.Sprintf("/orders/redemptions/%d", n))
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"redemption":%d}`, n)
}

func idemGateway(t *testing.T, v *voucherService, required bool) (addr string, p *idp) {
	p = newIDP(t, nil)
	p.addKey("k1", true)
	up := newUpstream(t, v.handler)
	src := "      discovery: true\n      allow_plaintext: true\n      min_refetch: 1s\n      refresh: 1h"
	cfg := authConfig(up.hostPort(), p.srv.URL, src, "")
	cfg = strings.Replace(cfg, "    authorize: any_authenticated\n", fmt.Sprintf("    authorize: any_authenticated\n    idempotency: {required: %v}\n", required), 1)
	_, addr = startGateway(t, cfg)
	return addr, p
}

func redeem(t *testing.T, addr, token, key, body string) (int, http.Header, string) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/orders/redeem", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// Twenty truly parallel redemptions with one key: the service redeems
// once; every other request is told the first is in flight (409) or, once
// it is done, gets the very same answer, marked as replayed.
func TestIdempotencyParallelDoubleSpend(t *testing.T) {
	v := &voucherService{delay: 100 * time.Millisecond}
	addr, p := idemGateway(t, v, true)
	tok := p.token("k1", "alice", time.Hour)
	start := make(chan struct{})
	var wg sync.WaitGroup
	statuses := make([]int, 20)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start // all at once
			statuses[i], _, _ = redeem(t, addr, tok, `"voucher-7f3a"`, `{"voucher":"SUMMER"}`)
		}()
	}
	close(start)
	wg.Wait()
	created, conflicts := 0, 0
	for _, s := range statuses {
		switch s {
		case 201:
			created++
		case 409:
			conflicts++
		default:
			t.Errorf("status %d", s)
		}
	}
	if v.redeemed.Load() != 1 || created != 1 || conflicts != 19 {
		t.Fatalf("service redeemed %d times; %d created, %d conflicts", v.redeemed.Load(), created, conflicts)
	}
	// The retry after it is done: the stored answer, not a second redemption.
	status, h, body := redeem(t, addr, tok, `"voucher-7f3a"`, `{"voucher":"SUMMER"}`)
	if status != 201 || body != `{"redemption":1}` || h.Get("Idempotent-Replayed") != "true" || h.Get("Location") != "/orders/redemptions/1" || v.redeemed.Load() != 1 {
		t.Fatalf("replay: %d %q %v; redeemed %d", status, body, h, v.redeemed.Load())
	}
}

// The key cannot be turned against the service or another caller.
func TestIdempotencyAttacks(t *testing.T) {
	v := &voucherService{}
	addr, p := idemGateway(t, v, true)
	alice, mallory := p.token("k1", "alice", time.Hour), p.token("k1", "mallory", time.Hour)
	if s, _, _ := redeem(t, addr, alice, "order-1", `{"amount":10}`); s != 201 {
		t.Fatalf("first: %d", s)
	}
	cases := []struct {
		name, token, key, body string
		status                 int
		code                   string
	}{
		{"same key, another amount", alice, "order-1", `{"amount":1000}`, 422, "idempotency.key_reused"},
		{"no key on a route that requires one", alice, "", `{"amount":10}`, 400, "idempotency.key_missing"},
		{"a key with a quote inside", alice, `order"1`, `{"amount":10}`, 400, "idempotency.key_invalid"},
		{"a key that is not ASCII", alice, "заказ-1", `{"amount":10}`, 400, "idempotency.key_invalid"},
		{"a key of 256 bytes", alice, strings.Repeat("k", 256), `{"amount":10}`, 400, "idempotency.key_invalid"},
	}
	for _, c := range cases {
		status, _, body := redeem(t, addr, c.token, c.key, c.body)
		if status != c.status || !strings.Contains(body, c.code) {
			t.Errorf("%s: %d %s", c.name, status, body)
		}
	}
	// Another caller with alice's key gets no replay of alice's answer: it
	// is a new request of its own.
	status, h, body := redeem(t, addr, mallory, "order-1", `{"amount":10}`)
	if status != 201 || h.Get("Idempotent-Replayed") != "" || body == `{"redemption":1}` {
		t.Fatalf("another caller replayed alice's answer: %d %q", status, body)
	}
	if v.redeemed.Load() != 2 {
		t.Fatalf("service redeemed %d times, want 2 (alice once, mallory once)", v.redeemed.Load())
	}
	// Two keys on one request are refused too.
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/orders/redeem", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+alice)
	req.Header.Add("Idempotency-Key", "a")
	req.Header.Add("Idempotency-Key", "b")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || v.redeemed.Load() != 2 {
		t.Fatalf("two keys: %d", resp.StatusCode)
	}
}

// A failed answer from the service is not kept: the retry reaches it.
func TestIdempotencyServiceFailureNotKept(t *testing.T) {
	var calls atomic.Int64
	p := newIDP(t, nil)
	p.addKey("k1", true)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(201)
	})
	src := "      discovery: true\n      allow_plaintext: true\n      min_refetch: 1s\n      refresh: 1h"
	cfg := strings.Replace(authConfig(up.hostPort(), p.srv.URL, src, ""), "    authorize: any_authenticated\n", "    authorize: any_authenticated\n    idempotency: {}\n", 1)
	_, addr := startGateway(t, cfg)
	tok := p.token("k1", "alice", time.Hour)
	if s, _, _ := redeem(t, addr, tok, "k", "{}"); s != 503 {
		t.Fatalf("first: %d", s)
	}
	if s, h, _ := redeem(t, addr, tok, "k", "{}"); s != 201 || h.Get("Idempotent-Replayed") != "" || calls.Load() != 2 {
		t.Fatalf("retry: %d, %d calls", s, calls.Load())
	}
	// Without a key (not required here) requests pass as before.
	if s, _, _ := redeem(t, addr, tok, "", "{}"); s != 201 || calls.Load() != 3 {
		t.Fatalf("no key: %d", s)
	}
}

// TestIdempotencyAndRaceInRedis: with Redis, the claim of a key and the
// race detector's count are one script: the first redemption passes
// (counted once, not twice), the same request under another key within
// the window is refused as a race, a retry under the first key is
// answered from its record, and the service redeems once; after the
// window the request is new again.
func TestIdempotencyAndRaceInRedis(t *testing.T) {
	rs := startRedis(t, "")
	v := &voucherService{}
	p := newIDP(t, nil)
	p.addKey("k1", true)
	up := newUpstream(t, v.handler)
	src := "      discovery: true\n      allow_plaintext: true\n      min_refetch: 1s\n      refresh: 1h"
	cfg := strings.Replace(authConfig(up.hostPort(), p.srv.URL, src, ""), "    authorize: any_authenticated\n",
		"    authorize: any_authenticated\n    category: payment\n    idempotency: {required: true}\n", 1)
	_, addr := startGateway(t, cfg+"rate_limiting: {redis: {addresses: [\""+rs.Addr+"\"]}}\n")
	tok := p.token("k1", "alice", time.Minute)
	body := `{"voucher":"SPRING-7"}`
	if c, _, b := redeem(t, addr, tok, "key-a", body); c != 201 {
		t.Fatalf("first redemption: %d %s", c, b)
	}
	if c, _, b := redeem(t, addr, tok, "key-b", body); c != 409 || !strings.Contains(b, "abuse.race") {
		t.Fatalf("the same redemption under another key: %d %s", c, b)
	}
	if c, h, _ := redeem(t, addr, tok, "key-a", body); c != 201 || h.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a retry under the first key: %d %v", c, h)
	}
	if n := v.redeemed.Load(); n != 1 {
		t.Fatalf("the service redeemed %d times", n)
	}
	time.Sleep(1100 * time.Millisecond)
	if c, _, b := redeem(t, addr, tok, "key-c", body); c != 201 {
		t.Fatalf("after the window: %d %s", c, b)
	}
}
