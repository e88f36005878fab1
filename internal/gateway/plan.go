// Package gateway is the composition root: it compiles a config into an
// immutable Plan (listeners, routers, per-route stage chains in a fixed
// order), serves requests through the current plan, and swaps plans
// atomically on reload.
package gateway

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/rampart-gw/rampart/internal/abuse"
	"github.com/rampart-gw/rampart/internal/assert"
	"github.com/rampart-gw/rampart/internal/authn"
	"github.com/rampart-gw/rampart/internal/authz"
	"github.com/rampart-gw/rampart/internal/clientip"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/cors"
	"github.com/rampart-gw/rampart/internal/openapi"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/proxy"
	"github.com/rampart-gw/rampart/internal/ratelimit"
	"github.com/rampart-gw/rampart/internal/respond"
	"github.com/rampart-gw/rampart/internal/router"
	"github.com/rampart-gw/rampart/internal/server"
	"github.com/rampart-gw/rampart/internal/validate"
	"github.com/rampart-gw/rampart/internal/waf"
)

// Plan is a compiled config. It is immutable once built; requests read it
// through an atomic pointer and finish on the plan they started with.
type Plan struct {
	// Config is the config the plan was compiled from.
	Config    *config.Config
	listeners map[string]*listenerPlan
	pools     map[string]*poolEntry
	issuers   map[string]*issuerEntry
	intros    map[string]*authn.Introspector
	signer    *assert.Signer
	decision  decisionFields
	wafs      map[string]*waf.WAF        // by options; reused across reloads (compiling the CRS takes a moment)
	specs     map[string]*openapi.Spec   // by route id
	specKeys  map[[32]byte]*openapi.Spec // by document and options; reused across reloads
	tighten   ratelimit.Limit            // limit of clients the abuse guard tightened
	resp      *respond.Policy            // response_headers of the gateway's own answers before routing
	v6Bits    int                        // client_ip.ipv6_prefix: how an IPv6 client keys state
	jwksPath  string
	jwksRoute *routePlan
}

type listenerPlan struct {
	name     string
	router   *router.Router[*routePlan]
	resolver *clientip.Resolver
	tls      bool
	hsts     string
	maxBody  int64
	// Shared read-only header value set on every response.
	hstsValue []string
	cert      *tls.Certificate
	routes    []*routePlan // config order
	// revocations of client certificates (mTLS listeners).
	revocations *authn.Revocations
}

type routePlan struct {
	id        string
	handler   pipeline.Handler
	stages    []string
	sensitive bool
	resp      *respond.Policy // response_headers (top-level and the route's); nil: defaults only
	cors      *cors.Policy    // nil: no CORS on the route
}

type poolEntry struct {
	fingerprint string
	pool        *proxy.Pool
}

// stage is one named step of a route's chain.
type stage struct {
	name string
	mw   pipeline.Middleware
}

