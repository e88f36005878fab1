package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/abuse"
	"github.com/rampart-gw/rampart/internal/authn"
	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/observe"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/ratelimit"
	"github.com/rampart-gw/rampart/internal/server"
)

// Gateway serves the current plan on its listeners and reloads it.
type Gateway struct {
	deps     pipeline.Deps
	plan     atomic.Pointer[Plan]
	reloadMu sync.Mutex

	listeners []*server.Listener
	access    atomic.Pointer[accessLog] // nil while the access log is off; swapped on reload
	events    *ownEvents                // the gateway's own event stream; nil when the caller supplies one
	metrics   *observe.Metrics
	admin     *http.Server  // nil without an admin section
	adminCfg  *config.Admin // the admin section bound at start (restart to change it)
	adminAddr net.Addr
	version   atomic.Int64            // plan sequence number, for metrics
	live      *observe.Live           // the dashboard's window; nil without an admin section
	loadedAt  atomic.Int64            // unix time of the last successful load or reload
	tracing   atomic.Pointer[tracing] // nil without a tracing section; swapped on reload

	jtis       *authn.JTIStore  // revocations and replay memory survive reloads
	limits     *ratelimit.Local // rate-limit buckets survive reloads
	redis      *redisEntry      // shared store, kept while its config is unchanged
	quotas     *ratelimit.LocalQuotas
	guard      *abuse.Guard // abuse counters and bans survive reloads; nil when off
	idPrefix   string
	reqCounter atomic.Uint64

	serveErr chan error
	// base is the context of every request; Shutdown cancels it with
	// pipeline.ErrShutdown when the drain deadline passes.
	base    context.Context
	cutBase context.CancelCauseFunc
}

// drainGrace is how long requests cut at the drain deadline get to write
// their 503 and end before their connections are closed.
const drainGrace = 2 * time.Second

// flushTimeout bounds writing out the access log, security events and
// spans after the listeners stopped, whatever time the drain took.
const flushTimeout = 5 * time.Second

// ErrListenersChanged refuses a reload that adds, removes or re-addresses
// listeners: sockets are bound once, at start.
var ErrListenersChanged = errors.New("listener set changed")

// New compiles cfg into the first plan. Nothing is bound until Start.
func New(cfg *config.Config, deps pipeline.Deps) (*Gateway, error) {
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	g := &Gateway{jtis: authn.NewJTIStore(), limits: ratelimit.NewLocal(cfg.RateLimiting.MaxKeys), idPrefix: newIDPrefix(func(b []byte) { _, _ = rand.Read(b) })}
	if err := g.openObservability(cfg, &deps); err != nil {
		return nil, err
	}
	g.loadedAt.Store(deps.Now().Unix())
	g.adminCfg = cfg.Admin
	g.deps = deps
	g.version.Store(1)
	g.jtis.SetRevoked(cfg.Authn.RevokedTokenIDs, deps.Now())
	g.redis = openRedis(cfg.RateLimiting.Redis, nil)
	g.quotas = ratelimit.NewLocalQuotas()
	if cfg.Abuse != nil {
		o := guardOptions(cfg, deps)
		if g.redis != nil {
			o.Redis, o.Prefix = g.redis.client, abuse.KeyPrefix(cfg.RateLimiting.Redis.KeyPrefix)
		}
		g.guard = abuse.New(o)
	}
	plan, err := compile(cfg, deps, nil, g.jtis, g.limits, g.redis.store(), g.quotaStore(g.redis), g.Guard)
	if err != nil {
		g.abandon()
		return nil, err
	}
	al, err := openAccessLog(cfg.AccessLog)
	if err != nil {
		plan.closeNew(nil)
		g.abandon()
		return nil, cfg.Problem("access_log.output", "%v", err)
	}
	g.access.Store(al)
	g.plan.Store(plan)
	return g, nil
}

// abandon releases what New opened before it failed: the event stream,
// the tracer, the Redis client and the abuse guard's subscription.
func (g *Gateway) abandon() {
	if g.guard != nil {
		g.guard.Close()
	}
	g.redis.close()
	if tr := g.tracing.Load(); tr != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = tr.t.Shutdown(ctx)
		cancel()
	}
	g.closeEvents()
}

