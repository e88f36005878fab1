package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/rampart-gw/rampart/internal/admin"
	"github.com/rampart-gw/rampart/internal/config"
)

// startAdmin binds the admin listener: probes, and the metrics behind the
// admin token. Its settings are read at start (a change needs a restart).
func (g *Gateway) startAdmin(a *config.Admin) error {
	ln, err := net.Listen("tcp", a.Address)
	if err != nil {
		return err
	}
	h := admin.Handler(admin.Options{
		TokenHash: sha256.Sum256([]byte(a.Token.Reveal())),
		Metrics:   g.metrics.Handler(),
		Ready:     g.ready,
	})
	g.admin = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10, ErrorLog: nil}
	g.adminAddr = ln.Addr()
	g.deps.Log.Info("admin listening", "address", ln.Addr().String())
	go func() {
		if err := g.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.serveErr <- err
		}
	}()
	return nil
}

// AdminAddr is the admin listener's bound address, nil when off.
func (g *Gateway) AdminAddr() net.Addr { return g.adminAddr }

// ready reports readiness: a plan is loaded, the listeners are bound and
// the shared store (Redis), when configured, answers.
func (g *Gateway) ready() (bool, map[string]string) {
	checks := map[string]string{"plan": "ok", "listeners": "ok"}
	ok := true
	if g.plan.Load() == nil {
		checks["plan"], ok = "no plan loaded", false
	}
	if len(g.listeners) == 0 {
		checks["listeners"], ok = "not bound", false
	}
	if rd := g.redis; rd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if err := rd.client.Ping(ctx).Err(); err != nil {
			checks["redis"], ok = "unreachable", false
		} else {
			checks["redis"] = "ok"
		}
	}
	return ok, checks
}

// activeBans counts the clients the abuse detectors currently sanction.
func (g *Gateway) activeBans() int {
	if g.guard == nil {
		return 0
	}
	return g.guard.ActiveBans(g.deps.Now())
}

// reportHealth reports every upstream target's health for the metrics.
func (g *Gateway) reportHealth(report func(upstream, target string, healthy bool)) {
	plan := g.plan.Load()
	if plan == nil {
		return
	}
	now := g.deps.Now().UnixNano()
	for name, e := range plan.pools {
		for _, t := range e.pool.Targets() {
			report(name, t.Host, t.Available(now))
		}
	}
}
