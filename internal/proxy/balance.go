package proxy

import (
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"sync/atomic"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

type balancer interface {
	// pick returns an acceptable target, or nil if none is.
	pick(targets []*Target, key string, ok acceptable) *Target
}

// acceptable says which targets may take an attempt: available at now and
// not already tried.
type acceptable struct {
	now   int64
	tried []*Target
}

func (a acceptable) ok(t *Target) bool {
	if !t.Available(a.now) {
		return false
	}
	for _, x := range a.tried {
		if x == t {
			return false
		}
	}
	return true
}

// roundRobin is weighted round robin over a precomputed smooth sequence
// (nginx's smooth weighted algorithm, run once at compile time), advanced
// by an atomic counter: no lock on the hot path.
type roundRobin struct {
	seq  []int
	next atomic.Uint64
}

func newRoundRobin(targets []*Target) *roundRobin {
	total := 0
	for _, t := range targets {
		total += t.weight
	}
	cur := make([]int, len(targets))
	seq := make([]int, 0, total)
	for range total {
		best := -1
		for i, t := range targets {
			cur[i] += t.weight
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, best)
	}
	return &roundRobin{seq: seq}
}

func (rr *roundRobin) pick(targets []*Target, _ string, ok acceptable) *Target {
	n := uint64(len(rr.seq))
	start := rr.next.Add(1) - 1
	for i := uint64(0); i < n; i++ {
		t := targets[rr.seq[(start+i)%n]]
		if ok.ok(t) {
			return t
		}
	}
	return nil
}

// leastRequests is "power of two choices": of two random acceptable
// targets, the one with fewer requests in flight (relative to weight).
type leastRequests struct{}

func (leastRequests) pick(targets []*Target, _ string, ok acceptable) *Target {
	n := len(targets)
	first := func(from int, skip *Target) *Target {
		for i := 0; i < n; i++ {
			if t := targets[(from+i)%n]; t != skip && ok.ok(t) {
				return t
			}
		}
		return nil
	}
	a := first(rand.IntN(n), nil)
	if a == nil {
		return nil
	}
	b := first(rand.IntN(n), a)
	if b == nil {
		return a
	}
	if a.inflight.Load()*int64(b.weight) <= b.inflight.Load()*int64(a.weight) {
		return a
	}
	return b
}

// hashRing is consistent hashing with 100 virtual nodes per unit of weight,
// keyed with FNV-1a so that every gateway instance maps a key to the same
// target.
type hashRing struct {
	points []uint64
	owner  []int
}

func newHashRing(targets []*Target) *hashRing {
	type vn struct {
		h uint64
		i int
	}
	var nodes []vn
	for i, t := range targets {
		for v := 0; v < 100*t.weight; v++ {
			nodes = append(nodes, vn{hash64(t.Host + "#" + strconv.Itoa(v)), i})
		}
	}
	sort.Slice(nodes, func(a, b int) bool { return nodes[a].h < nodes[b].h })
	r := &hashRing{}
	for _, n := range nodes {
		r.points = append(r.points, n.h)
		r.owner = append(r.owner, n.i)
	}
	return r
}

func (r *hashRing) pick(targets []*Target, key string, ok acceptable) *Target {
	h := hash64(key)
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i] >= h })
	for j := 0; j < len(r.points); j++ {
		t := targets[r.owner[(i+j)%len(r.points)]]
		if ok.ok(t) {
			return t
		}
	}
	return nil
}

// hash64 is FNV-1a followed by the murmur3 64-bit finaliser: FNV alone
// maps similar keys (sequential IPs, ids) to nearby ring positions, which
// would pile them onto one target. Deterministic, so every gateway
// instance agrees.
func hash64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func hashKeyFunc(on string) func(*http.Request, *pipeline.Scope) string {
	switch {
	case on == "path":
		return func(_ *http.Request, s *pipeline.Scope) string { return s.Path }
	case len(on) > 7 && on[:7] == "header:":
		name := http.CanonicalHeaderKey(on[7:])
		return func(r *http.Request, _ *pipeline.Scope) string { return r.Header.Get(name) }
	default:
		return func(_ *http.Request, s *pipeline.Scope) string { return s.ClientIPText }
	}
}