// openObservability opens the security event stream (unless deps
// already has one), the metrics and the dashboard's window (with an admin
// section: they are collected only where they can be read) and the
// tracer, and points deps at them. On error nothing stays open.
func (g *Gateway) openObservability(cfg *config.Config, deps *pipeline.Deps) error {
	if deps.Events == nil {
		s, err := openEvents(cfg.SecurityEvents, deps.Log)
		if err != nil {
			return cfg.Problem("security_events.output", "%v", err)
		}
		g.events = &ownEvents{}
		g.events.cur.Store(s)
		deps.Events = g.events
	}
	if cfg.Admin != nil {
		g.metrics = observe.NewMetrics(observe.Gauges{
			ActiveBans:     func() float64 { return float64(g.activeBans()) },
			UpstreamHealth: g.reportHealth,
			EventsDropped:  func() float64 { return float64(g.events.Dropped()) },
		})
		deps.FetchFailed = g.metrics.JWKSFailure
		g.live = observe.NewLive()
		deps.Events = teeEvents{deps.Events, g.live}
	}
	tr, err := openTracing(cfg.Tracing)
	if err != nil {
		g.closeEvents()
		return cfg.Problem("tracing", "%v", err)
	}
	g.tracing.Store(tr)
	return nil
}

// Plan returns the current plan.
func (g *Gateway) Plan() *Plan { return g.plan.Load() }

// Handler returns the HTTP handler of a listener (tests serve it directly).
func (g *Gateway) Handler(listener string) http.Handler {
	return &listenerHandler{g: g, name: listener}
}

// Start binds every listener and starts serving; it returns once all are
// bound. Pools start their health checks.
func (g *Gateway) Start() error {
	plan := g.plan.Load()
	plan.start()
	g.serveErr = make(chan error, len(plan.Config.Listeners))
	g.base, g.cutBase = context.WithCancelCause(context.Background())
	for _, lc := range plan.Config.Listeners {
		l, err := server.Listen(g.base, lc, g.Handler(lc.Name), g.deps.Log)
		if err != nil {
			g.closeListeners()
			return err
		}
		g.listeners = append(g.listeners, l)
	}
	if a := plan.Config.Admin; a != nil {
		if err := g.startAdmin(a); err != nil {
			g.closeListeners()
			return err
		}
	}
	for _, l := range g.listeners {
		g.deps.Log.Info("listening", "listener", l.Name, "address", l.Addr().String())
		go func() { g.serveErr <- l.Serve() }()
	}
	return nil
}

// Errors delivers fatal serve errors.
func (g *Gateway) Errors() <-chan error { return g.serveErr }

// Addr returns the bound address of a listener, or nil.
func (g *Gateway) Addr(name string) net.Addr {
	for _, l := range g.listeners {
		if l.Name == name {
			return l.Addr()
		}
	}
	return nil
}

// Reload compiles cfg and, if it compiles, swaps it in atomically.
// Requests in flight finish on the old plan. On error the old plan keeps
// serving and the error lists every problem.
func (g *Gateway) Reload(cfg *config.Config) error {
	return g.rejected("api", g.reload(cfg))
}

// ReloadFile loads the config file at path and applies it (see Reload);
// trigger names the cause in logs and events ("SIGHUP", "file change").
// Every rejection, whichever stage rejected it (unreadable file, YAML,
// unknown key, bad reference, listener change, compilation), is counted in
// rampart_config_reloads_total{result="failure"} and reported as one
// config.reload_rejected security event.
func (g *Gateway) ReloadFile(path, trigger string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err == nil {
		err = g.reload(cfg)
	}
	if err != nil {
		return nil, g.rejected(trigger, err)
	}
	return cfg, nil
}

// rejected counts and reports a rejected reload (err nil: none).
func (g *Gateway) rejected(trigger string, err error) error {
	if err == nil {
		return nil
	}
	if g.metrics != nil {
		g.metrics.Reload(false, 0)
	}
	problems := config.FieldErrors(err)
	first := err.Error()
	if len(problems) > 0 {
		first = problems[0].Error()
	}
	g.deps.Events.Emit(pipeline.Event{Name: "config.reload_rejected", Code: "config.reload_rejected",
		Reason: first, Attrs: map[string]string{"trigger": trigger, "problems": strconv.Itoa(max(len(problems), 1))}})
	return err
}

