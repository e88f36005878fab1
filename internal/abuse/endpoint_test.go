package abuse

import (
	"testing"
	"time"
)

// endpointRun feeds a route a number of requests (errors of them 404s,
// each answer of size bytes) in each of the given intervals.
type endpointRun struct {
	e   *Endpoints
	now time.Time
}

func (r *endpointRun) interval(route string, n, errors int, bytes int64) {
	for i := range n {
		status := 200
		if i < errors {
			status = 404
		}
		r.e.Add(route, "account", status, bytes, r.now)
	}
	r.now = r.now.Add(10 * time.Second)
}

// TestEndpointBaseline: a route's usual traffic raises nothing; a flood,
// a burst of refusals and oversized answers are each reported once with
// their route, category and evidence; another route's quiet traffic is
// not affected.
func TestEndpointBaseline(t *testing.T) {
	var got []EndpointAnomaly
	e := NewEndpoints(10*time.Second, 6, 20, func(a EndpointAnomaly) { got = append(got, a) })
	r := &endpointRun{e: e, now: time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)}
	for i := range 20 {
		r.interval("orders", 100+i%7, 2, 900)
		r.interval("orders", 0, 0, 0) // every other interval quiet: the mean is learned, not a constant
	}
	r.interval("orders", 104, 2, 945) // answers 5% larger than always: not an anomaly
	r.interval("orders", 2, 0, 900)   // a closing request
	if len(got) != 0 {
		t.Fatalf("usual traffic reported: %+v", got)
	}
	for _, c := range []struct {
		n, errors int
		bytes     int64
		signal    string
	}{{1500, 10, 900, "request_rate"}, {100, 60, 900, "error_ratio"}, {100, 2, 90000, "response_size"}} {
		got = nil
		r.interval("orders", c.n, c.errors, c.bytes)
		r.interval("orders", 104, 2, 900) // closes the interval above
		if len(got) != 1 || got[0].Signal != c.signal || got[0].Route != "orders" || got[0].Category != "account" || got[0].Hour != 14 {
			t.Fatalf("%s: %+v", c.signal, got)
		}
		if got[0].Observed <= got[0].Expected || got[0].Reason() == "" {
			t.Fatalf("%s evidence: %+v", c.signal, got[0])
		}
	}
}

// TestEndpointHours: a route busy at 09:00 and quiet at 03:00 is judged
// against the hour: the 09:00 load at 03:00 is an anomaly, at 09:00 it
// is not.
func TestEndpointHours(t *testing.T) {
	var got []EndpointAnomaly
	e := NewEndpoints(time.Minute, 6, 20, func(a EndpointAnomaly) { got = append(got, a) })
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	feed := func(at time.Time, n int) {
		for range n {
			e.Add("search", "search", 200, 100, at)
		}
	}
	for d := range 3 {
		at := day.Add(time.Duration(d) * 24 * time.Hour)
		for m := range 10 {
			feed(at.Add(3*time.Hour+time.Duration(m)*time.Minute), 30+m%3)
		}
		for m := range 10 {
			feed(at.Add(9*time.Hour+time.Duration(m)*time.Minute), 3000+m*20)
		}
	}
	got = nil
	d4 := day.Add(3 * 24 * time.Hour)
	feed(d4.Add(3*time.Hour), 3050)
	feed(d4.Add(3*time.Hour+time.Minute), 1)
	if len(got) != 1 || got[0].Signal != "request_rate" || got[0].Hour != 3 {
		t.Fatalf("the 09:00 load at 03:00: %+v", got)
	}
	got = nil
	feed(d4.Add(9*time.Hour), 3050)
	feed(d4.Add(9*time.Hour+time.Minute), 1)
	if len(got) != 0 {
		t.Fatalf("the usual 09:00 load reported: %+v", got)
	}
}

// TestEndpointsReload: a reload with the same interval keeps what was
// learned and takes the new thresholds; a new interval starts anew.
func TestEndpointsReload(t *testing.T) {
	g := New(Options{Endpoints: NewEndpoints(10*time.Second, 6, 20, func(EndpointAnomaly) {})})
	learned := g.endpoints.Load()
	g.Configure(Options{Endpoints: NewEndpoints(10*time.Second, 4, 5, func(EndpointAnomaly) {})})
	if e := g.endpoints.Load(); e != learned || e.z != 4 || e.minRequests != 5 {
		t.Fatalf("same interval: kept %v, z %v, min %d", e == learned, e.z, e.minRequests)
	}
	g.Configure(Options{Endpoints: NewEndpoints(time.Minute, 4, 5, func(EndpointAnomaly) {})})
	if g.endpoints.Load() == learned {
		t.Fatal("a new interval kept the old learner")
	}
	g.Configure(Options{})
	if g.endpoints.Load() != nil {
		t.Fatal("turned off, still learning")
	}
}
