package abuse

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoints learns what each route's traffic normally looks like and
// reports an interval that stands far outside it: more requests than
// usual (a flood, a scraper, a credential-stuffing run), a higher share
// of refusals and errors (probing, fuzzing), or larger responses than
// usual (bulk reads, exfiltration). Every Interval it closes each route's
// counts and scores them against the route's own history: per hour of
// the day (UTC) once that hour has been seen Warmup times, else against
// all hours. Values that stand out are learned ten times more slowly, so
// an attack does not become the new normal while a lasting change does.
//
// Counting costs a map read and three atomic additions per request; the
// request that first sees a new interval closes the last one. The routes
// are the config's (and the requests no route took), so the state is
// bounded by the config; a route gone from the config for a day is
// forgotten.
type Endpoints struct {
	interval    time.Duration
	z           float64
	minRequests int
	warmup      int

	epoch  atomic.Int64 // the interval being counted, 0 before the first request
	routes sync.Map     // route id → *routeStats
	mu     sync.Mutex   // held while scoring
	report func(EndpointAnomaly)
}

// EndpointAnomaly is one route's interval that stood out.
type EndpointAnomaly struct {
	Route, Category string
	Signal          string  // request_rate, error_ratio or response_size
	Observed        float64 // requests, error percent or mean bytes in the interval
	Expected, SD    float64 // the baseline's mean and standard deviation
	Z               float64
	Hour            int // the hour of the day (UTC) the baseline is of, -1: all hours
	Interval        time.Duration
}

// Reason is the anomaly as a sentence for the event.
func (a EndpointAnomaly) Reason() string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }
	of := "all hours"
	if a.Hour >= 0 {
		of = strconv.Itoa(a.Hour) + ":00 UTC"
	}
	return a.Signal + " " + f(a.Observed) + " in " + a.Interval.String() + ", expected " + f(a.Expected) + " ± " + f(a.SD) + " (" + of + ")"
}

// routeStats are one route's counts in the interval and its learned
// history.
type routeStats struct {
	category      string
	n, bad, bytes atomic.Int64
	idle          int  // intervals without a request (under Endpoints.mu)
	counted       bool // an interval was closed: the first, begun part way through, is neither scored nor learned
	all           [3]ewmaCount
	hours         [24][3]ewmaCount
}

// ewmaCount is a learned statistic and how many intervals taught it.
type ewmaCount struct {
	ewma
	seen int
}

// The signals, in routeStats.all and .hours order.
var endpointSignals = [3]string{"request_rate", "error_ratio", "response_size"}

// NewEndpoints returns a learner scoring every interval against z
// standard deviations; routes with fewer than minRequests requests in an
// interval are not scored. report receives the anomalies.
func NewEndpoints(interval time.Duration, z float64, minRequests int, report func(EndpointAnomaly)) *Endpoints {
	return &Endpoints{interval: interval, z: z, minRequests: minRequests, warmup: 3, report: report}
}

// adopt takes n's thresholds when n counts the same interval, keeping
// what e learned, and reports whether it did.
func (e *Endpoints) adopt(n *Endpoints) bool {
	if n.interval != e.interval {
		return false
	}
	e.mu.Lock()
	e.z, e.minRequests, e.report = n.z, n.minRequests, n.report
	e.mu.Unlock()
	return true
}

// Add counts one finished request of a route (category its category,
// bytes the response body's size).
func (e *Endpoints) Add(route, category string, status int, bytes int64, now time.Time) {
	ep := now.UnixNano()/int64(e.interval) + 1
	if cur := e.epoch.Load(); ep > cur && e.epoch.CompareAndSwap(cur, ep) && cur != 0 {
		e.close(time.Unix(0, (cur-1)*int64(e.interval)).UTC().Hour())
	}
	v, ok := e.routes.Load(route)
	if !ok {
		v, _ = e.routes.LoadOrStore(route, &routeStats{category: category})
	}
	rs := v.(*routeStats)
	rs.n.Add(1)
	if status == 401 || status == 403 || status == 404 || status == 429 || status >= 500 {
		rs.bad.Add(1)
	}
	rs.bytes.Add(bytes)
}

// close scores and learns every route's interval that ended (hour: its
// hour of the day, UTC).
func (e *Endpoints) close(hour int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.routes.Range(func(k, v any) bool {
		rs := v.(*routeStats)
		n, bad, bytes := rs.n.Swap(0), rs.bad.Swap(0), rs.bytes.Swap(0)
		if n == 0 {
			if rs.idle++; rs.idle > int(24*time.Hour/e.interval) {
				e.routes.Delete(k)
			}
			return true
		}
		rs.idle = 0
		if !rs.counted {
			rs.counted = true
			return true
		}
		values := [3]float64{float64(n), float64(bad) / float64(n) * 100, float64(bytes) / float64(n)}
		for i, x := range values {
			e.score(k.(string), rs, i, x, hour, n)
		}
		return true
	})
}

// score scores one signal's value and learns it unless it stood out.
func (e *Endpoints) score(route string, rs *routeStats, i int, x float64, hour int, n int64) {
	base, of := &rs.hours[hour][i], hour
	if base.seen < e.warmup {
		base, of = &rs.all[i], -1
	}
	alpha := 0.1
	if base.seen >= e.warmup && n >= int64(e.minRequests) {
		// The deviation is at least a tenth of the mean: a route whose
		// answers are always 143 bytes must not flag 150.
		sd := max(math.Sqrt(base.variance), 1, math.Abs(base.mean)/10)
		if z := (x - base.mean) / sd; z > e.z {
			e.report(EndpointAnomaly{Route: route, Category: rs.category, Signal: endpointSignals[i], Observed: x,
				Expected: base.mean, SD: sd, Z: z, Hour: of, Interval: e.interval})
			alpha = 0.01 // learned slowly: a lasting change still becomes normal, an attack does not
		}
	}
	for _, c := range []*ewmaCount{&rs.all[i], &rs.hours[hour][i]} {
		c.add(x, alpha)
		c.seen++
	}
}