// compile builds a plan. Pools whose upstream config is unchanged are
// taken from prev, so health, ejection and breaker state survive reloads.
// New pools are created but not started; the caller starts them once the
// plan is accepted, and closes them if it is not.
func compile(cfg *config.Config, deps pipeline.Deps, prev *Plan, jtis *authn.JTIStore, limits ratelimit.Store, shared ratelimit.Store, quotas ratelimit.QuotaStore, guard func() *abuse.Guard) (*Plan, error) {
	var errs []error
	p := &Plan{Config: cfg, listeners: map[string]*listenerPlan{}, pools: map[string]*poolEntry{}, v6Bits: cfg.ClientIP.IPv6Prefix}
	var prevPools map[string]*poolEntry
	var prevIssuers map[string]*issuerEntry
	if prev != nil {
		prevPools, prevIssuers = prev.pools, prev.issuers
	}
	var ierrs []error
	p.issuers, ierrs = compileIssuers(cfg, deps, prevIssuers)
	errs = append(errs, ierrs...)
	if a := cfg.Assertion; a != nil {
		signer, err := compileSigner(a)
		if err != nil {
			errs = append(errs, cfg.Problem("assertion.key_file", "%v", err))
		}
		p.signer = signer
		if a.JWKSPath != "" && signer != nil {
			p.jwksPath = a.JWKSPath
			p.jwksRoute = jwksRoute(signer)
		}
	}
	if a := cfg.Abuse; a != nil && a.TightenTo != nil {
		p.tighten = ratelimit.Limit{Rate: a.TightenTo.Rate, Period: a.TightenTo.Per.D(), Burst: a.TightenTo.Burst}
	}
	p.decision = compileDecisionFields(cfg.DecisionFields)
	var err error
	if p.resp, err = respond.Compile(cfg.ResponseHeaders, nil); err != nil {
		errs = append(errs, cfg.Problem("response_headers", "%v", err))
	}
	var werrs []error
	p.wafs, werrs = compileWAFs(cfg, deps, prev)
	errs = append(errs, werrs...)
	p.specs, p.specKeys, errs = compileSpecs(cfg, deps, prev, errs)
	intros, ierrs2 := compileIntrospection(cfg)
	errs = append(errs, ierrs2...)
	p.intros = intros
	apiKeys, err := compileAPIKeys(cfg)
	if err != nil {
		errs = append(errs, cfg.Problem("authn.api_keys.file", "%v", err))
	}
	errs = append(errs, p.compilePools(cfg, deps, prevPools)...)
	st := stores{jtis: jtis, limits: limits, shared: shared, quotas: quotas, guard: guard, apiKeys: apiKeys}
	for i, l := range cfg.Listeners {
		errs = append(errs, p.compileListener(cfg, i, l, deps, st)...)
	}
	if len(errs) > 0 {
		p.closeNew(prev)
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// stores is the state a plan's stages use that outlives the plan.
type stores struct {
	jtis    *authn.JTIStore
	limits  ratelimit.Store
	shared  ratelimit.Store
	quotas  ratelimit.QuotaStore
	guard   func() *abuse.Guard
	apiKeys *authn.APIKeyMethod
}

// compileListener compiles listener i: its client-IP resolver, TLS, and
// the routes it serves into its router.
func (p *Plan) compileListener(cfg *config.Config, i int, l config.Listener, deps pipeline.Deps, st stores) []error {
	var errs []error
	base := fmt.Sprintf("listeners[%d]", i)
	lp := &listenerPlan{name: l.Name, maxBody: int64(l.Limits.MaxBodyBytes)}
	var trusted []netip.Prefix
	for _, s := range l.TrustedProxies {
		pfx, _ := config.ParsePrefix(s) // validated at load
		trusted = append(trusted, pfx)
	}
	lp.resolver = clientip.New(trusted)
	errs = append(errs, compileListenerTLS(cfg, base, l, lp)...)
	var specs []router.Spec[*routePlan]
	for j, r := range cfg.Routes {
		if !servesListener(r, l.Name) {
			continue
		}
		entry := p.pools[r.Upstream]
		if entry == nil {
			continue // reported above
		}
		fwd := proxy.Options{StripIdentityHeaders: cfg.StripIdentityHeaders, Signer: p.signer, Now: deps.Now}
		if r.SkipAssertion {
			fwd.Signer = nil
		}
		if cfg.Assertion != nil {
			fwd.AssertionHeader = cfg.Assertion.Header
		}
		pre, post := limitStages(r, st.limits, st.shared, deps)
		quota := quotaStage(r, st.quotas, deps)
		rp, err := compileRoute(r, lp, p, entry.pool, st.apiKeys, st.jtis, fwd, pre, post, quota, st.guard, deps)
		if err != nil {
			path := fmt.Sprintf("routes[%d]", j)
			var se *stageError
			if errors.As(err, &se) {
				path += "." + se.path
			}
			errs = append(errs, cfg.Problem(path, "%v", err))
			continue
		}
		lp.routes = append(lp.routes, rp)
		specs = append(specs, router.Spec[*routePlan]{
			ID: r.ID, Hosts: r.Hosts, Methods: r.Methods, Path: r.Path, Prefix: r.Prefix, Value: rp,
		})
	}
	rt, err := router.New(specs)
	if err != nil {
		errs = append(errs, cfg.Problem(base, "%v", err))
	}
	lp.router = rt
	p.listeners[l.Name] = lp
	return errs
}

// compileWAFs compiles one WAF per distinct route waf section, reusing
// the previous plan's when unchanged (compiling the CRS takes a moment).
func compileWAFs(cfg *config.Config, deps pipeline.Deps, prev *Plan) (map[string]*waf.WAF, []error) {
	wafs := map[string]*waf.WAF{}
	var errs []error
	for i, r := range cfg.Routes {
		if r.WAF == nil {
			continue
		}
		key := fmt.Sprintf("%+v", *r.WAF)
		if _, done := wafs[key]; done {
			continue
		}
		if prev != nil && prev.wafs[key] != nil {
			wafs[key] = prev.wafs[key]
			continue
		}
		w, err := waf.New(waf.Options{Paranoia: r.WAF.Paranoia, AnomalyThreshold: r.WAF.AnomalyThreshold, DetectionOnly: r.WAF.DetectionOnly,
			ExcludeRules: r.WAF.ExcludeRules, ExcludeTags: r.WAF.ExcludeTags, BodyLimit: int64(r.WAF.BodyLimit), MaxArgs: r.WAF.MaxArgs, Events: deps.Events})
		if err != nil {
			errs = append(errs, cfg.Problem(fmt.Sprintf("routes[%d].waf", i), "%v", err))
			continue
		}
		wafs[key] = w
	}
	return wafs, errs
}

// compilePools builds an upstream pool per upstream, keeping the previous
// plan's pool (health state, ejections, breaker) when its config is
// unchanged.
func (p *Plan) compilePools(cfg *config.Config, deps pipeline.Deps, prevPools map[string]*poolEntry) []error {
	var errs []error
	for i, u := range cfg.Upstreams {
		fp, err := fingerprint(u)
		if err != nil {
			errs = append(errs, cfg.Problem(fmt.Sprintf("upstreams[%d]", i), "%v", err))
			continue
		}
		if old, ok := prevPools[u.Name]; ok && old.fingerprint == fp {
			p.pools[u.Name] = old
			continue
		}
		pool, err := proxy.NewPool(u, deps)
		if err != nil {
			errs = append(errs, cfg.Problem(fmt.Sprintf("upstreams[%d]", i), "%v", err))
			continue
		}
		p.pools[u.Name] = &poolEntry{fingerprint: fp, pool: pool}
	}
	return errs
}

// compileListenerTLS loads a TLS listener's certificate, client
// revocations and HSTS value.
func compileListenerTLS(cfg *config.Config, base string, l config.Listener, lp *listenerPlan) []error {
	var errs []error
	if rev, err := compileRevocations(l.TLS); err != nil {
		errs = append(errs, cfg.Problem(base+".tls.client_crl_file", "%v", err))
	} else {
		lp.revocations = rev
	}
	if l.TLS != nil {
		lp.tls = true
		cert, err := server.LoadCertificate(l.TLS.CertFile, l.TLS.KeyFile)
		if err != nil {
			errs = append(errs, cfg.Problem(base+".tls.cert_file", "%v", err))
		}
		lp.cert = cert
		if h := l.TLS.HSTS; *h.Enabled {
			lp.hsts = "max-age=" + strconv.FormatInt(int64(h.MaxAge.D()/time.Second), 10)
			if *h.IncludeSubdomains {
				lp.hsts += "; includeSubDomains"
			}
			if h.Preload {
				lp.hsts += "; preload"
			}
			lp.hstsValue = []string{lp.hsts}
		}
	}
	return errs
}

// limitStages splits a route's limits: those keyed by the client IP and
// the route alone run before authentication (cheap refusals first, and
// floods of bad credentials are limited too); identity-keyed ones run
// after authorization.
func limitStages(r config.Route, local, shared ratelimit.Store, deps pipeline.Deps) (pre, post pipeline.Middleware) {
	var early, late []ratelimit.Rule
	for _, rl := range r.RateLimits {
		rule := ratelimit.Rule{Name: rl.Name, Store: local, Limit: ratelimit.Limit{Rate: rl.Rate, Period: rl.Per.D(), Burst: rl.Burst}}
		if rl.Store == "redis" && shared != nil {
			rule.Store, rule.Fallback, rule.FailOpen = shared, local, rl.OnStoreError == "fail_open"
		}
		var identity bool
		rule.Keys, identity = keyParts(rl.Key)
		rule.FallbackToClientIP = rl.OnMissingKey == "client_ip"
		if rl.TierClaim != "" {
			identity = true
			rule.TierClaim, rule.Tiers = rl.TierClaim, map[string]ratelimit.Limit{}
			for name, tier := range rl.Tiers {
				rule.Tiers[name] = ratelimit.Limit{Rate: tier.Rate, Period: tier.Per.D(), Burst: tier.Burst}
			}
		}
		if identity {
			late = append(late, rule)
		} else {
			early = append(early, rule)
		}
	}
	pre = ratelimit.New(ratelimit.Options{RouteID: r.ID, Rules: early, Now: deps.Now})
	post = ratelimit.New(ratelimit.Options{RouteID: r.ID + "#id", Rules: late, Now: deps.Now})
	return pre, post
}

// wafStage is a route's WAF stage over the compiled instances.
func wafStage(c *config.WAF, wafs map[string]*waf.WAF) pipeline.Middleware {
	if c == nil {
		return nil
	}
	w := wafs[fmt.Sprintf("%+v", *c)]
	if w == nil {
		return nil // compile error reported with the route
	}
	return w.Middleware()
}

// validateStage builds a route's input checks. A route with an OpenAPI
// document gets the JSON syntax checks (one value, valid UTF-8, no
// duplicate member names) even without a validate section: the document's
// validator would judge the last copy of a duplicated member.
func validateStage(r config.Route) pipeline.Middleware {
	v := r.Validate
	if v == nil {
		if r.OpenAPI == nil {
			return nil
		}
		v = &config.Validate{}
	}
	o := validate.Options{ContentTypes: v.ContentTypes, MaxHeaders: v.MaxHeaders, MaxQueryParams: v.MaxQueryParams, JSON: r.OpenAPI != nil}
	if j := v.JSON; j != nil {
		o.JSON, o.MaxDepth, o.MaxElements, o.MaxStringLength = true, j.MaxDepth, j.MaxElements, j.MaxStringLength
		o.AllowDuplicateNames = j.AllowDuplicateNames
	}
	if m := v.Multipart; m != nil {
		o.Multipart, o.MaxParts, o.MaxPartBytes, o.PartTypes = true, m.MaxParts, int64(m.MaxPartBytes), m.FileTypes
	}
	return validate.New(o)
}

// keyParts maps configured key names to verified key sources; identity
// reports whether any needs the authenticated caller.
func keyParts(keys []string) (parts []ratelimit.Key, identity bool) {
	for _, s := range keys {
		k, _ := config.ParseLimitKey(s) // checked at load
		parts = append(parts, ratelimit.Key{Part: keyPart(k.Kind), Claim: k.Claim})
		identity = identity || k.Identity()
	}
	return parts, identity
}

// keyPart maps a config key kind to the limiter's key source.
func keyPart(kind string) ratelimit.KeyPart {
	switch kind {
	case config.LimitKeySubject:
		return ratelimit.KeySubject
	case config.LimitKeyAPIKey:
		return ratelimit.KeyAPIKey
	case config.LimitKeyClaim:
		return ratelimit.KeyClaim
	case config.LimitKeyRoute:
		return ratelimit.KeyRoute
	}
	return ratelimit.KeyClientIP
}

// quotaStage builds a route's quotas over the gateway's quota store.
func quotaStage(r config.Route, store ratelimit.QuotaStore, deps pipeline.Deps) pipeline.Middleware {
	var qs []ratelimit.Quota
	for _, q := range r.Quotas {
		cq := ratelimit.Quota{Name: q.Name, Limit: q.Limit, Monthly: q.Period == "month", Store: store, FailOpen: q.OnStoreError == "fail_open"}
		cq.Keys, _ = keyParts(q.Key)
		cq.FallbackToClientIP = q.OnMissingKey == "client_ip"
		qs = append(qs, cq)
	}
	return ratelimit.NewQuotas(r.ID, qs, deps.Now)
}

// stageError locates a stage's compile error inside the route.
type stageError struct {
	path string
	err  error
}

func (e *stageError) Error() string { return e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// compileRoute builds a route's chain. The order of stages is fixed here,
// in code, and never read from config; config only turns stages on and
// sets their parameters. TestGoldenPlan pins this order.
// p supplies the plan-wide compiled parts (issuers, introspectors, WAFs,
// OpenAPI documents).
func compileRoute(r config.Route, lp *listenerPlan, p *Plan, pool *proxy.Pool, apiKeys *authn.APIKeyMethod, jtis *authn.JTIStore, fwd proxy.Options, preLimit, limit, quota pipeline.Middleware, guard func() *abuse.Guard, deps pipeline.Deps) (*routePlan, error) {
	maxBody := lp.maxBody
	if r.MaxBodyBytes > 0 {
		maxBody = int64(r.MaxBodyBytes)
	}
	authorize, err := authz.New(r.Authorize)
	if err != nil {
		return nil, &stageError{path: "authorize", err: err}
	}
	stages := []stage{
		{"pre_limit", preLimit},
		{"authenticate", authStage(r, lp, p.issuers, p.intros, apiKeys, jtis, deps)},
		{"authorize", authorize},
		{"limit", limit},
		{"quota", quota},
		{"concurrency", ratelimit.NewConcurrency(int64(r.MaxInFlight))},
		{"body_limit", bodyLimit(maxBody)},
		{"validate", validateStage(r)},
		{"openapi", openapiStage(r, p.specs)},
		{"waf", wafStage(r.WAF, p.wafs)},
		{"abuse_account", accountStage(r.AbuseAccount, guard)},
	}
	rp := &routePlan{id: r.ID, sensitive: r.Sensitive}
	if rp.resp, err = respond.Compile(p.Config.ResponseHeaders, r.ResponseHeaders); err != nil {
		return nil, &stageError{path: "response_headers", err: err}
	}
	if rp.cors, err = cors.Compile(r.CORS, r.Methods); err != nil {
		return nil, &stageError{path: "cors", err: err}
	}
	if rp.cors != nil {
		rp.stages = append(rp.stages, "cors") // serveRoute: preflights answered before the chain
	}
	mws := make([]pipeline.Middleware, 0, len(stages))
	for _, s := range stages {
		if s.mw != nil {
			rp.stages = append(rp.stages, s.name)
			mws = append(mws, s.mw)
		}
	}
	rp.stages = append(rp.stages, "proxy")
	if fwd.Signer != nil {
		rp.stages = append(rp.stages[:len(rp.stages)-1], "sign_assertion", "proxy")
	}
	rp.handler = pipeline.Chain(proxy.NewHandler(r, pool, deps, fwd), mws...)
	return rp, nil
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

// fingerprint identifies an upstream's config, including secret values and
// the identity of files it reads, so that a changed CA bundle or client
// certificate builds a new pool on reload.
func fingerprint(u config.Upstream) (string, error) {
	b, err := json.Marshal(u)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(b)
	if u.Credential != nil {
		h.Write([]byte(u.Credential.Value.Reveal()))
	}
	for _, f := range []string{u.TLS.CAFile, u.TLS.CertFile, u.TLS.KeyFile} {
		if f == "" {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f, err)
		}
		fmt.Fprintf(h, "%s:%d:%d", f, st.Size(), st.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// closeNew closes the pools and key sets of p that prev does not share.
func (p *Plan) closeNew(prev *Plan) {
	for name, e := range p.pools {
		if prev == nil || prev.pools[name] != e {
			e.pool.Close()
		}
	}
	for name, e := range p.issuers {
		if prev == nil || prev.issuers[name] != e {
			e.close()
		}
	}
	for name, in := range p.intros {
		if prev == nil || prev.intros[name] != in {
			in.Close()
		}
	}
}

// start starts health checks and key fetching (idempotent).
func (p *Plan) start() {
	for _, e := range p.pools {
		e.pool.Start()
	}
	for _, e := range p.issuers {
		e.start()
	}
}

// Stages returns, per listener and route id, every stage a request on
// that route passes, in order: the admission stages (the table the handler
// walks), then the route's chain (the table compileRoute builds). The
// golden plan test prints it.
func (p *Plan) Stages() map[string]map[string][]string {
	out := map[string]map[string][]string{}
	for name, lp := range p.listeners {
		out[name] = map[string][]string{}
		for _, rp := range lp.routes {
			out[name][rp.id] = append(admissionNames(), rp.stages...)
		}
	}
	return out
}

// Check compiles cfg without binding anything, to find the problems that
// loading cannot see (unreadable certificates, CA bundles, key files).
func Check(cfg *config.Config) error {
	p, err := compile(cfg, pipeline.Deps{Log: slog.New(slog.DiscardHandler), Now: time.Now}, nil, authn.NewJTIStore(), ratelimit.NewLocal(1024), nil, ratelimit.NewLocalQuotas(), func() *abuse.Guard { return nil })
	if err != nil {
		return err
	}
	p.closeNew(nil)
	return nil
}