func (g *Gateway) reload(cfg *config.Config) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	old := g.plan.Load()
	if err := sameListeners(old.Config, cfg); err != nil {
		return err
	}
	outs, err := g.openOutputs(old.Config, cfg)
	if err != nil {
		return err
	}
	rd := openRedis(cfg.RateLimiting.Redis, g.redis)
	plan, err := compile(cfg, g.deps, old, g.jtis, g.limits, rd.store(), g.quotaStore(rd), g.Guard)
	if err != nil {
		if rd != g.redis {
			rd.close()
		}
		outs.discard()
		return err
	}
	if rd != g.redis {
		old := g.redis
		defer old.close() // after the swap; in-flight checks may still use it
	}
	g.redis = rd
	if g.guard != nil && cfg.Abuse != nil {
		g.guard.Configure(guardOptions(cfg, g.deps))
	}
	g.jtis.SetRevoked(cfg.Authn.RevokedTokenIDs, g.deps.Now())
	plan.start()
	g.plan.Store(plan)
	g.swapOutputs(outs)
	if !reflect.DeepEqual(g.adminCfg, cfg.Admin) {
		// Compared with the section running since start, not the
		// previous file: an edit that restores it is no change.
		g.deps.Log.Warn("reload: admin differs from the running admin section; it is bound at start, restart rampart to apply it")
	}
	for _, l := range g.listeners {
		if lp := plan.listeners[l.Name]; lp != nil && lp.cert != nil && l.Certs != nil {
			l.Certs.Set(lp.cert)
		}
	}
	// Pools the new plan no longer uses stop their health checks and
	// close idle connections; requests still using them finish.
	old.closeNew(plan)
	version := g.version.Add(1)
	g.loadedAt.Store(g.deps.Now().Unix())
	if g.metrics != nil {
		g.metrics.Reload(true, int(version))
	}
	return nil
}

// sameListeners refuses reloads that change sockets or server limits,
// which are fixed when a listener is bound.
func sameListeners(a, b *config.Config) error {
	if len(a.Listeners) != len(b.Listeners) {
		return fmt.Errorf("%w: restart rampart to add or remove listeners", ErrListenersChanged)
	}
	for i := range a.Listeners {
		x, y := a.Listeners[i], b.Listeners[i]
		if x.Name != y.Name || x.Address != y.Address || (x.TLS == nil) != (y.TLS == nil) || !reflect.DeepEqual(x.Limits, y.Limits) {
			return fmt.Errorf("%w: listener %q: address, TLS on/off and limits need a restart", ErrListenersChanged, y.Name)
		}
	}
	return nil
}

