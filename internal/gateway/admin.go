package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/abuse"
	"github.com/rampart-gw/rampart/internal/admin"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/plan"
	"github.com/rampart-gw/rampart/internal/runstate"
	"github.com/rampart-gw/rampart/internal/server"
)

// startAdmin binds the admin listener: probes, and the metrics behind the
// admin token. Its settings are read at start (a change needs a restart).
func (g *Gateway) startAdmin(a *config.Admin) error {
	ln := g.socket(adminSocket, a.Address)
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", a.Address); err != nil {
			return err
		}
	}
	g.adminSock = ln
	if t := a.TLS; t != nil {
		conf, err := server.AdminTLSConfig(t.CertFile, t.KeyFile, t.ClientCAFile)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, conf)
	}
	allowed, stop, err := admin.Firewall(a.Access, func(err error) {
		g.deps.Log.Warn("admin access list file not applied; the lists in force stay", "error", err.Error())
	})
	if err != nil {
		ln.Close()
		return err
	}
	g.adminAccessStop = stop
	o := admin.Options{
		ClientAllowed: allowed,
		Principals:    principals(a),
		OnAuthFailure: g.adminAuthFailed,
		Metrics:       g.metrics.Handler(),
		Ready:         g.ready,
		State:         g.dashboardState,
		LiftBan:       g.liftBan,
		Ban:           g.banFromAPI,
		Revoke:        g.revokeFromAPI,
		Unrevoke:      g.unrevokeFromAPI,
		Revocations:   func() any { return g.state.Load().JTIs.List(g.deps.Now()) },
		Keys:          g.keyAdmin(),
		Drain:         g.drainFromAPI,
		Reload:        g.reloadFromAPI,
		Posture:       func() any { return g.Posture() },
		Now:           g.deps.Now,
	}
	if g.plan.Load().Config.Assertion != nil {
		o.RotateKey = g.rotateFromAPI
	}
	o.Discovery = func() ([]byte, any, error) {
		return plan.Discovered(g.state.Load(), g.plan.Load().Config, g.deps.Now())
	}
	h := admin.Handler(o)
	g.admin = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10, ErrorLog: nil}
	// Streams (the dashboard's SSE) end when the listener shuts down.
	base, cancel := context.WithCancel(context.Background())
	g.admin.BaseContext = func(net.Listener) context.Context { return base }
	g.admin.RegisterOnShutdown(cancel)
	g.adminAddr = ln.Addr()
	g.deps.Log.Info("admin listening", "address", ln.Addr().String())
	go func() {
		if err := g.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.serveErr <- err
		}
	}()
	return nil
}

// banFromAPI bans a client (an address or IPv6 prefix) for d, on every
// instance sharing Redis, on behalf of a principal.
func (g *Gateway) banFromAPI(client string, d time.Duration, by string) error {
	if g.guard == nil {
		return errors.New("abuse detection is off")
	}
	k, err := g.clientKey(client)
	if err != nil {
		return err
	}
	until := g.deps.Now().Add(d)
	g.guard.BanEverywhere(k, until)
	ev := pipeline.Event{Name: "abuse.banned_by_operator", Code: "abuse.banned_by_operator",
		Attrs: map[string]string{"by": by, "until": until.UTC().Format(time.RFC3339)}}
	k.Tag(&ev)
	g.deps.Events.Emit(ev)
	g.outputs.Record("ban.added", by, map[string]string{"client": k.String(), "until": until.UTC().Format(time.RFC3339)})
	return admin.NotSaved(g.runtime.SaveBans())
}

// clientKey reads a client key as the admin API names it: an address, an
// IPv6 prefix, identity:SUBJECT@ISSUER or session:HASH.
func (g *Gateway) clientKey(client string) (abuse.Key, error) {
	k, err := abuse.ParseKey(client, g.plan.Load().Config.ClientIP.IPv6Prefix)
	if err != nil {
		return k, fmt.Errorf("not a client address, identity or session: %q (%v)", client, err)
	}
	return k, nil
}

