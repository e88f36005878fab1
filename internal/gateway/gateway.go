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
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/observe"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/plan"
	"github.com/rampart-gw/rampart/internal/runstate"
	"github.com/rampart-gw/rampart/internal/server"
)

// Gateway serves the current plan on its listeners and reloads it.
type Gateway struct {
	deps     pipeline.Deps
	plan     atomic.Pointer[plan.Plan]
	reloadMu sync.Mutex

	listeners []*server.Listener
	outputs   *observe.Outputs // access log, security events, tracer; swapped per section on reload
	metrics   *observe.Metrics
	admin     *http.Server  // nil without an admin section
	adminCfg  *config.Admin // the admin section bound at start (restart to change it)
	adminAddr net.Addr
	// adminAccessStop stops the admin listener's IP firewall's list-file
	// watcher (at shutdown).
	adminAccessStop func()
	version         atomic.Int64                  // plan sequence number, for metrics
	live            *observe.Live                 // the dashboard's window; nil without an admin section
	loadedAt        atomic.Int64                  // unix time of the last successful load or reload
	trigger         atomic.Pointer[string]        // what caused the last successful load
	posture         atomic.Pointer[PostureChange] // how the last reload changed the audit (nil: none yet)
	configFile      atomic.Pointer[string]        // the config file, for reloads through the admin API

	state atomic.Pointer[plan.State] // what outlives plans: revocations, limits, quotas, the Redis client, the learner
	guard *abuse.Guard               // abuse counters and bans survive reloads; nil when off
	// runtime keeps what operators change at runtime (revocations,
	// drains, bans) across restarts and instances.
	runtime    *runstate.Keeper
	idPrefix   string
	reqCounter atomic.Uint64

	serveErr chan error
	// inherited are listening sockets handed over by the process this
	// one replaces (Inherit), by listener name; adminSock is the admin
	// listener's socket (to hand over in turn).
	inherited map[string]net.Listener
	adminSock net.Listener
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
	g := &Gateway{idPrefix: newIDPrefix(func(b []byte) { _, _ = rand.Read(b) })}
	if err := g.openObservability(cfg, &deps); err != nil {
		return nil, err
	}
	g.loadedAt.Store(deps.Now().Unix())
	g.adminCfg = cfg.Admin
	g.deps = deps
	g.version.Store(1)
	g.state.Store(plan.NewState(cfg, deps, g.Guard))
	g.state.Load().JTIs.SetRevoked(cfg.Authn.RevokedTokenIDs, deps.Now())
	if cfg.Abuse != nil {
		g.guard = abuse.New(abuse.Compile(cfg, deps, g.state.Load().Shared.Client()))
	}
	p, err := plan.Compile(cfg, deps, nil, g.state.Load())
	if err != nil {
		g.abandon()
		return nil, err
	}
	if err := g.outputs.OpenAccessLog(cfg); err != nil {
		p.CloseUnshared(nil)
		g.abandon()
		return nil, err
	}
	g.plan.Store(p)
	if g.runtime, err = runstate.FromConfig(cfg, g.runtimeTarget()); err != nil {
		p.CloseUnshared(nil)
		g.abandon()
		return nil, cfg.Problem("state.runtime_file", "%v", err)
	}
	started := "start"
	g.trigger.Store(&started)
	g.outputs.Record("startup", "", map[string]string{"config": cfg.Hash})
	return g, nil
}

// abandon releases what New opened before it failed: the event stream,
// the tracer, the Redis client and the abuse guard's subscription.
func (g *Gateway) abandon() {
	if g.guard != nil {
		g.guard.Close()
	}
	g.state.Load().Release(nil)
	g.state.Load().Discovery.Close()
	g.outputs.Abandon()
}

// openObservability opens the security event stream (unless deps
// already has one) and the tracer, the metrics and the dashboard's window
// (with an admin section: they are collected only where they can be
// read), and points deps at them. On error nothing stays open.
func (g *Gateway) openObservability(cfg *config.Config, deps *pipeline.Deps) error {
	o, err := observe.OpenOutputs(cfg, deps.Log, deps.Events == nil)
	if err != nil {
		return err
	}
	g.outputs = o
	if deps.Events == nil {
		deps.Events = o.Events()
	}
	if cfg.Admin != nil {
		g.metrics = observe.NewMetrics(observe.Gauges{
			ActiveBans:     func() float64 { return float64(g.activeBans()) },
			UpstreamHealth: g.reportHealth,
			EventsDropped:  func() float64 { return float64(g.outputs.Dropped()) },
			HandshakeFailures: func(report func(listener, reason string, n uint64)) {
				for _, l := range g.listeners {
					for reason, n := range l.HandshakeFailures() {
						report(l.Name, reason, n)
					}
				}
			},
		})
		deps.FetchFailed = g.metrics.JWKSFailure
		deps.CertificateResult = g.metrics.Certificate
		deps.OverloadLimit = g.metrics.OverloadLimit
		g.live = observe.NewLive()
		deps.Events = observe.Tee(deps.Events, g.live)
	}
	return nil
}

// Plan returns the current plan.
func (g *Gateway) Plan() *plan.Plan { return g.plan.Load() }