// ReopenLogs reopens the access log and event stream files by their paths
// (log rotation: SIGUSR1 after the files were renamed). Outputs to stdout
// or stderr are left alone.
func (g *Gateway) ReopenLogs() error {
	var errs []error
	if al := g.access.Load(); al != nil {
		if err := al.out.Reopen(); err != nil {
			errs = append(errs, fmt.Errorf("access_log: %w", err))
		}
	}
	if s := g.events.current(); s != nil && s.out != nil {
		if err := s.out.Reopen(); err != nil {
			errs = append(errs, fmt.Errorf("security_events: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Shutdown stops accepting, drains in-flight requests until ctx ends,
// stops health checks and flushes the access log.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var errs []error
	if g.admin != nil {
		if err := g.admin.Shutdown(ctx); err != nil {
			g.admin.Close()
		}
	}
	if g.drainListeners(ctx) != nil && g.cutBase != nil {
		// The drain ran its course: requests still in flight end now, each
		// answered 503 gateway.shutdown (logged as such) where no response
		// has started, rather than a connection cut without a word.
		g.deps.Log.Warn("drain timeout: ending the requests still in flight")
		g.cutBase(pipeline.ErrShutdown)
		grace, cancel := context.WithTimeout(context.Background(), drainGrace)
		if g.drainListeners(grace) != nil {
			for _, l := range g.listeners {
				l.Close() // a handler that ignores its context
			}
		}
		cancel()
	}
	g.plan.Load().closeNew(nil)
	if g.guard != nil {
		g.guard.Close()
	}
	g.redis.close()
	// The logs, events and spans of the drained requests get their own
	// deadline: the drain's may be spent.
	flush, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if al := g.access.Load(); al != nil {
		_ = al.out.Close()
	}
	if tr := g.tracing.Load(); tr != nil {
		if err := tr.t.Shutdown(flush); err != nil {
			errs = append(errs, fmt.Errorf("tracing: %w", err))
		}
	}
	if err := g.events.current().close(flush); err != nil {
		errs = append(errs, fmt.Errorf("security events: %w", err))
	}
	return errors.Join(errs...)
}

// drainListeners drains every listener at once; it returns an error if
// any still had requests in flight when ctx ended.
func (g *Gateway) drainListeners(ctx context.Context) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, l := range g.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Drain(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("listener %s: %w", l.Name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (g *Gateway) closeListeners() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, l := range g.listeners {
		_ = l.Shutdown(ctx)
	}
	g.listeners = nil
}

// quotaStore is Redis when configured (shared, persistent), else local.
func (g *Gateway) quotaStore(rd *redisEntry) ratelimit.QuotaStore {
	if rd != nil {
		return rd.quotas
	}
	return g.quotas
}

// redisEntry is the shared limit store and the config it was made from.
type redisEntry struct {
	fingerprint string
	client      redis.UniversalClient
	limiter     *ratelimit.Redis
	quotas      *ratelimit.RedisQuotas
}

func (e *redisEntry) store() ratelimit.Store {
	if e == nil {
		return nil
	}
	return e.limiter
}

func (e *redisEntry) close() {
	if e != nil {
		e.limiter.Close()
		_ = e.client.Close()
	}
}

// openRedis returns prev when the Redis config is unchanged, a new client
// otherwise (nil when Redis is not configured). Connecting is lazy: a Redis
// that is down at start is handled by each limit's failure policy.
func openRedis(c *config.Redis, prev *redisEntry) *redisEntry {
	if c == nil {
		return nil
	}
	fp := fmt.Sprintf("%v|%s|%s|%s|%d|%s|%s", c.Addresses, c.MasterName, c.Username, c.Password.Reveal(), c.DB, c.Timeout, c.KeyPrefix)
	if prev != nil && prev.fingerprint == fp {
		return prev
	}
	client := ratelimit.Client(c)
	return &redisEntry{fingerprint: fp, client: client, limiter: ratelimit.NewRedis(client, c.KeyPrefix, c.Timeout.D()),
		quotas: ratelimit.NewRedisQuotas(client, c.KeyPrefix+"quota:", c.Timeout.D())}
}

// guardOptions compiles the abuse section's detectors.
func guardOptions(cfg *config.Config, deps pipeline.Deps) abuse.Options {
	a := cfg.Abuse
	o := abuse.Options{BanFor: a.BanFor.D(), Log: deps.Log, Events: deps.Events, Tighten: a.Action == "tighten",
		IPv6Prefix: cfg.ClientIP.IPv6Prefix, MaxClients: a.MaxClients}
	if cs := a.CredentialStuffing; !cs.Disabled {
		o.AccountIPs, o.AccountWindow = cs.DistinctIPs, cs.Window.D()
	}
	for _, s := range a.Allow {
		if p, err := config.ParsePrefix(s); err == nil {
			o.Allow = append(o.Allow, p)
		}
	}
	add := func(name string, d config.Detector, match func(int, string, bool) bool) {
		if d.Disabled {
			return
		}
		// Sensitive routes (login, payment) get their own, tighter count.
		o.Detectors = append(o.Detectors, abuse.Detector{Name: name + "/sensitive", Threshold: d.SensitiveThreshold, Window: d.Window.D(),
			Match: func(st int, code string, sensitive bool) bool { return sensitive && match(st, code, sensitive) }})
		if !d.SensitiveOnly {
			o.Detectors = append(o.Detectors, abuse.Detector{Name: name, Threshold: d.Threshold, Window: d.Window.D(),
				Match: func(st int, code string, sensitive bool) bool { return !sensitive && match(st, code, sensitive) }})
		}
	}
	if an := a.Anomaly; an != nil {
		o.Baseline = abuse.NewBaseline(an.Interval.D(), an.Z, an.MinRequests, a.MaxClients)
		o.BanOutliers = an.Action == "ban"
	}
	add("brute_force", a.BruteForce, abuse.Statuses(false, 401))
	add("scanning", a.Scanning, abuse.Codes(CodeNotFound, CodeUnknownHost))
	add("enumeration", a.Enumeration, func(status int, code string, _ bool) bool {
		return (status == 403 || status == 404) && code != CodeNotFound && code != CodeUnknownHost
	})
	return o
}

// Guard returns the abuse guard (nil when detection is off).
func (g *Gateway) Guard() *abuse.Guard { return g.guard }

// openEvents starts the security event stream of the config.
func openEvents(c config.SecurityEvents, log *slog.Logger) (*eventStream, error) {
	if !*c.Enabled {
		return nil, nil
	}
	o := observe.EventOptions{QueueSize: c.QueueSize, Log: log}
	var out *observe.BufferedWriter
	if c.Output != "off" {
		var err error
		if out, err = observe.OpenOutput(c.Output); err != nil {
			return nil, err
		}
		o.Output = out
	}
	if w := c.Webhook; w != nil {
		h := http.Header{}
		for _, c := range w.Headers {
			h.Set(c.Header, c.Value.Reveal())
		}
		o.Webhook = &observe.WebhookOptions{URL: w.URL, Headers: h, BatchSize: w.BatchSize, FlushInterval: w.FlushInterval.D(),
			MaxRetries: w.MaxRetries, Timeout: w.Timeout.D(), QueueSize: w.QueueSize}
	}
	return &eventStream{em: observe.NewEmitter(o), out: out}, nil
}

// eventStream is one opened security event stream: its emitter and file
// (or stdout) output.
type eventStream struct {
	em  *observe.Emitter
	out *observe.BufferedWriter // nil with output: off
}

// close drains the queue (until ctx ends) and closes the output; nil: no-op.
func (s *eventStream) close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	err := s.em.Close(ctx)
	if s.out != nil {
		_ = s.out.Close()
	}
	return err
}

// ownEvents sends to the gateway's current event stream, which a reload
// replaces when security_events changed (a new webhook, a rotated token):
// the compiled stages keep this one value.
type ownEvents struct {
	cur     atomic.Pointer[eventStream] // nil while the stream is off
	retired atomic.Uint64               // events dropped by replaced streams
}

func (o *ownEvents) Emit(ev pipeline.Event) {
	if s := o.cur.Load(); s != nil {
		s.em.Emit(ev)
	}
}

func (o *ownEvents) current() *eventStream {
	if o == nil {
		return nil
	}
	return o.cur.Load()
}

// Dropped counts the events dropped by full queues, over every stream.
func (o *ownEvents) Dropped() uint64 {
	if o == nil {
		return 0
	}
	n := o.retired.Load()
	if s := o.cur.Load(); s != nil {
		n += s.em.Dropped()
	}
	return n
}

// swap puts s in service and retires the previous stream in the
// background (its queue is delivered for up to 5 s).
func (o *ownEvents) swap(s *eventStream) {
	old := o.cur.Swap(s)
	if old == nil {
		return
	}
	// The counter never goes back: the old stream's drops move to
	// retired now, and what it drops while closing follows.
	before := old.em.Dropped()
	o.retired.Add(before)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = old.close(ctx)
		o.retired.Add(old.em.Dropped() - before)
	}()
}

// closeEvents stops the event stream and tracer opened by New when New
// fails after opening them.
func (g *Gateway) closeEvents() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	g.tracing.Load().shutdown()
	_ = g.events.current().close(ctx)
}

// teeEvents sends every event to two streams.
type teeEvents struct{ a, b pipeline.Events }

func (t teeEvents) Emit(ev pipeline.Event) {
	t.a.Emit(ev)
	t.b.Emit(ev)
}

// tracing is the tracer in service and whose trace context it trusts.
type tracing struct {
	t     *observe.Tracer
	trust string // tracing.trust_incoming
}

// openTracing starts a tracer for c; nil (and no error) without one.
func openTracing(c *config.Tracing) (*tracing, error) {
	if c == nil {
		return nil, nil
	}
	h := map[string]string{}
	for _, cr := range c.Headers {
		h[cr.Header] = cr.Value.Reveal()
	}
	t, err := observe.NewTracer(context.Background(), observe.TracingOptions{Endpoint: c.Endpoint, Protocol: c.Protocol,
		Insecure: c.AllowPlaintext, Headers: h, SampleRatio: *c.SampleRatio, ServiceName: c.ServiceName})
	if err != nil {
		return nil, err
	}
	return &tracing{t: t, trust: c.TrustIncoming}, nil
}

// trusts reports whether a request's own trace context is continued.
func (t *tracing) trusts(trustedPeer bool) bool {
	return t.trust == "all" || t.trust == "trusted_proxies" && trustedPeer
}

// shutdown exports the queued spans and stops the exporter (nil: no-op).
func (t *tracing) shutdown() {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.t.Shutdown(ctx)
}

// accessLog is the access log in service and its output.
type accessLog struct {
	log *observe.AccessLog
	out *observe.BufferedWriter
}

// openAccessLog opens c's output; nil (and no error) when the log is off.
func openAccessLog(c config.AccessLog) (*accessLog, error) {
	if !*c.Enabled {
		return nil, nil
	}
	out, err := observe.OpenOutput(c.Output)
	if err != nil {
		return nil, err
	}
	return &accessLog{log: observe.NewAccessLog(out), out: out}, nil
}

// outputs are the observability outputs a reload opened for the sections
// that changed; the gateway's own stay in service until swapOutputs.
type outputs struct {
	tracingChanged, eventsChanged, accessChanged bool
	tracing                                      *tracing     // nil: section removed
	events                                       *eventStream // nil: stream off
	access                                       *accessLog   // nil: log off
}

// openOutputs opens new outputs for the tracing, security_events and
// access_log sections of next that differ from prev (a new sample ratio
// or collector, a rotated token, another file). On error nothing stays
// open.
func (g *Gateway) openOutputs(prev, next *config.Config) (*outputs, error) {
	o := &outputs{
		tracingChanged: !reflect.DeepEqual(prev.Tracing, next.Tracing),
		eventsChanged:  g.events != nil && !reflect.DeepEqual(prev.SecurityEvents, next.SecurityEvents), // when the gateway owns the stream
		accessChanged:  !reflect.DeepEqual(prev.AccessLog, next.AccessLog),
	}
	var err error
	if o.tracingChanged {
		if o.tracing, err = openTracing(next.Tracing); err != nil {
			return nil, next.Problem("tracing", "%v", err)
		}
	}
	if o.eventsChanged {
		if o.events, err = openEvents(next.SecurityEvents, g.deps.Log); err != nil {
			o.discard()
			return nil, next.Problem("security_events.output", "%v", err)
		}
	}
	if o.accessChanged {
		if o.access, err = openAccessLog(next.AccessLog); err != nil {
			o.discard()
			return nil, next.Problem("access_log.output", "%v", err)
		}
	}
	return o, nil
}

// discard closes what openOutputs opened (a reload that failed later).
func (o *outputs) discard() {
	o.tracing.shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = o.events.close(ctx)
	if o.access != nil {
		_ = o.access.out.Close()
	}
}

// swapOutputs puts the changed outputs in service and retires the old
// ones: they write out what they hold and close. Spans of requests still
// in flight on an old tracer end after it and are dropped.
func (g *Gateway) swapOutputs(o *outputs) {
	if o.eventsChanged {
		g.events.swap(o.events)
	}
	if o.accessChanged {
		if prev := g.access.Swap(o.access); prev != nil {
			// Requests that loaded the old log a moment ago still write
			// to it: close it once they are done.
			time.AfterFunc(time.Second, func() { _ = prev.out.Close() })
		}
	}
	if o.tracingChanged {
		go g.tracing.Swap(o.tracing).shutdown()
	}
}