// revokeFromAPI refuses a token or a subject's tokens until a time, as a
// security event and a journal record naming the principal. It is in
// force here at once; an error says it was not saved or shared.
func (g *Gateway) revokeFromAPI(r admin.RevokeRequest, by string) error {
	now := g.deps.Now()
	attrs := map[string]string{"until": r.Until.UTC().Format(time.RFC3339), "by": by}
	if r.JTI != "" {
		g.state.Load().JTIs.Revoke(r.JTI, r.Until, now)
		attrs["jti"] = r.JTI
	} else {
		g.state.Load().JTIs.RevokeSubject(r.Issuer, r.Subject, r.Until, now)
		attrs["issuer"], attrs["subject"] = r.Issuer, r.Subject
	}
	g.deps.Events.Emit(pipeline.Event{Time: now, Name: "authn.revoked_by_operator", Code: "authn.revoked_by_operator", Attrs: attrs})
	g.outputs.Record("token.revoked", by, attrs)
	return admin.NotSaved(g.runtime.Revoke(r.JTI, r.Issuer, r.Subject, r.Until))
}

// drainFromAPI stops or resumes new requests to an upstream target, on
// behalf of a principal (journaled).
func (g *Gateway) drainFromAPI(upstream, target string, drained bool, by string) error {
	if err := g.plan.Load().Pools().Drain(upstream, target, drained); err != nil {
		return err
	}
	g.outputs.Record("target.drained", by, map[string]string{"upstream": upstream, "target": target, "drained": strconv.FormatBool(drained)})
	return admin.NotSaved(g.runtime.SetDrain(upstream, target, drained))
}

// runtimeTarget is what the saved or shared runtime state is applied to.
func (g *Gateway) runtimeTarget() runstate.Target {
	t := runstate.Target{JTIs: g.state.Load().JTIs, Now: g.deps.Now, Log: g.deps.Log,
		Drain: func(upstream, target string, drained bool) error {
			return g.plan.Load().Pools().Drain(upstream, target, drained)
		}}
	if g.guard != nil {
		t.Ban = func(client string, until time.Time) {
			if k, err := g.clientKey(client); err == nil {
				g.guard.Ban(k, until)
			}
		}
		t.Bans = func(yield func(string, time.Time)) {
			for _, b := range g.guard.List(g.deps.Now()) {
				if !b.Tighten {
					yield(b.Client.String(), b.Until)
				}
			}
		}
	}
	return t
}

// keyAdmin manages the API key store through the admin API (nil without
// an api_keys section at start); a change recompiles the running config.
func (g *Gateway) keyAdmin() admin.KeyAdmin {
	if g.plan.Load().Config.Authn.APIKeys == nil {
		return nil
	}
	return admin.NewFileKeys(func() *config.Config { return g.plan.Load().Config },
		func(by string) error { return g.reload(g.plan.Load().Config, "api:"+by) },
		g.outputs.Record, g.deps.Now)
}

// unrevokeFromAPI lifts a runtime revocation (journaled).
func (g *Gateway) unrevokeFromAPI(r admin.RevokeRequest, by string) error {
	g.state.Load().JTIs.Lift(r.JTI, r.Issuer, r.Subject, g.deps.Now())
	g.outputs.Record("token.unrevoked", by, map[string]string{"jti": r.JTI, "issuer": r.Issuer, "subject": r.Subject})
	return admin.NotSaved(g.runtime.Unrevoke(r.JTI, r.Issuer, r.Subject))
}

// reloadFromAPI reloads the config file on behalf of a principal.
func (g *Gateway) reloadFromAPI(by string) error {
	path := g.configFile.Load()
	if path == nil {
		return errors.New("started without a config file")
	}
	_, err := g.ReloadFile(*path, "api:"+by)
	return err
}

// rotateFromAPI retires the assertion signing key and recompiles the
// running config so that the new key signs (journaled).
func (g *Gateway) rotateFromAPI(by string) (any, error) {
	cfg := g.plan.Load().Config
	r, err := plan.RotateAssertionKey(cfg, g.deps.Now())
	if errors.Is(err, plan.ErrRotationTooSoon) {
		return nil, fmt.Errorf("%w: %w", admin.ErrTooSoon, err)
	}
	if err != nil {
		return nil, err
	}
	if err := g.reload(cfg, "api:"+by); err != nil {
		return nil, err
	}
	g.outputs.Record("assertion.key_staged", by, map[string]string{"kid": r.KID, "current_kid": r.CurrentKID, "signs_from": r.SignsFrom.UTC().Format(time.RFC3339)})
	return r, nil
}

