// Package proxy forwards requests to upstreams: target pools with
// balancing, active health checks, passive ejection and a circuit breaker;
// transports with timeouts and TLS/mTLS; retries of idempotent requests;
// and the header hygiene that keeps client-forged forwarding and identity
// headers away from services.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Errors that end an upstream exchange before a target was contacted.
var (
	ErrNoHealthyTarget = errors.New("no healthy target")
	ErrCircuitOpen     = errors.New("circuit breaker open")
	ErrOverloaded      = errors.New("upstream max_in_flight reached")
)

// Target is one instance of an upstream and its live health state.
type Target struct {
	// URL is the target's base URL.
	URL *url.URL
	// Host is host:port as dialled.
	Host   string
	scheme string
	weight int

	inflight     atomic.Int64
	consecFail   atomic.Int32
	ejectedUntil atomic.Int64 // unix nanoseconds
	unhealthy    atomic.Bool  // set by active health checks
	drained      atomic.Bool  // set by an operator: no new requests
}

// Available reports whether the target may receive traffic at now.
func (t *Target) Available(now int64) bool {
	return !t.unhealthy.Load() && !t.drained.Load() && t.ejectedUntil.Load() <= now
}

// Drained reports whether an operator drained the target.
func (t *Target) Drained() bool { return t.drained.Load() }

// Pool is a compiled upstream. Its state (health, ejections, breaker) is a
// security and availability property that survives config reloads: the
// gateway reuses a Pool as long as its upstream's config is unchanged.
type Pool struct {
	// Name is the upstream name.
	Name    string
	targets []*Target
	bal     balancer
	hashKey func(r *http.Request, s *pipeline.Scope) string
	breaker *breaker
	passive config.Passive
	now     func() time.Time
	log     *slog.Logger

	tlsConf     *tls.Config
	baseTimeout config.UpstreamTimeouts
	cfg         config.Upstream
	credHeader  string
	credValue   config.Secret

	buffers    *bufferPool
	inflight   atomic.Int64
	maxFlight  int64
	mu         sync.Mutex
	transports map[[2]time.Duration]transport

	stopHealth context.CancelFunc
	healthDone chan struct{}
}

// NewPool compiles an upstream. Health checks start with Start.
func NewPool(u config.Upstream, deps pipeline.Deps) (*Pool, error) {
	p := &Pool{
		Name:        u.Name,
		passive:     u.Passive,
		now:         deps.Now,
		log:         deps.Log.With("upstream", u.Name),
		baseTimeout: u.Timeouts,
		cfg:         u,
		transports:  map[[2]time.Duration]transport{},
		buffers:     newBufferPool(),
		maxFlight:   int64(u.MaxInFlight),
	}
	if p.now == nil {
		p.now = time.Now
	}
	for _, t := range u.Targets {
		pu, err := url.Parse(t.URL)
		if err != nil {
			return nil, fmt.Errorf("target %q: %w", t.URL, err)
		}
		host := pu.Host
		if pu.Port() == "" {
			if pu.Scheme == "https" {
				host += ":443"
			} else {
				host += ":80"
			}
		}
		p.targets = append(p.targets, &Target{URL: pu, Host: host, scheme: pu.Scheme, weight: t.Weight})
	}
	var err error
	if p.tlsConf, err = upstreamTLS(u); err != nil {
		return nil, err
	}
	switch u.Balance {
	case "least_requests":
		p.bal = leastRequests{}
	case "consistent_hash":
		p.bal = newHashRing(p.targets)
		p.hashKey = hashKeyFunc(u.HashOn)
	default:
		p.bal = newRoundRobin(p.targets)
	}
	if b := u.CircuitBreaker; b != nil {
		p.breaker = newBreaker(b.ConsecutiveFailures, b.OpenFor.D(), p.now)
	}
	if c := u.Credential; c != nil {
		p.credHeader = http.CanonicalHeaderKey(c.Header)
		p.credValue = c.Value
	}
	return p, nil
}

// Targets returns the pool's targets (for status pages and tests).
func (p *Pool) Targets() []*Target { return p.targets }

// transport is what routes send requests through.
type transport interface {
	http.RoundTripper
	CloseIdleConnections()
}

// transport returns the shared transport for a pair of timeouts, so that
// routes with the same timeouts share one connection pool.
func (p *Pool) transport(connect, response time.Duration) transport {
	key := [2]time.Duration{connect, response}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.transports[key]; ok {
		return t
	}
	var t transport = newTransport(p.cfg, p.tlsConf, connect, response)
	if p.cfg.MaxConnsPerTarget == 0 {
		// The fast path keeps its own pool; it cannot honour a total
		// connection cap, so a capped upstream uses http.Transport only.
		t = newFastTransport(t.(*http.Transport), p.tlsConf, connect, response, p.cfg.Timeouts.Idle.D(), p.cfg.MaxIdleConnsPerTarget)
	}
	p.transports[key] = t
	return t
}

// pick chooses a target for one attempt, skipping unavailable ones and
// those already tried.
func (p *Pool) pick(r *http.Request, s *pipeline.Scope, tried []*Target) (*Target, error) {
	now := p.now().UnixNano()
	key := ""
	if p.hashKey != nil {
		key = p.hashKey(r, s)
	}
	t := p.bal.pick(p.targets, key, acceptable{now: now, tried: tried})
	if t == nil {
		return nil, ErrNoHealthyTarget
	}
	return t, nil
}

// observe records the outcome of one attempt for passive ejection and the
// circuit breaker.
func (p *Pool) observe(t *Target, failed bool) {
	if p.breaker != nil {
		p.breaker.record(failed)
	}
	if !*p.passive.Enabled {
		return
	}
	if !failed {
		if t.consecFail.Load() != 0 {
			t.consecFail.Store(0)
		}
		return
	}
	if n := t.consecFail.Add(1); int(n) >= p.passive.ConsecutiveFailures {
		t.consecFail.Store(0)
		t.ejectedUntil.Store(p.now().Add(p.passive.EjectFor.D()).UnixNano())
		p.log.Warn("target ejected", "target", t.Host, "for", p.passive.EjectFor.D().String())
	}
}

// Start begins active health checks, if configured. Close stops them.
func (p *Pool) Start() {
	if p.cfg.HealthCheck == nil || p.stopHealth != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stopHealth = cancel
	p.healthDone = make(chan struct{})
	go func() {
		defer close(p.healthDone)
		p.runHealthChecks(ctx)
	}()
}

// Close stops health checks and closes idle upstream connections. Requests
// still in flight on the pool finish normally.
func (p *Pool) Close() {
	if p.stopHealth != nil {
		p.stopHealth()
		<-p.healthDone
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.transports {
		if ft, ok := t.(*fastTransport); ok {
			ft.retire()
			continue
		}
		t.CloseIdleConnections()
	}
}