// Handler returns the HTTP handler of a listener (tests serve it directly).
func (g *Gateway) Handler(listener string) http.Handler {
	return &listenerHandler{g: g, name: listener}
}

// Start binds every listener and starts serving; it returns once all are
// bound. Pools start their health checks.
func (g *Gateway) Start() error {
	p := g.plan.Load()
	p.Start()
	g.serveErr = make(chan error, len(p.Config.Listeners))
	g.base, g.cutBase = context.WithCancelCause(context.Background())
	for _, lc := range p.Config.Listeners {
		l, err := server.Listen(lc, server.Options{Base: g.base, Certs: p.Listener(lc.Name).Certificates(),
			Socket: g.socket(lc.Name, lc.Address), Handler: g.Handler(lc.Name), Log: g.deps.Log})
		if err != nil {
			g.closeListeners()
			return err
		}
		g.listeners = append(g.listeners, l)
	}
	if a := p.Config.Admin; a != nil {
		if err := g.startAdmin(a); err != nil {
			g.closeListeners()
			return err
		}
	}
	g.closeUninherited()
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
	return g.rejected("api", g.reload(cfg, "api"))
}

// ReloadFile loads the config file at path and applies it (see Reload);
// trigger names the cause in logs and events ("SIGHUP", "file change").
// Every rejection, whichever stage rejected it (unreadable file, YAML,
// unknown key, bad reference, listener change, compilation), is counted in
// rampart_config_reloads_total{result="failure"} and reported as one
// config.reload_rejected security event.
func (g *Gateway) ReloadFile(path, trigger string) (*config.Config, error) {
	cfg, err := config.LoadWith(path, g.plan.Load().Config.Options()) // as at start
	if err == nil {
		err = g.reload(cfg, trigger)
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
	g.outputs.Record("config.reload_rejected", trigger, map[string]string{"problems": strconv.Itoa(max(len(problems), 1))})
	first := err.Error()
	if len(problems) > 0 {
		first = problems[0].Error()
	}
	g.deps.Events.Emit(pipeline.Event{Name: "config.reload_rejected", Code: "config.reload_rejected",
		Reason: first, Attrs: map[string]string{"trigger": trigger, "problems": strconv.Itoa(max(len(problems), 1))}})
	return err
}

func (g *Gateway) reload(cfg *config.Config, trigger string) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	old := g.plan.Load()
	if err := sameListeners(old.Config, cfg); err != nil {
		return err
	}
	outs, err := g.outputs.Prepare(old.Config, cfg)
	if err != nil {
		return err
	}
	st := g.state.Load().For(cfg, g.deps)
	p, err := plan.Compile(cfg, g.deps, old, st)
	if err != nil {
		st.Release(g.state.Load())
		outs.Discard()
		return err
	}
	defer g.state.Load().Release(st) // after the swap; in-flight checks may still use the old client
	g.state.Store(st)
	if g.guard != nil && cfg.Abuse != nil {
		g.guard.Configure(abuse.Compile(cfg, g.deps, nil))
	}
	st.JTIs.SetRevoked(cfg.Authn.RevokedTokenIDs, g.deps.Now())
	p.Start()
	g.plan.Store(p)
	g.runtime.Reapply()
	g.outputs.Commit(outs)
	if !reflect.DeepEqual(g.adminCfg, cfg.Admin) {
		// Compared with the section running since start, not the
		// previous file: an edit that restores it is no change.
		g.deps.Log.Warn("reload: admin differs from the running admin section; it is bound at start, restart rampart to apply it")
	}
	for _, l := range g.listeners {
		if lp := p.Listener(l.Name); lp != nil && lp.Certificates() != nil && l.Certs != nil {
			l.Certs.Set(lp.Certificates())
		}
	}
	// Pools the new plan no longer uses stop their health checks and
	// close idle connections; requests still using them finish.
	old.CloseUnshared(p)
	g.postureReloaded(old.Audit, p.Audit, trigger)
	version := g.version.Add(1)
	g.loadedAt.Store(g.deps.Now().Unix())
	g.trigger.Store(&trigger)
	g.outputs.Record("config.reload", trigger, map[string]string{"before": old.Config.Hash, "after": cfg.Hash})
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
func (g *Gateway) ReopenLogs() error { return g.outputs.Reopen() }

// Shutdown stops accepting, drains in-flight requests until ctx ends,
// stops health checks and flushes the access log.
func (g *Gateway) Shutdown(ctx context.Context) error {
	if g.admin != nil {
		if err := g.admin.Shutdown(ctx); err != nil {
			g.admin.Close()
		}
		g.adminAccessStop()
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
	if err := g.runtime.SaveBans(); err != nil {
		g.deps.Log.Warn("bans not saved", "error", err.Error())
	}
	g.runtime.Close()
	g.state.Load().Discovery.Close()
	g.plan.Load().CloseUnshared(nil)
	if g.guard != nil {
		g.guard.Close()
	}
	g.state.Load().Release(nil)
	g.outputs.Record("shutdown", "", nil)
	// The logs, events and spans of the drained requests get their own
	// deadline: the drain's may be spent.
	flush, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	return g.outputs.Close(flush)
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

// Guard returns the abuse guard (nil when detection is off).
func (g *Gateway) Guard() *abuse.Guard { return g.guard }
