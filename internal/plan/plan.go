// Package plan compiles a config into an immutable Plan: per listener its
// client-IP resolver, TLS and router, and per route its stage chain in
// the fixed order of the route stage table. Each capability package
// compiles its own config section (authn.Compile, waf.Compile, …); this
// package only puts the compiled parts in order. A Plan is read through
// an atomic pointer by the gateway and swapped whole on reload.
package plan

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/rampart-gw/rampart/internal/audit"

	"github.com/rampart-gw/rampart/internal/abuse"
	"github.com/rampart-gw/rampart/internal/apidocs"
	"github.com/rampart-gw/rampart/internal/assert"
	"github.com/rampart-gw/rampart/internal/authn"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/discovery"
	"github.com/rampart-gw/rampart/internal/idempotency"
	"github.com/rampart-gw/rampart/internal/ipfilter"
	"github.com/rampart-gw/rampart/internal/openapi"
	"github.com/rampart-gw/rampart/internal/overload"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/proxy"
	"github.com/rampart-gw/rampart/internal/ratelimit"
	"github.com/rampart-gw/rampart/internal/respond"
	"github.com/rampart-gw/rampart/internal/router"
	"github.com/rampart-gw/rampart/internal/store"
	"github.com/rampart-gw/rampart/internal/waf"
)

// Plan is a compiled config. It is immutable once built; requests read it
// through an atomic pointer and finish on the plan they started with.
type Plan struct {
	// Config is the config the plan was compiled from.
	Config        *config.Config
	listeners     map[string]*Listener
	pools         *proxy.Pools
	authn         *authn.Set
	signer        *assert.Signer
	decision      decisionFields
	wafs          *waf.Set      // reused across reloads (compiling the CRS takes a moment)
	specs         *openapi.Set  // reused across reloads while documents are unchanged
	overloads     *overload.Set // each route's shedding limiter, kept across reloads while its section is unchanged
	tighten       ratelimit.Limit
	sessionCookie string               // abuse.session_cookie ("": none)
	sessions      *abuse.SessionHasher // hashes its values
	resp          *respond.Policy      // response_headers of the gateway's own answers before routing
	jwksPath      string
	jwksRoute     *Route
	docs          *apidocs.Document // the published API document (nil without a docs section)
	access        []*ipfilter.Rules // every compiled access section (their file watchers)
	secrets       *store.Store      // the state store (nil without state.master_key): seals stored responses
	// Audit is the config graded against the eight practices (the
	// admin API's posture); with audit.fail_on, findings at or above it
	// that are not accepted refuse the config.
	Audit *audit.Report
}

// State is what a plan's stages use that outlives the plan: revocations
// and replay memory, rate-limit buckets and quota counts, the Redis
// client while its section is unchanged, and the abuse guard.
type State struct {
	JTIs   *authn.JTIStore
	Limits *ratelimit.Local
	Quotas *ratelimit.LocalQuotas
	Shared *ratelimit.Shared // nil without a redis section
	Guard  func() *abuse.Guard
	// Discovery is the API learner (nil until a config has a discovery
	// section); its model outlives plans.
	Discovery *discovery.Learner
	// CheckOnly compiles without writing anything (a config check): a
	// missing assertion key is not created.
	CheckOnly bool
	// idem are the routes' local Idempotency-Key stores, by route id:
	// keys outlive reloads.
	idem *idemStores
	// sessionKey hashes session cookies when no master key is configured
	// (random per process).
	sessionKey []byte
}

// idemStores are the local idempotency stores (shared by every copy of
// a State; used only while compiling, under the reload lock).
type idemStores struct {
	byRoute map[string]*idempotency.Local
}

