package abuse

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// Baseline learns what normal traffic looks like and flags clients that
// stand far outside it. Every Interval it closes each active client's
// counts (requests, and the share of 401/403/404/429 answers), folds them
// into population statistics kept as exponentially weighted mean and
// variance, and scores the client against them. A client whose request
// count or error share lies more than Z standard deviations above the
// population, with at least MinRequests requests in the interval, is an
// outlier. The population adapts (Alpha per interval), so a slow general
// rise in traffic is learned, while a single client's burst is not.
type Baseline struct {
	mu          sync.Mutex
	interval    time.Duration
	alpha, z    float64
	minRequests int
	warmup      int // intervals before scoring starts

	start   time.Time
	clients map[netip.Addr]*window
	rate    ewma
	errs    ewma
	seen    int
}

type window struct {
	n, bad int
}

// ewma is an exponentially weighted mean and variance.
type ewma struct {
	mean, variance float64
	init           bool
}

func (e *ewma) add(x, alpha float64) {
	if !e.init {
		e.mean, e.init = x, true
		return
	}
	d := x - e.mean
	e.mean += alpha * d
	e.variance = (1 - alpha) * (e.variance + alpha*d*d)
}

func (e *ewma) z(x float64) float64 {
	sd := math.Sqrt(e.variance)
	if sd < 1 {
		sd = 1 // a quiet, uniform population must not make every blip an outlier
	}
	return (x - e.mean) / sd
}

// NewBaseline returns a learner; z is the outlier threshold in standard
// deviations.
func NewBaseline(interval time.Duration, z float64, minRequests int) *Baseline {
	return &Baseline{interval: interval, alpha: 0.1, z: z, minRequests: minRequests, warmup: 3, clients: map[netip.Addr]*window{}}
}

// Add counts one finished request and, when an interval closes, returns
// the outliers of the closed interval with the signal that flagged them.
func (b *Baseline) Add(ip netip.Addr, status int, now time.Time) map[netip.Addr]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.start.IsZero() {
		b.start = now
	}
	var out map[netip.Addr]string
	if now.Sub(b.start) >= b.interval {
		out = b.closeLocked()
		b.start = now
	}
	w := b.clients[ip]
	if w == nil {
		if len(b.clients) >= 500000 {
			return out // bounded; this interval's excess clients are not scored
		}
		w = &window{}
		b.clients[ip] = w
	}
	w.n++
	if status == 401 || status == 403 || status == 404 || status == 429 {
		w.bad++
	}
	return out
}

func (b *Baseline) closeLocked() map[netip.Addr]string {
	var out map[netip.Addr]string
	scoring := b.seen >= b.warmup
	// Score against the population as it was, then learn from this
	// interval.
	if scoring {
		for ip, w := range b.clients {
			if w.n < b.minRequests {
				continue
			}
			share := float64(w.bad) / float64(w.n)
			signal := ""
			switch {
			case b.rate.z(float64(w.n)) > b.z:
				signal = "request_rate"
			case b.errs.z(share*100) > b.z:
				signal = "error_ratio"
			}
			if signal != "" {
				if out == nil {
					out = map[netip.Addr]string{}
				}
				out[ip] = signal
			}
		}
	}
	for _, w := range b.clients {
		b.rate.add(float64(w.n), b.alpha)
		b.errs.add(float64(w.bad)/float64(w.n)*100, b.alpha)
	}
	b.seen++
	clear(b.clients)
	return out
}
