// Package overload sheds a route's excess load before it queues without
// bound. Each route has a concurrency limit that adapts to the latency
// the route shows (a gradient limiter in the style of Envoy's adaptive
// concurrency filter and Netflix's concurrency-limits): while requests
// finish near the route's no-load latency the limit may grow when it is
// reached; when they take more than Tolerance times it, the limit falls
// in proportion. A request over the limit waits in a short queue (at
// most the no-load latency, and MaxWait) for a slot, else is refused at
// once with 503 overload.shed and Retry-After — cheaply, before the
// route's costlier stages (authentication, validation, the WAF) run.
package overload

import (
	"context"
	"math"
	"net/http"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// CodeShed is the decision code of a shed request (503).
const CodeShed = "overload.shed"

// The limiter's constants: a window closes after windowLength with at
// least minSamples answers (else it waits, up to maxWindow, and closes
// without a decision); events about sustained shedding are at least
// eventEvery apart.
const (
	windowLength = 100 * time.Millisecond
	maxWindow    = time.Second
	minSamples   = 10
	eventEvery   = 10 * time.Second
	reprobeAfter = 20                    // windows of queueing before the usual latency is measured again
	probeQueue   = 1024                  // requests that may wait out a probe
	minExcess    = 4                     // requests queued beyond the latency target that make an overload
	schedBound   = 10 * time.Millisecond // goroutines waiting longer than this for a processor (p90): saturated
	maxProbeWait = 10 * time.Second      // the longest a request waits out a probe
	futileAfter  = 10                    // windows of cuts before their effect is judged (a queue drains meanwhile)
	futileHold   = 50                    // windows without cuts after cuts that did not help (doubling while they keep not helping)
	maxHold      = 600                   // the longest such pause
)

// Limiter is one route's adaptive concurrency limit.
type Limiter struct {
	route  string
	cfg    config.Overload
	events pipeline.Events
	now    func() time.Time
	report func(route string, limit int) // nil: none

	mu        sync.Mutex
	limit     float64
	inFlight  int
	waiting   []chan int    // FIFO; a slot is handed over with the epoch it is taken in
	noLoad    time.Duration // the route's latency when not overloaded (0: not yet known)
	probing   bool          // this window measures noLoad at MinLimit
	saved     float64       // the limit before the probe
	probeWait time.Duration // how long a request may wait out the probe: at least twice the latency that started it
	high      int           // consecutive windows of high latency
	cuts      cutRun        // the current episode of cuts (zero: none)
	hold      int           // windows left without cuts (cuts that did not help)
	nextHold  int           // the pause after the next cuts that do not help (0: futileHold)
	epoch     int           // counts probes: a request knows which it was admitted in
	win       window
	sched     schedLatency
	shed      int       // since the last event
	lastEv    time.Time // when the last event went out
}

// cutRun is an episode of cuts (from the first until the limit has grown
// back, or no longer holds requests back): where it started (the limit
// in effect), the most requests served a second in it, and how many
// windows it has lasted.
type cutRun struct {
	from    float64
	rate    float64
	windows int
}

// window accumulates the answers of the current window.
type window struct {
	start time.Time
	sum   time.Duration
	min   time.Duration // the quickest answer (0: none yet)
	n     int
	peak  int // most requests in flight at once
}

// New returns a route's limiter; now is the clock.
func New(route string, c config.Overload, events pipeline.Events, now func() time.Time) *Limiter {
	if events == nil {
		events = pipeline.NoEvents{}
	}
	return &Limiter{route: route, cfg: c, events: events, now: now, limit: float64(c.MaxLimit), win: window{start: now()}}
}

// Middleware admits a request within the limit, after a short wait, or
// refuses it. Upgraded connections (WebSocket) and their duration are
// not the route's latency: they pass uncounted.
func (l *Limiter) Middleware(next pipeline.Handler) pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Header.Get("Upgrade") != "" {
			return next(w, r)
		}
		epoch, ok := l.acquire(r.Context())
		if !ok {
			e := pipeline.Deny(http.StatusServiceUnavailable, CodeShed, "the service is busy; retry shortly")
			e.Header = http.Header{"Retry-After": {"1"}}
			e.Summarised = true // closeWindow reports shedding every 10 s
			return e
		}
		start := l.now()
		defer func() { l.release(l.now().Sub(start), epoch) }()
		return next(w, r)
	}
}

// Limit is the current limit.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

// acquire takes a slot, waiting in the queue when the limit is reached
// and the queue has room, and returns the probe epoch it was admitted
// in; false: shed.
func (l *Limiter) acquire(ctx context.Context) (int, bool) {
	l.mu.Lock()
	if l.inFlight < int(l.limit) && len(l.waiting) == 0 {
		l.take()
		e := l.epoch
		l.mu.Unlock()
		return e, true
	}
	wait, room := l.maxWait(), *l.cfg.Queue
	if l.probing {
		wait, room = l.probeWait, probeQueue
	}
	if len(l.waiting) >= room || wait <= 0 {
		l.shed++
		l.mu.Unlock()
		return 0, false
	}
	ch := make(chan int, 1)
	l.waiting = append(l.waiting, ch)
	l.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case e := <-ch:
		return e, true
	case <-t.C:
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, c := range l.waiting {
		if c == ch {
			l.waiting = append(l.waiting[:i], l.waiting[i+1:]...)
			l.shed++
			return 0, false
		}
	}
	return <-ch, true // handed a slot as the wait ended
}