// idempotencyStore returns route's local store, made on first use.
func (s *State) idempotencyStore(route string, limit, perCaller int, maxBytes int64, now func() time.Time) *idempotency.Local {
	if s.idem == nil {
		s.idem = &idemStores{byRoute: map[string]*idempotency.Local{}}
	}
	l := s.idem.byRoute[route]
	if l == nil {
		l = idempotency.NewLocal(limit, perCaller, maxBytes, now)
		s.idem.byRoute[route] = l
	}
	return l
}

// NewState makes the state of a first plan; guard returns the abuse guard
// (nil when detection is off).
func NewState(cfg *config.Config, deps pipeline.Deps, guard func() *abuse.Guard) *State {
	st := &State{JTIs: authn.NewJTIStore(), Limits: ratelimit.NewLocal(cfg.RateLimiting.MaxKeys),
		Quotas: ratelimit.NewLocalQuotas(cfg.RateLimiting.MaxKeys), Shared: ratelimit.OpenShared(cfg.RateLimiting.Redis, nil), Guard: guard,
		idem: &idemStores{byRoute: map[string]*idempotency.Local{}}, sessionKey: make([]byte, 32)}
	rand.Read(st.sessionKey) //nolint:errcheck // crypto/rand.Read never fails
	st.discover(cfg, deps)
	return st
}

// For returns the state for cfg: s itself, or a copy with a new Redis
// client when the redis section changed. The learner is started when a
// discovery section first appears, and keeps its model otherwise.
func (s *State) For(cfg *config.Config, deps pipeline.Deps) *State {
	s.discover(cfg, deps)
	shared := ratelimit.OpenShared(cfg.RateLimiting.Redis, s.Shared)
	if shared == s.Shared {
		return s
	}
	c := *s
	c.Shared = shared
	return &c
}

// discover starts or reconfigures the learner for cfg; its findings are
// security events.
func (s *State) discover(cfg *config.Config, deps pipeline.Deps) {
	d := cfg.Discovery
	if d == nil {
		return
	}
	settings := discovery.Settings{MaxOperations: d.MaxOperations, Window: d.Window.D()}
	if s.Discovery != nil {
		s.Discovery.Configure(settings)
		return
	}
	events := deps.Events
	s.Discovery = discovery.New(d.Queue, settings, deps.Now(), func(f discovery.Finding) {
		if events != nil {
			events.Emit(pipeline.Event{Time: deps.Now(), Name: "discovery.sensitive_data", Code: "discovery.sensitive_data",
				Route: f.Route, Method: f.Method, Path: f.Path, Reason: "a response carries " + f.Class.Description(),
				Attrs: map[string]string{"status": strconv.Itoa(f.Status), "pointer": f.Pointer, "class": string(f.Class)}})
		}
	})
}

// Release closes what s holds that keep (nil: nothing) does not share:
// the old Redis client once a reload replaced it, or the new one of a
// reload that failed.
func (s *State) Release(keep *State) {
	if keep == nil || keep.Shared != s.Shared {
		s.Shared.Close()
	}
}

