package abuse

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Baseline learns what normal traffic looks like and flags clients that
// stand far outside it. Every Interval it closes each active client's
// counts (requests, the share of 401/403/404/429 answers, and the bytes
// of answers it read), folds them
// into population statistics kept as exponentially weighted mean and
// variance, and scores the client against them. A client whose request
// count or error share lies more than Z standard deviations above the
// population, with at least MinRequests requests in the interval, is an
// outlier; so is one that read far more bytes than clients do (a scraper
// taking the catalogue at a normal request rate, large objects each). The population adapts (Alpha per interval), so a slow general
// rise in traffic is learned, while a single client's burst is not.
//
// Clients are counted in shards under their own locks, each bounded; the
// request that first sees a new interval takes every shard's counts (a
// lock each, briefly) and scores them, so the scoring costs O(1) per
// request counted and never holds a lock the others wait on.
type Baseline struct {
	interval    time.Duration
	alpha, z    float64
	minRequests int
	warmup      int // intervals before scoring starts
	perShard    int

	epoch  atomic.Int64 // the interval being counted (unix ns / interval), 0 before the first request
	shards [tableShards]baselineShard
	seed   maphash.Seed

	mu     sync.Mutex // the population statistics, held while scoring
	rate   ewma
	errs   ewma
	volume ewma // KiB of answers per client per interval
	seen   int
}

type baselineShard struct {
	mu      sync.Mutex
	clients map[netip.Prefix]*window
}

type window struct {
	n, bad int
	bytes  int64
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
// deviations. It scores at most maxClients clients per interval (the
// first to arrive; DefaultMaxClients when 0).
func NewBaseline(interval time.Duration, z float64, minRequests, maxClients int) *Baseline {
	if maxClients <= 0 {
		maxClients = DefaultMaxClients
	}
	b := &Baseline{interval: interval, alpha: 0.1, z: z, minRequests: minRequests, warmup: 3,
		perShard: max(maxClients/tableShards, 1), seed: maphash.MakeSeed()}
	for i := range b.shards {
		b.shards[i].clients = map[netip.Prefix]*window{}
	}
	return b
}

// Add counts one finished request of client k (bytes: its answer's
// size) and, when an interval closes, returns the outliers of the closed
// interval with the signal that flagged them.
func (b *Baseline) Add(k netip.Prefix, status int, bytes int64, now time.Time) map[netip.Prefix]string {
	var out map[netip.Prefix]string
	e := now.UnixNano()/int64(b.interval) + 1
	if cur := b.epoch.Load(); e > cur && b.epoch.CompareAndSwap(cur, e) && cur != 0 {
		out = b.close()
	}
	sh := &b.shards[maphash.Comparable(b.seed, k)%tableShards]
	sh.mu.Lock()
	w := sh.clients[k]
	if w == nil {
		if len(sh.clients) >= b.perShard {
			sh.mu.Unlock()
			return out // bounded; this interval's excess clients are not scored
		}
		w = &window{}
		sh.clients[k] = w
	}
	w.n++
	w.bytes += bytes
	if status == 401 || status == 403 || status == 404 || status == 429 {
		w.bad++
	}
	sh.mu.Unlock()
	return out
}

// close takes the counts of the interval that ended from every shard and
// scores them.
func (b *Baseline) close() map[netip.Prefix]string {
	closed := make([]map[netip.Prefix]*window, 0, tableShards)
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		if len(sh.clients) > 0 {
			closed = append(closed, sh.clients)
			sh.clients = make(map[netip.Prefix]*window, len(sh.clients))
		}
		sh.mu.Unlock()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.score(closed)
}

func (b *Baseline) score(closed []map[netip.Prefix]*window) map[netip.Prefix]string {
	var out map[netip.Prefix]string
	scoring := b.seen >= b.warmup
	// Score against the population as it was, then learn from this
	// interval.
	for _, clients := range closed {
		for k, w := range clients {
			if !scoring || w.n < b.minRequests {
				continue
			}
			share := float64(w.bad) / float64(w.n)
			signal := ""
			switch {
			case b.rate.z(float64(w.n)) > b.z:
				signal = "request_rate"
			case b.errs.z(share*100) > b.z:
				signal = "error_ratio"
			case b.volume.z(float64(w.bytes)/1024) > b.z:
				signal = "bytes_read" // a scraper reading far more than clients do
			}
			if signal != "" {
				if out == nil {
					out = map[netip.Prefix]string{}
				}
				out[k] = signal
			}
		}
	}
	for _, clients := range closed {
		for _, w := range clients {
			b.rate.add(float64(w.n), b.alpha)
			b.errs.add(float64(w.bad)/float64(w.n)*100, b.alpha)
			b.volume.add(float64(w.bytes)/1024, b.alpha)
		}
	}
	b.seen++
	return out
}
