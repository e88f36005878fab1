package plan

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/rampart-gw/rampart/internal/acme"
	"github.com/rampart-gw/rampart/internal/apidocs"
	"github.com/rampart-gw/rampart/internal/authn"
	"github.com/rampart-gw/rampart/internal/clientip"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/cors"
	"github.com/rampart-gw/rampart/internal/ipfilter"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/router"
	"github.com/rampart-gw/rampart/internal/server"
)

// Listener is one listener's compiled part of a plan.
type Listener struct {
	name     string
	router   *router.Router[*Route]
	resolver *clientip.Resolver
	v6Bits   int // client_ip.ipv6_prefix: how an IPv6 client keys state
	maxBody  int64
	// hsts is the shared, read-only Strict-Transport-Security value set
	// on every response of a TLS listener (nil: none).
	hsts  []string
	certs *server.CertSet // nil without TLS
	acme  *acme.Manager   // the listener's ACME certificates (nil: none)
	// revocations of client certificates (mTLS listeners).
	revocations *authn.Revocations
	access      *ipfilter.Rules // nil: every client address
	routes      []*Route        // config order
	// builtin are the gateway's own routes on this listener by exact
	// path (the JWKS, the published API document), matched before the
	// configured routes.
	builtin map[string]*Route
}

// Builtin returns the gateway's own route at path, nil when none.
func (lp *Listener) Builtin(path string) *Route { return lp.builtin[path] }

// compileListener compiles listener i: its client-IP resolver, TLS, and
// the routes it serves into its router.
func (p *Plan) compileListener(cfg *config.Config, i int, l config.Listener, deps pipeline.Deps, st *State) []error {
	base := fmt.Sprintf("listeners[%d]", i)
	lp := &Listener{name: l.Name, maxBody: int64(l.Limits.MaxBodyBytes), v6Bits: cfg.ClientIP.IPv6Prefix}
	var trusted []netip.Prefix
	for _, s := range l.TrustedProxies {
		pfx, _ := config.ParsePrefix(s) // validated at load
		trusted = append(trusted, pfx)
	}
	lp.resolver = clientip.New(trusted)
	errs := lp.compileTLS(cfg, base, l)
	var err error
	if lp.access, err = p.compileAccess(l.Access, deps); err != nil {
		errs = append(errs, cfg.Problem(base+".access", "%v", err))
	}
	var specs []router.Spec[*Route]
	for j, r := range cfg.Routes {
		if !servesListener(r, l.Name) {
			continue
		}
		pool := p.pools.Get(r.Upstream)
		if pool == nil {
			continue // reported with the upstreams
		}
		rt, err := p.compileRoute(r, lp, pool, deps, st)
		if err != nil {
			path := fmt.Sprintf("routes[%d]", j)
			if se, ok := errors.AsType[*stageError](err); ok {
				path += "." + se.path
			}
			errs = append(errs, cfg.Problem(path, "%v", err))
			continue
		}
		lp.routes = append(lp.routes, rt)
		specs = append(specs, router.Spec[*Route]{
			ID: r.ID, Hosts: r.Hosts, Methods: r.Methods, Path: r.Path, Prefix: r.Prefix, Value: rt,
		})
	}
	rt, err := router.New(specs)
	if err != nil {
		errs = append(errs, cfg.Problem(base, "%v", err))
	}
	lp.router = rt
	lp.builtin = p.builtinRoutes(cfg, l.Name)
	p.listeners[l.Name] = lp
	return errs
}

// builtinRoutes are the gateway's own routes served on a listener: the
// JWKS everywhere, the API document where docs.listeners names it.
func (p *Plan) builtinRoutes(cfg *config.Config, listener string) map[string]*Route {
	out := map[string]*Route{}
	if p.jwksRoute != nil {
		out[p.jwksPath] = p.jwksRoute
	}
	if d := cfg.Docs; d != nil && p.docs != nil && slices.Contains(d.Listeners, listener) {
		for path, h := range apidocs.Routes(p.docs, d.Path, router.CodeMethodNotAllowed) {
			out[path] = &Route{id: "rampart.docs", stages: []string{"docs"}, handler: h}
		}
	}
	return out
}

// compileTLS loads a TLS listener's certificate, client revocations and
// HSTS value.
func (lp *Listener) compileTLS(cfg *config.Config, base string, l config.Listener) []error {
	var errs []error
	if rev, err := authn.CompileRevocations(l.TLS); err != nil {
		errs = append(errs, cfg.Problem(base+".tls.client_crl_file", "%v", err))
	} else {
		lp.revocations = rev
	}
	if l.TLS == nil {
		return errs
	}
	certs, err := server.LoadCertSet(l.TLS)
	if err != nil {
		errs = append(errs, cfg.Problem(base+".tls.cert_file", "%v", err))
	}
	lp.certs = certs
	if h := l.TLS.HSTS; *h.Enabled {
		v := "max-age=" + strconv.FormatInt(int64(h.MaxAge.D()/time.Second), 10)
		if *h.IncludeSubdomains {
			v += "; includeSubDomains"
		}
		if h.Preload {
			v += "; preload"
		}
		lp.hsts = []string{v}
	}
	return errs
}

func servesListener(r config.Route, name string) bool {
	if len(r.Listeners) == 0 {
		return true
	}
	for _, l := range r.Listeners {
		if l == name {
			return true
		}
	}
	return false
}

// CheckAccess refuses a client address the listener's access section
// does not allow (nil: allowed).
func (lp *Listener) CheckAccess(ip netip.Addr) error {
	if lp.access == nil {
		return nil
	}
	return lp.access.Check(ip)
}

// Resolver resolves the listener's client addresses (trusted proxies).
func (lp *Listener) Resolver() *clientip.Resolver { return lp.resolver }

// IPv6Prefix is the prefix length that keys an IPv6 client's state.
func (lp *Listener) IPv6Prefix() int { return lp.v6Bits }

// HSTS is the Strict-Transport-Security value of every response (nil on
// plaintext listeners or with HSTS off). Shared: never modify it.
func (lp *Listener) HSTS() []string { return lp.hsts }

// Certificates are the TLS listener's certificates (nil: plaintext).
func (lp *Listener) Certificates() *server.CertSet {
	if lp == nil {
		return nil
	}
	return lp.certs
}

// Routes lists the routes in the router's precedence order.
func (lp *Listener) Routes() []*Route {
	byID := map[string]*Route{}
	for _, rt := range lp.routes {
		byID[rt.id] = rt
	}
	var out []*Route
	for _, id := range lp.router.Order() {
		out = append(out, byID[id])
	}
	return out
}

// Match routes a request by its canonical host and normalised path. A
// CORS preflight asks about another method: it is routed by that one,
// and if that route has a CORS policy, the gateway answers the
// preflight; otherwise it is an ordinary OPTIONS request.
func (lp *Listener) Match(host string, r *http.Request, path string) router.Match[*Route] {
	if cors.IsPreflight(r) {
		if m := lp.router.Match(host, r.Header.Get("Access-Control-Request-Method"), path); m.Result == router.Found && m.Value.cors != nil {
			return m
		}
	}
	return lp.router.Match(host, r.Method, path)
}