// take counts one more request in flight (l.mu held).
func (l *Limiter) take() {
	l.inFlight++
	l.win.peak = max(l.win.peak, l.inFlight)
}

// maxWait is how long a request may wait for a slot: the route's
// no-load latency, at most MaxWait (l.mu held).
func (l *Limiter) maxWait() time.Duration {
	if l.noLoad == 0 {
		return l.cfg.MaxWait.D()
	}
	return min(l.noLoad, l.cfg.MaxWait.D())
}

// release ends a request that took rtt, admitted in epoch: its slot
// goes to the first waiting request when the limit allows, and the
// window may close. During a probe only the requests admitted in it
// count (those before it may have queued behind an overload).
func (l *Limiter) release(rtt time.Duration, epoch int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.probing || epoch == l.epoch {
		l.win.sum += rtt
		l.win.n++
		if l.win.min == 0 || rtt < l.win.min {
			l.win.min = rtt
		}
	}
	l.inFlight--
	l.closeWindow()
	for len(l.waiting) > 0 && l.inFlight < int(l.limit) {
		ch := l.waiting[0]
		l.waiting = l.waiting[1:]
		l.take()
		ch <- l.epoch
	}
}

// closeWindow adapts the limit once the window is long enough (l.mu
// held).
func (l *Limiter) closeWindow() {
	now := l.now()
	age := now.Sub(l.win.start)
	if age < windowLength || l.win.n < minSamples {
		if age >= maxWindow {
			l.win = window{start: now, peak: l.inFlight}
		}
		return
	}
	before := int(l.limit)
	l.adapt(l.win.sum/time.Duration(l.win.n), l.win.min, l.win.peak, float64(l.win.n)/age.Seconds())
	if l.report != nil && int(l.limit) != before {
		l.report(l.route, int(l.limit))
	}
	l.win = window{start: now, peak: l.inFlight}
	if l.shed > 0 && now.Sub(l.lastEv) >= eventEvery {
		l.events.Emit(pipeline.Event{Time: now, Name: CodeShed, Code: CodeShed, Route: l.route,
			Reason: strconv.Itoa(l.shed) + " requests shed over the route's adaptive concurrency limit",
			Attrs:  map[string]string{"shed": strconv.Itoa(l.shed), "limit": strconv.Itoa(int(l.limit))}})
		l.shed, l.lastEv = 0, now
	}
}

// adapt moves the limit by the window's mean latency against its target:
// the route's usual latency times Tolerance, at least MinLatency. The
// requests in flight beyond what the target supports (peak × (1 − target/mean),
// Little's law) are the route's queue: when at least minExcess queue,
// the limit falls to what the latency supports (to at most half, from
// the most actually in flight: a limit above them says nothing); when
// the limit was reached and the latency held, it rises by its square
// root. A few requests in flight cannot make a queue: a route that is
// slow at low concurrency (a slow service, a collection) is slow, not
// overloaded.
//
// The usual latency is learned from windows with few requests in flight
// (at most MinLimit + 2): it follows faster ones by a fifth and slower
// ones by a twentieth — what the route shows when light, collections
// included, not one lucky window. First seen under load, it is the
// window's quickest answer. When the route queued for reprobeAfter
// windows in a row (the service may have become slower for good), a
// probe measures it: for one window the limit is MinLimit, the requests
// over it waiting (at least MaxWait, and twice the latency that started
// the probe) rather than shed.
func (l *Limiter) adapt(mean, quickest time.Duration, peak int, rate float64) {
	if l.probing {
		l.noLoad, l.limit, l.probing, l.high = mean, l.saved, false, 0
		return
	}
	light := peak <= l.cfg.MinLimit+2
	switch {
	case l.noLoad == 0 && light:
		l.noLoad = mean
	case l.noLoad == 0:
		// First seen under load: the quickest answer is the best guess
		// (a parallel service answers all at its own pace; a saturated
		// one answered its first requests before the queue built). A
		// later probe corrects it if the route keeps queueing.
		l.noLoad = quickest
	case light && mean < l.noLoad:
		l.noLoad -= (l.noLoad - mean) / 5
	case light:
		l.noLoad += (mean - l.noLoad) / 20
	}
	target := max(l.cfg.Tolerance*float64(l.noLoad), float64(l.cfg.MinLatency.D()))
	gradient := min(1, target/float64(mean))
	if w := l.sched.p90(); w > schedBound && 2*mean > l.cfg.MinLatency.D() {
		// The processor is saturated: requests wait for it before they
		// reach any route, which the latency above does not see. Only
		// for a route already slow (over half its floor): a machine
		// busy with other processes delays goroutines too, and a quick
		// route's bursts are not its overload.
		gradient = min(gradient, float64(schedBound)/float64(w))
	}
	if l.episode(rate, peak) {
		return
	}
	switch {
	case float64(peak)*(1-gradient) >= minExcess:
		if l.paused(rate, peak) {
			return
		}
		if l.high++; l.high >= reprobeAfter {
			l.probe(mean)
			return
		}
		l.limit = math.Max(float64(l.cfg.MinLimit), math.Min(l.limit, float64(peak))*math.Max(gradient, 0.5))
	case gradient == 1 && peak >= int(l.limit):
		l.high = 0
		l.limit = math.Min(float64(l.cfg.MaxLimit), l.limit+math.Sqrt(l.limit))
		if l.cuts.windows > 0 && l.limit >= l.cuts.from {
			l.cuts, l.nextHold = cutRun{}, 0 // recovered: the cuts are over
		}
	default:
		l.high = 0
	}
}

