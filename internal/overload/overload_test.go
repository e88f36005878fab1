package overload

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

func defaults() config.Overload {
	return config.Overload{MinLimit: 2, MaxLimit: 1000, Tolerance: 2, Queue: queue(16), MaxWait: config.Duration(50 * time.Millisecond),
		MinLatency: config.Duration(20 * time.Millisecond)}
}

func queue(n int) *int { return &n }

type events struct {
	mu  sync.Mutex
	evs []pipeline.Event
}

func (e *events) Emit(ev pipeline.Event) { e.mu.Lock(); e.evs = append(e.evs, ev); e.mu.Unlock() }

// serial is a service that does one thing at a time (a CPU-bound route
// on one core): each request holds it for d.
func serial(d time.Duration) pipeline.Handler {
	var mu sync.Mutex
	return func(w http.ResponseWriter, r *http.Request) error {
		mu.Lock()
		time.Sleep(d)
		mu.Unlock()
		return nil
	}
}

// flood sends from callers at once for dur and returns the latencies of
// the admitted requests sent in its second half and how many were shed.
func flood(t *testing.T, h pipeline.Handler, callers int, dur time.Duration) ([]time.Duration, int) {
	t.Helper()
	var mu sync.Mutex
	var admitted []time.Duration
	var shed atomic.Int64
	end := time.Now().Add(dur)
	late := end.Add(-dur / 2)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				start := time.Now()
				err := h(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
				var d *pipeline.Error
				switch {
				case err == nil && start.After(late):
					mu.Lock()
					admitted = append(admitted, time.Since(start))
					mu.Unlock()
				case err == nil:
				case errors.As(err, &d) && d.Status == 503 && d.Code == CodeShed && d.Header.Get("Retry-After") == "1":
					shed.Add(1)
					time.Sleep(5 * time.Millisecond) // a client backing off a little
				default:
					t.Errorf("unexpected answer: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return admitted, int(shed.Load())
}

func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// The attack: 100 callers at once against a route that serves one
// request per 2 ms. Without shedding they queue (each waits ~100 × 2 ms);
// with it the limit falls to a few, the excess is refused at once, and
// the admitted requests wait a few service times. Both floods run here,
// so that a loaded machine slows both alike.
func TestShedsAFlood(t *testing.T) {
	ev := &events{}
	l := New("search", defaults(), ev, time.Now)
	service := serial(2 * time.Millisecond)
	admitted, shed := flood(t, l.Middleware(service), 100, 1500*time.Millisecond)
	if shed == 0 || len(admitted) == 0 {
		t.Fatalf("admitted %d, shed %d", len(admitted), shed)
	}
	if got := l.Limit(); got > 16 {
		t.Errorf("limit %d after the flood, want near the route's capacity (a few)", got)
	}
	queued, _ := flood(t, service, 100, 1500*time.Millisecond)
	if with, without := p99(admitted), p99(queued); with*2 > without {
		t.Errorf("admitted p99 %v with shedding, %v without: want less than half", with, without)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if len(ev.evs) != 1 || ev.evs[0].Code != CodeShed || ev.evs[0].Route != "search" || ev.evs[0].Attrs["shed"] == "" {
		t.Errorf("events %+v, want one overload.shed for the route with its count", ev.evs)
	}
}

// Ordinary traffic is never shed: requests one after another with a
// latency that varies tenfold, and a burst of a few at once.
func TestOrdinaryTrafficPasses(t *testing.T) {
	l := New("api", defaults(), nil, time.Now)
	h := l.Middleware(func(w http.ResponseWriter, r *http.Request) error {
		time.Sleep(time.Duration(1+rand.IntN(10)) * time.Millisecond)
		return nil
	})
	for range 200 {
		if err := h(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)); err != nil {
			t.Fatal(err)
		}
	}
	if _, shed := flood(t, h, 4, 300*time.Millisecond); shed != 0 {
		t.Errorf("%d of a 4-caller burst shed", shed)
	}
}

// A service that turns slow while few requests are in flight is slow,
// not overloaded: limiting it would refuse requests for nothing.
func TestSlowServiceIsNotShed(t *testing.T) {
	l := New("api", defaults(), nil, time.Now)
	var slow atomic.Bool
	h := l.Middleware(func(w http.ResponseWriter, r *http.Request) error {
		if slow.Load() {
			time.Sleep(20 * time.Millisecond)
		} else {
			time.Sleep(time.Millisecond)
		}
		return nil
	})
	if _, shed := flood(t, h, 2, 300*time.Millisecond); shed != 0 {
		t.Fatalf("%d shed while fast", shed)
	}
	slow.Store(true)
	if _, shed := flood(t, h, 2, 500*time.Millisecond); shed != 0 {
		t.Errorf("%d shed when the service slowed with 2 callers", shed)
	}
}

// A WebSocket upgrade lasts as long as the conversation: never counted.
func TestUpgradesPassUncounted(t *testing.T) {
	c := defaults()
	c.MaxLimit, c.Queue = 2, queue(0)
	l := New("ws", c, nil, time.Now)
	release := make(chan struct{})
	h := l.Middleware(func(w http.ResponseWriter, r *http.Request) error { <-release; return nil })
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Upgrade", "websocket")
			if err := h(httptest.NewRecorder(), r); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	l.mu.Lock()
	n := l.inFlight
	l.mu.Unlock()
	close(release)
	wg.Wait()
	if n != 0 {
		t.Errorf("%d upgrades counted in flight", n)
	}
}

// A request over the limit waits for a slot when the queue has room and
// one frees in time; the queue's bound and the wait's are kept.
func TestQueue(t *testing.T) {
	c := defaults()
	c.MaxLimit, c.Queue, c.MaxWait = 1, queue(1), config.Duration(time.Second)
	l := New("q", c, nil, time.Now)
	hold := make(chan struct{})
	h := l.Middleware(func(w http.ResponseWriter, r *http.Request) error { <-hold; return nil })
	results := make(chan error, 3)
	for range 2 {
		go func() { results <- h(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) }()
	}
	time.Sleep(30 * time.Millisecond) // one in flight, one waiting
	if err := h(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)); err == nil {
		t.Fatal("a third request passed a limit of 1 and a queue of 1")
	}
	close(hold) // the first finishes; the waiting one gets its slot
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("queued request: %v", err)
		}
	}
}

