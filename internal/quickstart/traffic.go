package quickstart

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// TrafficOptions bound a traffic run.
type TrafficOptions struct {
	// Target is the gateway's base URL (http://127.0.0.1:8080).
	Target string
	// Duration bounds the run.
	Duration time.Duration
	// Rate is the requests per second, in total.
	Rate int
	// Out receives a progress line every 5 s and the summary.
	Out io.Writer
}

// client is one simulated client: a loopback source address (Linux routes
// all of 127.0.0.0/8 to the loopback interface, so each client has its own
// IP for the gateway's per-client limits and detectors) and what it sends.
type client struct {
	name string
	http *http.Client
	next func(r *rand.Rand) (method, path string, hdr http.Header)
	// body is sent with each request (empty: none); burst sends that many
	// copies together (0: one), each after a random delay up to spread.
	body   func(r *rand.Rand) string
	burst  int
	spread time.Duration
	// walk makes each copy of a burst a request of its own (a scraper's
	// next objects) instead of the same one (a racer's duplicates).
	walk bool
	// after is the share of the run before the client starts (a flood
	// only stands out once the normal load is learned).
	after float64
}

// Traffic sends a bounded mix of normal and attack traffic to the
// quickstart gateway: well-behaved clients and attackers (see
// trafficClients), each from its own loopback address, so the dashboard
// shows blocks, bans, top offenders, race refusals and anomalies.
func Traffic(ctx context.Context, o TrafficOptions) error {
	if _, err := url.Parse(o.Target); err != nil {
		return err
	}
	if o.Duration <= 0 || o.Duration > time.Hour {
		return fmt.Errorf("duration %v: use up to 1h", o.Duration)
	}
	if o.Rate <= 0 || o.Rate > 1000 {
		return fmt.Errorf("rate %d: use 1 to 1000 requests per second", o.Rate)
	}
	clients := trafficClients()
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var t tally
	tick := time.NewTicker(time.Second / time.Duration(o.Rate))
	defer tick.Stop()
	report := time.NewTicker(5 * time.Second)
	defer report.Stop()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	start := time.Now()
	sem := make(chan struct{}, 64) // bounded concurrency
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(o.Out, "done: %d requests, %d served, %d refused by the gateway, %d failed\n", t.sent.Load(), t.ok.Load(), t.refused.Load(), t.failed.Load())
			return nil
		case <-report.C:
			fmt.Fprintf(o.Out, "%d requests: %d served, %d refused\n", t.sent.Load(), t.ok.Load(), t.refused.Load())
		case <-tick.C:
			// Normal clients send most of the traffic.
			c := clients[rng.IntN(6)]
			if rng.IntN(10) < 3 {
				c = clients[6+rng.IntN(len(clients)-6)]
			}
			if c.after > 0 && time.Since(start) < time.Duration(c.after*float64(o.Duration)) {
				continue
			}
			rq := c.request(rng)
			for range max(c.burst, 1) { // a burst: copies at once
				rq := rq
				if c.walk {
					rq = c.request(rng)
				}
				select {
				case sem <- struct{}{}:
				default:
					continue // the gateway is slower than the rate: skip
				}
				t.sent.Add(1)
				delay := time.Duration(0)
				if c.spread > 0 {
					delay = time.Duration(rng.Int64N(int64(c.spread)))
				}
				go func() {
					defer func() { <-sem }()
					time.Sleep(delay)
					t.record(c.do(ctx, o.Target, rq))
				}()
			}
		}
	}
}

// tally counts the traffic's outcomes.
type tally struct{ sent, ok, refused, failed atomic.Int64 }

func (t *tally) record(status int, err error) {
	switch {
	case err != nil:
		t.failed.Add(1)
	case status < 400:
		t.ok.Add(1)
	default:
		t.refused.Add(1)
	}
}

// request is one request a client sends.
type request struct {
	method, path, body string
	hdr                http.Header
}

func (c *client) request(rng *rand.Rand) request {
	rq := request{}
	rq.method, rq.path, rq.hdr = c.next(rng)
	if c.body != nil {
		rq.body = c.body(rng)
	}
	return rq
}