// SetConfigFile names the file the gateway was started from, for reloads
// through the admin API.
func (g *Gateway) SetConfigFile(path string) { g.configFile.Store(&path) }

// principals are the admin section's users: admin.token is the
// principal "admin" with the admin role. Only token hashes are kept.
func principals(a *config.Admin) []admin.Principal {
	var out []admin.Principal
	if a.Token.IsSet() {
		out = append(out, admin.Principal{Name: "admin", TokenHash: sha256.Sum256([]byte(a.Token.Reveal())), Role: admin.Admin})
	}
	for _, p := range a.Principals {
		pr := admin.Principal{Name: p.Name, CertSAN: p.ClientCertSAN, Role: admin.ParseRole(p.Role)}
		if p.Token.IsSet() {
			pr.TokenHash = sha256.Sum256([]byte(p.Token.Reveal()))
		}
		out = append(out, pr)
	}
	return out
}

// adminAuthFailed puts a refused admin request on the security event
// stream.
func (g *Gateway) adminAuthFailed(client netip.Addr, code, detail string) {
	ev := pipeline.Event{Time: g.deps.Now(), Name: code, Code: code, Reason: detail, Route: "admin"}
	if client.IsValid() {
		ev.ClientIP = client.String()
	}
	g.deps.Events.Emit(ev)
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
	if sh := g.state.Load().Shared; sh != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		var up bool
		checks["redis"], up = sh.Health(ctx, g.deps.Now())
		ok = ok && up
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
	plan.Pools().Health(g.deps.Now().UnixNano(), report)
}

// dashboardState is what the live dashboard shows.
func (g *Gateway) dashboardState() admin.State {
	now := g.deps.Now()
	p := g.plan.Load()
	st := admin.State{Bans: []admin.Ban{}, Upstreams: []admin.Upstream{}, Routes: []admin.RouteView{},
		Config: admin.ConfigState{Version: g.version.Load(), Hash: p.Config.Hash, LastReload: time.Unix(g.loadedAt.Load(), 0).UTC().Format(time.RFC3339)}}
	if t := g.trigger.Load(); t != nil {
		st.Config.Trigger = *t
	}
	categories := map[string]string{}
	for _, name := range p.Listeners() {
		for _, rt := range p.Listener(name).Routes() {
			st.Routes = append(st.Routes, admin.RouteView{Listener: name, ID: rt.ID(), Category: rt.Category(), Stages: Stages(rt)})
			categories[rt.ID()] = rt.Category()
		}
	}
	st.Live = g.live.Snapshot(now, func(route string) string { return categories[route] })
	if g.guard != nil {
		for _, b := range g.guard.List(now) {
			action := "ban"
			if b.Tighten {
				action = "tighten"
			}
			st.Bans = append(st.Bans, admin.Ban{IP: b.Client.String(), Kind: b.Client.Kind(), Until: b.Until.UTC().Format(time.RFC3339), Action: action})
		}
	}
	p.Pools().Targets(now.UnixNano(), func(upstream, target string, healthy, drained bool) {
		st.Upstreams = append(st.Upstreams, admin.Upstream{Name: upstream, Target: target, Healthy: healthy, Drained: drained})
	})
	slices.SortFunc(st.Upstreams, func(a, b admin.Upstream) int { return strings.Compare(a.Name+a.Target, b.Name+b.Target) })
	st.Dropped = g.outputs.Dropped()
	return st
}

// liftBan lifts a client's ban (everywhere, with Redis) on behalf of a
// principal (journaled).
func (g *Gateway) liftBan(ip, by string) error {
	if g.guard == nil {
		return errors.New("abuse detection is off")
	}
	k, err := g.clientKey(ip)
	if err != nil {
		return err
	}
	g.guard.Lift(k)
	ev := pipeline.Event{Name: "abuse.lifted", Code: "abuse.lifted", Attrs: map[string]string{"by": by}}
	k.Tag(&ev)
	g.deps.Events.Emit(ev)
	g.outputs.Record("ban.lifted", by, map[string]string{"client": k.String()})
	return admin.NotSaved(g.runtime.SaveBans())
}