// A load test's queueing — ten callers back to back on a route that
// serves one request per millisecond, ~10 ms each — stays under
// min_latency: nothing is shed. Without the floor the same queue is
// an overload against the route's usual latency of ~1 ms.
func TestMinLatencyFloor(t *testing.T) {
	for _, c := range []struct {
		floor    time.Duration
		wantShed bool
	}{{20 * time.Millisecond, false}, {0, true}} {
		cfg := defaults()
		cfg.MinLatency = config.Duration(c.floor)
		l := New("api", cfg, nil, time.Now)
		h := l.Middleware(serial(time.Millisecond))
		for range 50 { // the usual latency, learned one at a time
			if err := h(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)); err != nil {
				t.Fatal(err)
			}
		}
		if _, shed := flood(t, h, 10, time.Second); (shed > 0) != c.wantShed {
			t.Errorf("min_latency %v: %d shed", c.floor, shed)
		}
	}
}

func TestP90Since(t *testing.T) {
	// Counts[i] holds waits in [buckets[i], buckets[i+1]).
	buckets := []float64{0, 0.001, 0.01, 0.1, math.Inf(1)}
	for _, c := range []struct {
		counts, prev []uint64
		want         time.Duration
	}{
		{[]uint64{0, 100, 0, 0}, []uint64{0, 0, 0, 0}, 10 * time.Millisecond},
		{[]uint64{0, 100, 50, 0}, []uint64{0, 95, 0, 0}, 100 * time.Millisecond}, // only what is new counts
		{[]uint64{0, 80, 5, 15}, []uint64{0, 0, 0, 0}, 100 * time.Millisecond},
		{[]uint64{0, 0, 0, 20}, []uint64{0, 0, 0, 0}, 100 * time.Millisecond}, // unbounded: its lower bound
		{[]uint64{0, 3, 0, 0}, []uint64{0, 0, 0, 0}, 0},                       // too few
		{[]uint64{0, 100, 0, 0}, nil, 0},                                      // no earlier reading
	} {
		if got := p90Since(c.counts, c.prev, buckets); got != c.want {
			t.Errorf("%v since %v: %v, want %v", c.counts, c.prev, got, c.want)
		}
	}
}