// episode counts a window of the current cuts and the most requests
// served a second in them, and reports whether it undid them (l.mu
// held). The cuts last from the first until the limit has grown back to
// where they began, or until the limit no longer holds requests back
// (peak below it: the load fell, and with it the requests served, which
// says nothing of the cuts).
func (l *Limiter) episode(rate float64, peak int) bool {
	switch {
	case l.cuts.windows == 0:
		return false
	case peak < int(l.limit):
		l.cuts, l.nextHold = cutRun{}, 0
		return false
	}
	l.cuts.windows++
	l.cuts.rate = max(l.cuts.rate, rate)
	return l.cuts.windows > futileAfter && l.undo(rate)
}

// paused reports that a window asking for a cut gets none (cuts that did
// not help are paused), and otherwise starts an episode of cuts if none
// is running (l.mu held). Cuts help when a refused request costs the
// gateway much less than an admitted one (a WAF route, a slow service):
// the route keeps serving what it can, and sooner. On a route whose
// requests cost little more than a refusal (a pass-through under many
// connections, its latency the crowd waiting for the processor),
// refusing frees nothing and cutting on would refuse nearly everything;
// episode and undo judge that over the whole episode.
func (l *Limiter) paused(rate float64, peak int) bool {
	if l.hold > 0 {
		l.hold--
		return true
	}
	if l.cuts.windows == 0 {
		l.cuts = cutRun{from: math.Min(l.limit, float64(peak)), rate: rate, windows: 1}
	}
	return false
}

// undo ends cuts that took the limit to half or less while the route came
// to serve less than a quarter as many requests a second as at the
// episode's best: the cuts did not shorten a queue (a route whose queue
// was cut serves about as many, sooner; refusals cost a little, so
// somewhat fewer), they refused the work the route could do (l.mu held).
// The limit goes back to where the episode began and cuts pause. False:
// the cuts helped, or have not gone far enough to tell.
func (l *Limiter) undo(rate float64) bool {
	c := l.cuts
	if l.limit > c.from/2 || 4*rate >= max(c.rate, rate) {
		return false
	}
	if l.nextHold == 0 {
		l.nextHold = futileHold
	}
	l.limit, l.hold, l.high, l.cuts = math.Max(l.limit, c.from), l.nextHold, 0, cutRun{}
	l.nextHold = min(2*l.nextHold, maxHold)
	return true
}

// probe starts a window at MinLimit (l.mu held).
func (l *Limiter) probe(mean time.Duration) {
	l.saved, l.limit, l.probing = l.limit, float64(l.cfg.MinLimit), true
	l.probeWait = min(max(l.cfg.MaxWait.D(), 2*mean), maxProbeWait)
	l.epoch++
}

// schedLatency reads how long runnable goroutines waited for a processor
// since its last reading (the runtime's /sched/latencies histogram).
type schedLatency struct {
	sample []metrics.Sample
	prev   []uint64
}

// p90 is the 90th percentile of the waits since the last call (0 when
// too few to tell).
func (s *schedLatency) p90() time.Duration {
	if s.sample == nil {
		s.sample = []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	}
	metrics.Read(s.sample)
	if s.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := s.sample[0].Value.Float64Histogram()
	prev := s.prev
	s.prev = append(s.prev[:0:0], h.Counts...)
	return p90Since(h.Counts, prev, h.Buckets)
}

// p90Since is the 90th percentile of a histogram's counts since prev (a
// bucket's upper bound, or its lower one when unbounded); 0 with fewer
// than minSamples or no earlier reading.
func p90Since(counts, prev []uint64, buckets []float64) time.Duration {
	if len(prev) != len(counts) || len(buckets) != len(counts)+1 {
		return 0
	}
	var total uint64
	for i, c := range counts {
		total += c - prev[i]
	}
	if total < minSamples {
		return 0
	}
	var seen uint64
	for i, c := range counts {
		if seen += c - prev[i]; seen*10 >= total*9 {
			b := buckets[i+1]
			if math.IsInf(b, 1) {
				b = buckets[i]
			}
			return time.Duration(b * float64(time.Second))
		}
	}
	return 0
}