// do sends rq and returns the answer's status.
func (c *client) do(ctx context.Context, target string, rq request) (int, error) {
	req, err := http.NewRequestWithContext(ctx, rq.method, target+rq.path, strings.NewReader(rq.body))
	if err != nil {
		return 0, err
	}
	for k, v := range rq.hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "rampart-traffic/"+c.name)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// trafficClients are the simulated clients, each from its own loopback
// address: six normal ones first, then an injector (banned for fuzzing), a
// scanner, a brute-forcer, a racer, a scraper and a flood.
func trafficClients() []*client {
	attacks := []string{
		"/search?q=" + url.QueryEscape("1' OR '1'='1' UNION SELECT password FROM users--"),
		"/search?q=" + url.QueryEscape("<script>alert(document.cookie)</script>"),
		"/search?q=" + url.QueryEscape(";cat /etc/passwd"),
		"/search?file=" + url.QueryEscape("../../../../etc/shadow"),
	}
	scans := []string{"/.env", "/wp-login.php", "/.git/config", "/admin", "/phpmyadmin/", "/actuator/env", "/backup.zip", "/server-status"}
	var clients []*client
	for i := 0; i < 6; i++ {
		clients = append(clients, &client{name: "normal", http: loopbackClient(10 + i), next: func(r *rand.Rand) (string, string, http.Header) {
			switch r.IntN(4) {
			case 0:
				return "GET", "/hello", nil
			case 1:
				return "GET", fmt.Sprintf("/users/%d", r.IntN(500)), nil
			case 2:
				return "GET", "/search?q=" + url.QueryEscape([]string{"coffee", "best shoes", "o'reilly books", "red wine"}[r.IntN(4)]), nil
			}
			return "GET", "/echo?page=" + fmt.Sprint(r.IntN(9)), nil
		}})
	}
	clients = append(clients,
		&client{name: "injection", http: loopbackClient(66), next: func(r *rand.Rand) (string, string, http.Header) {
			return "GET", attacks[r.IntN(len(attacks))], nil
		}},
		&client{name: "scanner", http: loopbackClient(77), next: func(r *rand.Rand) (string, string, http.Header) {
			return "GET", scans[r.IntN(len(scans))], nil
		}},
		// Guessed tokens, in one session: the address and the session are
		// both banned.
		&client{name: "brute-force", http: loopbackClient(88), next: func(r *rand.Rand) (string, string, http.Header) {
			return "GET", fmt.Sprintf("/orders/%d", r.IntN(50)), http.Header{"Authorization": {fmt.Sprintf("Bearer guessed-token-%d", r.IntN(1e6))},
				"Cookie": {"demo_session=stolen-session-7f3a"}}
		}},
		// A scraper reading user after user, twenty at a time: banned past
		// 300 distinct objects a minute.
		&client{name: "scraper", http: loopbackClient(111), burst: 20, walk: true, next: func(r *rand.Rand) (string, string, http.Header) {
			return "GET", fmt.Sprintf("/users/%d", 1000+r.IntN(100000)), nil
		}},
		// A flood of /hello from 65% of the run (the route's baseline is
		// learned by then): its request rate stands out (abuse.anomaly).
		&client{name: "flood", http: loopbackClient(122), burst: 40, after: 0.65, next: func(r *rand.Rand) (string, string, http.Header) {
			return "GET", "/hello", nil
		}},
		// A race: five identical redemptions within 200 ms, hoping two pass
		// the service's check before either writes (refused as in flight,
		// or as a duplicate once the first is done).
		&client{name: "racer", http: loopbackClient(99), burst: 5, spread: 200 * time.Millisecond, next: func(r *rand.Rand) (string, string, http.Header) {
			return "POST", "/vouchers/redeem", http.Header{"Content-Type": {"application/json"}}
		}, body: func(r *rand.Rand) string { return fmt.Sprintf(`{"voucher":"SPRING-%d"}`, r.IntN(1000)) }},
	)
	return clients
}

// loopbackClient dials from 127.0.0.<n> (falls back to the default source
// address where that address does not exist, as on macOS).
func loopbackClient(n int) *http.Client {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}
	d := &net.Dialer{Timeout: 2 * time.Second, LocalAddr: local}
	plain := &net.Dialer{Timeout: 2 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if c, err := d.DialContext(ctx, network, addr); err == nil {
				return c, nil
			}
			return plain.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 4,
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}