// The limit's changes are reported (metrics): its start, then each move.
func TestLimitReported(t *testing.T) {
	var mu sync.Mutex
	var seen []int
	set := Compile(searchConfig(defaults()), pipeline.Deps{Now: time.Now, OverloadLimit: func(route string, limit int) {
		mu.Lock()
		defer mu.Unlock()
		if route == "search" {
			seen = append(seen, limit)
		}
	}}, nil)
	set.Start()
	h := set.Stage(config.Route{ID: "search"})(serial(2 * time.Millisecond))
	flood(t, h, 100, time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 2 || seen[0] != 1000 || seen[len(seen)-1] >= 1000 {
		t.Errorf("limits reported %v, want 1000 then lower", seen)
	}
}

// searchConfig is a config of one route, search, with this overload
// section.
func searchConfig(c config.Overload) *config.Config {
	return &config.Config{Routes: []config.Route{{ID: "search", Overload: &c}}}
}

// A reload keeps a route's limiter while its section is unchanged (an
// overload in progress stays limited, instead of every route opening
// to max_limit); a changed section starts afresh; a route gone from the
// config is reported gone (its metric series removed) once the new plan
// starts, and not before.
func TestLimiterKeptAcrossReloads(t *testing.T) {
	var mu sync.Mutex
	last := map[string]int{}
	deps := pipeline.Deps{Now: time.Now, OverloadLimit: func(route string, limit int) {
		mu.Lock()
		defer mu.Unlock()
		last[route] = limit
	}}
	reported := func() int {
		mu.Lock()
		defer mu.Unlock()
		v, ok := last["search"]
		if !ok {
			return -2
		}
		return v
	}
	first := Compile(searchConfig(defaults()), deps, nil)
	first.Start()
	flood(t, first.Stage(config.Route{ID: "search"})(serial(2*time.Millisecond)), 100, time.Second)
	limited := first.byRoute["search"].Limit()
	if limited >= 1000 {
		t.Fatalf("limit %d after a flood", limited)
	}
	same := Compile(searchConfig(defaults()), deps, first)
	same.Start()
	if same.byRoute["search"] != first.byRoute["search"] || reported() != limited {
		t.Errorf("unchanged section: limiter kept %v, reported %d, want the limit %d", same.byRoute["search"] == first.byRoute["search"], reported(), limited)
	}
	c := defaults()
	c.Tolerance = 3
	changed := Compile(searchConfig(c), deps, same)
	changed.Start()
	if got := changed.byRoute["search"].Limit(); got != 1000 || reported() != 1000 {
		t.Errorf("changed section: limit %d, reported %d, want a fresh 1000", got, reported())
	}
	gone := Compile(&config.Config{}, deps, changed)
	if reported() != 1000 {
		t.Errorf("reported %d before the plan without the route started", reported())
	}
	gone.Start()
	if reported() != -1 || gone.Stage(config.Route{ID: "search"}) != nil {
		t.Errorf("route gone: reported %d, want -1 (series removed)", reported())
	}
}

// Bursts of parallel requests to a slow service that answers them all
// at its own pace (twenty "redeem" calls at once, a report that takes
// 80 ms) are not an overload: none is shed, the first burst or the next.
func TestParallelBurstsOnASlowService(t *testing.T) {
	c := defaults()
	c.MinLatency = config.Duration(50 * time.Millisecond)
	l := New("redeem", c, nil, time.Now)
	h := l.Middleware(func(w http.ResponseWriter, r *http.Request) error {
		time.Sleep(80 * time.Millisecond)
		return nil
	})
	for burst := range 4 {
		var wg sync.WaitGroup
		var shed atomic.Int64
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := h(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil)); err != nil {
					shed.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := shed.Load(); n != 0 {
			t.Fatalf("burst %d: %d of 20 shed", burst, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cpu is one processor shared by everything a gateway does for a
// request: work holds it for d.
type cpu struct{ mu sync.Mutex }

func (c *cpu) work(d time.Duration) {
	c.mu.Lock()
	time.Sleep(d)
	c.mu.Unlock()
}

// Many clients in a closed loop (wrk's way: a refused client asks again
// at once) on a route whose requests cost the gateway little more than
// a refusal: reading and parsing a request (1 ms here) is most of its
// cost, serving it 0.5 ms more, on one processor. Latency grows with
// the clients, but refusing frees almost nothing, so cuts cannot bring
// it down: the limiter must not cut on until it refuses nearly
// everything (what it did, refusing 97% of a pass-through route's
// requests under 1,000 connections).
func TestCutsThatDoNotHelpAreUndone(t *testing.T) {
	l := New("pass", defaults(), nil, time.Now)
	proc := &cpu{}
	route := l.Middleware(func(w http.ResponseWriter, r *http.Request) error {
		proc.work(500 * time.Microsecond)
		return nil
	})
	var served, shed atomic.Int64
	end := time.Now().Add(4 * time.Second)
	late := end.Add(-2 * time.Second) // the cuts are judged over a second or so first
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				proc.work(time.Millisecond) // the request read and parsed
				err := route(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
				if time.Now().Before(late) {
					continue
				}
				if err != nil {
					shed.Add(1)
				} else {
					served.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	s, r := served.Load(), shed.Load()
	t.Logf("last 2 s: %d served, %d refused; limit %d", s, r, l.Limit())
	if r*4 > s+r {
		t.Fatalf("refused %d of %d requests: cuts that free nothing went on", r, s+r)
	}
}