// Compile builds a plan. Pools, key sets, WAFs and documents whose config
// is unchanged are taken from prev (nil: none), so health, ejection and
// breaker state survive reloads. New pools and key sets are created but
// not started: the caller starts the plan once it is accepted, and
// closes it (CloseUnshared) if it is not.
func Compile(cfg *config.Config, deps pipeline.Deps, prev *Plan, st *State) (*Plan, error) {
	p := &Plan{Config: cfg, listeners: map[string]*Listener{}}
	if prev == nil {
		prev = &Plan{}
	}
	var errs, e []error
	p.Audit = audit.Run(cfg, audit.Options{Now: deps.Now, Documents: os.ReadFile})
	if err := audit.Enforce(cfg, p.Audit); err != nil {
		errs = append(errs, err)
	}
	secrets, err := store.FromConfig(cfg.State)
	if err != nil {
		errs = append(errs, cfg.Problem("state.master_key", "%v", err))
	}
	p.secrets = secrets
	p.authn, e = authn.Compile(cfg, deps, prev.authn, secrets)
	errs = append(errs, e...)
	errs = append(errs, p.compileAssertion(cfg, !st.CheckOnly, secrets, deps.Now())...)
	if a := cfg.Abuse; a != nil && a.TightenTo != nil {
		p.tighten = ratelimit.LimitOf(a.TightenTo.Rate, a.TightenTo.Per, a.TightenTo.Burst)
	}
	if a := cfg.Abuse; a != nil && a.SessionCookie != "" {
		key := secrets.Derive("abuse session keys")
		if key == nil {
			key = st.sessionKey
		}
		p.sessionCookie, p.sessions = a.SessionCookie, abuse.NewSessionHasher(key)
	}
	p.decision = compileDecisionFields(cfg.DecisionFields)
	if p.resp, err = respond.Compile(cfg.ResponseHeaders, nil); err != nil {
		errs = append(errs, cfg.Problem("response_headers", "%v", err))
	}
	p.wafs, e = waf.Compile(cfg, deps.Events, prev.wafs)
	errs = append(errs, e...)
	p.specs, e = openapi.CompileRoutes(cfg, deps.Events, prev.specs)
	errs = append(errs, e...)
	p.overloads = overload.Compile(cfg, deps, prev.overloads)
	p.pools, e = proxy.CompilePools(cfg, deps, prev.pools)
	errs = append(errs, e...)
	if cfg.Docs != nil {
		if p.docs, err = apidocs.Build(cfg); err != nil {
			errs = append(errs, cfg.Problem("docs", "%v", err))
		}
	}
	for i, l := range cfg.Listeners {
		errs = append(errs, p.compileListener(cfg, i, l, deps, st)...)
	}
	if len(errs) == 0 {
		errs = p.compileACME(cfg, deps, prev, st, secrets)
	}
	if len(errs) > 0 {
		p.CloseUnshared(prev)
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// compileAssertion loads the assertion signer and its JWKS route.
func (p *Plan) compileAssertion(cfg *config.Config, create bool, secrets *store.Store, now time.Time) []error {
	a := cfg.Assertion
	if a == nil {
		return nil
	}
	signer, err := assert.Compile(a, create, secrets, now)
	if err != nil {
		return []error{cfg.Problem("assertion.key_file", "%v", err)}
	}
	p.signer = signer
	if a.JWKSPath != "" {
		p.jwksPath = a.JWKSPath
		p.jwksRoute = &Route{id: "rampart.jwks", stages: []string{"jwks"}, handler: signer.ServeJWKS(router.CodeMethodNotAllowed)}
	}
	return nil
}

// Check compiles cfg without binding anything, to find the problems that
// loading cannot see (unreadable certificates, CA bundles, key files).
func Check(cfg *config.Config) error {
	st := &State{JTIs: authn.NewJTIStore(), Limits: ratelimit.NewLocal(1024), Quotas: ratelimit.NewLocalQuotas(1024),
		Guard: func() *abuse.Guard { return nil }, CheckOnly: true}
	p, err := Compile(cfg, pipeline.Deps{Log: slog.New(slog.DiscardHandler), Now: time.Now}, nil, st)
	if err != nil {
		return err
	}
	p.CloseUnshared(nil)
	return nil
}

// Start starts health checks, key fetching and access-list watchers
// (idempotent).
func (p *Plan) Start() {
	p.overloads.Start()
	p.pools.Start()
	p.authn.Start()
	for _, r := range p.access {
		r.Start()
	}
	p.startACME()
}

// compileAccess compiles an access section (nil: none); the plan owns
// its list-file watcher.
func (p *Plan) compileAccess(a *config.Access, deps pipeline.Deps) (*ipfilter.Rules, error) {
	r, err := ipfilter.Compile(a, func(err error) {
		deps.Log.Warn("access list file not applied; the lists in force stay", "error", err.Error())
	})
	if r != nil {
		p.access = append(p.access, r)
	}
	return r, err
}

// CloseUnshared closes the pools, key sets and introspection clients of p
// that keep (nil: none) does not share.
func (p *Plan) CloseUnshared(keep *Plan) {
	if keep == nil {
		keep = &Plan{}
	}
	p.pools.CloseUnshared(keep.pools)
	p.authn.CloseUnshared(keep.authn)
	p.closeACME(keep)
	if keep != p {
		for _, r := range p.access { // never shared: compiled per plan
			r.Close()
		}
	}
}

// Listener returns a listener's plan (nil for an unknown name).
func (p *Plan) Listener(name string) *Listener { return p.listeners[name] }

// Listeners lists the listeners' names, sorted.
func (p *Plan) Listeners() []string {
	out := make([]string, 0, len(p.listeners))
	for n := range p.listeners {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Pools returns the upstream pools.
func (p *Plan) Pools() *proxy.Pools { return p.pools }

// Session is the keyed hash of r's session cookie (abuse.session_cookie),
// or "" when none is configured or sent.
func (p *Plan) Session(r *http.Request) string {
	if p.sessions == nil {
		return ""
	}
	c, err := r.Cookie(p.sessionCookie)
	if err != nil {
		return ""
	}
	return p.sessions.Hash(c.Value)
}

// Tighten is the limit of clients the abuse guard tightened (Rate 0: none).
func (p *Plan) Tighten() ratelimit.Limit { return p.tighten }

// Throttle is the tightened limit in limits, for abuse.Hold: every
// request allowed when the plan has none.
func (p *Plan) Throttle(limits ratelimit.Store) abuse.Throttle {
	limit := p.tighten
	return func(ctx context.Context, key string, now time.Time) (bool, time.Duration, error) {
		if limit.Rate <= 0 {
			return true, 0, nil
		}
		res, err := limits.Allow(ctx, key, limit, now)
		return res.Allowed, res.RetryAfter, err
	}
}

// StripDecisionFields removes client-controlled decision fields from r;
// when the config refuses them instead, it reports the first one found
// and false.
func (p *Plan) StripDecisionFields(r *http.Request) (string, bool) { return p.decision.apply(r) }

// Decorate applies the gateway's response hygiene (secure defaults, then
// response_headers) to one of its own answers before routing.
func (p *Plan) Decorate(h http.Header, authenticated bool) { p.resp.Apply(h, authenticated) }

// ErrRotationTooSoon refuses a key rotation within the previous one's
// overlap.
var ErrRotationTooSoon = assert.ErrTooSoon

// RotateAssertionKey retires the assertion signing key of cfg and writes
// a new one (see assert.Rotate); a plan compiled after it signs with the
// new key and still publishes the retired one.
func RotateAssertionKey(cfg *config.Config, now time.Time) (assert.Rotation, error) {
	if cfg.Assertion == nil {
		return assert.Rotation{}, errors.New("no assertion section")
	}
	secrets, err := store.FromConfig(cfg.State)
	if err != nil {
		return assert.Rotation{}, err
	}
	return assert.Rotate(cfg.Assertion, secrets, now)
}

// Discovered is what the learner of st has seen: the draft document
// learned from traffic and the report against the documents cfg attaches
// to its routes (an error when cfg has no discovery section).
func Discovered(st *State, cfg *config.Config, now time.Time) ([]byte, any, error) {
	if st.Discovery == nil || cfg.Discovery == nil {
		return nil, nil, errors.New("discovery is off: add a discovery section")
	}
	declared := map[string]discovery.Declared{}
	for _, r := range cfg.Routes {
		if r.OpenAPI == nil {
			continue
		}
		d, err := discovery.LoadDeclared(r.OpenAPI.Spec)
		if err != nil {
			return nil, nil, err
		}
		declared[r.ID] = d
	}
	return st.Discovery.Draft(), st.Discovery.Report(declared, now), nil
}
