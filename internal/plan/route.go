package plan

import (
	"net/http"

	"github.com/rampart-gw/rampart/internal/abuse"
	"github.com/rampart-gw/rampart/internal/authz"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/cors"
	"github.com/rampart-gw/rampart/internal/discovery"
	"github.com/rampart-gw/rampart/internal/idempotency"
	"github.com/rampart-gw/rampart/internal/observe"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/proxy"
	"github.com/rampart-gw/rampart/internal/race"
	"github.com/rampart-gw/rampart/internal/ratelimit"
	"github.com/rampart-gw/rampart/internal/respond"
	"github.com/rampart-gw/rampart/internal/validate"
	"github.com/redis/go-redis/v9"
)

// Route is one route's compiled chain and response policy.
type Route struct {
	id        string
	handler   pipeline.Handler
	stages    []string
	sensitive bool
	category  string          // what the route does (config.Route.Category)
	resp      *respond.Policy // response_headers (top-level and the route's); nil: defaults only
	cors      *cors.Policy    // nil: no CORS on the route
}

// routeStages is the fixed order of a route's chain, between routing and
// the proxy: the one source of that order. compileRoute builds every
// chain from it and the golden plan test prints what it built, so the
// order that runs and the order that is reviewed cannot differ. Config
// only turns stages on and sets their parameters; it never orders them.
//
// Security: the route's IP firewall first (the cheapest refusal); limits
// keyed by client IP or route come before authentication
// (cheap refusals first; floods of bad credentials are limited too);
// a route's excess load is shed next, before the stages that cost
// (authentication, validation, the WAF) and only after the limits that
// refuse a flooding client (its requests take no slot);
// identity-keyed limits and quotas after authorization; the body limit
// before anything that reads the body; the WAF after the cheaper
// structural checks; the account lock last, on a body already checked;
// discovery samples only what is about to be forwarded.
var routeStages = [...]struct {
	name    string // as the plan prints it
	section string // the route's config key, for compile errors
	build   func(*routeBuild) (pipeline.Middleware, error)
}{
	{"access", "access", (*routeBuild).access},
	{"pre_limit", "rate_limits", func(b *routeBuild) (pipeline.Middleware, error) { return b.preLimit, nil }},
	{"overload", "overload", func(b *routeBuild) (pipeline.Middleware, error) {
		return b.p.overloads.Stage(b.r), nil
	}},
	{"authenticate", "auth", (*routeBuild).authenticate},
	{"identity_ban", "auth", (*routeBuild).identityBan},
	{"authorize", "authorize", func(b *routeBuild) (pipeline.Middleware, error) { return authz.New(b.r.Authorize) }},
	{"limit", "rate_limits", func(b *routeBuild) (pipeline.Middleware, error) { return b.limit, nil }},
	{"quota", "quotas", (*routeBuild).quota},
	{"concurrency", "max_in_flight", func(b *routeBuild) (pipeline.Middleware, error) {
		return ratelimit.NewConcurrency(int64(b.r.MaxInFlight)), nil
	}},
	{"identity_concurrency", "max_in_flight_per_identity", func(b *routeBuild) (pipeline.Middleware, error) {
		return race.Concurrency(*b.r.MaxInFlightPerIdentity), nil
	}},
	{"body_limit", "max_body_bytes", (*routeBuild).bodyLimit},
	{"validate", "validate", func(b *routeBuild) (pipeline.Middleware, error) {
		return validate.Compile(b.r.Validate, b.r.OpenAPI != nil), nil
	}},
	{"openapi", "openapi", func(b *routeBuild) (pipeline.Middleware, error) { return b.p.specs.Stage(b.r), nil }},
	{"waf", "waf", func(b *routeBuild) (pipeline.Middleware, error) { return b.p.wafs.Stage(b.r.WAF), nil }},
	{"abuse_account", "abuse_account", func(b *routeBuild) (pipeline.Middleware, error) {
		return abuse.AccountStage(b.r.AbuseAccount, b.st.Guard), nil
	}},
	{"idempotency", "idempotency", (*routeBuild).idempotency},
	{"race", "race", (*routeBuild).race},
	{"discover", "discovery", func(b *routeBuild) (pipeline.Middleware, error) {
		return discovery.Stage(b.r, b.p.Config.Discovery, b.st.Discovery, b.deps.Now), nil
	}},
}

// routeBuild is what the route stages compile from.
type routeBuild struct {
	r               config.Route
	p               *Plan
	lp              *Listener
	st              *State
	deps            pipeline.Deps
	preLimit, limit pipeline.Middleware
}

func (b *routeBuild) access() (pipeline.Middleware, error) {
	r, err := b.p.compileAccess(b.r.Access, b.deps)
	return r.Stage(), err
}

func (b *routeBuild) authenticate() (pipeline.Middleware, error) {
	return b.p.authn.Stage(b.r.Auth, b.lp.revocations, b.st.JTIs, b.deps), nil
}

// identityBan refuses sanctioned identities on an authenticated route
// (when abuse detection is on).
func (b *routeBuild) identityBan() (pipeline.Middleware, error) {
	if b.r.Auth == nil || b.p.Config.Abuse == nil {
		return nil, nil
	}
	return abuse.IdentityStage(b.st.Guard, b.p.Throttle(b.st.Limits)), nil
}

func (b *routeBuild) quota() (pipeline.Middleware, error) {
	return ratelimit.QuotaStage(b.r, b.st.Shared.Quotas(b.st.Quotas), b.deps.Now), nil
}

// idempotency compiles the route's Idempotency-Key stage: its keys live
// in Redis or in a local store kept across reloads (per route).
func (b *routeBuild) idempotency() (pipeline.Middleware, error) {
	c := b.r.Idempotency
	if c == nil {
		return nil, nil
	}
	if c.Store != "redis" || b.st.Shared == nil {
		st := b.st.idempotencyStore(b.r.ID, c.MaxKeys, c.MaxKeysPerCaller, int64(c.MaxStoreBytes), b.deps.Now)
		return idempotency.Stage(b.r, st, b.p.secrets, nil), nil
	}
	batch, prefix := b.st.Shared.Batcher(), b.redisPrefix()
	var count *idempotency.Counting
	if _, cluster := batch.Client().(*redis.ClusterClient); !cluster && b.r.Race != nil && b.r.Race.Action != "off" {
		// The race detector counts in Redis too (race below): one script
		// claims the key and counts the request, a round trip saved. Not
		// with Redis Cluster, where the two keys may lie in other slots.
		route, counter := b.r.ID, race.NewRedis(batch, prefix)
		count = &idempotency.Counting{Key: func(r *http.Request, body []byte) string { return race.Key(route, r, body) },
			Where: counter.RedisKey, Window: b.r.Race.Window.D()}
	}
	return idempotency.Stage(b.r, idempotency.NewRedis(batch, prefix), b.p.secrets, count), nil
}

// redisPrefix is the key prefix of the shared Redis.
func (b *routeBuild) redisPrefix() string {
	if r := b.p.Config.RateLimiting.Redis; r != nil {
		return r.KeyPrefix
	}
	return ""
}

// race compiles the route's duplicate detector: counted in Redis when
// configured (shared by every instance), else in memory.
func (b *routeBuild) race() (pipeline.Middleware, error) {
	if b.r.Race == nil || b.r.Race.Action == "off" {
		return nil, nil
	}
	var c race.Counter
	if b.st.Shared != nil {
		c = race.NewRedis(b.st.Shared.Batcher(), b.redisPrefix())
	} else {
		c = race.NewLocal(raceKeys, b.deps.Now)
	}
	return race.Stage(b.r, c, b.deps.Events, b.deps.Now), nil
}

// raceKeys bounds a route's in-memory duplicate detector.
const raceKeys = 100000

func (b *routeBuild) bodyLimit() (pipeline.Middleware, error) {
	maxBody := b.lp.maxBody
	if b.r.MaxBodyBytes > 0 {
		maxBody = int64(b.r.MaxBodyBytes)
	}
	return validate.BodyLimit(maxBody), nil
}

// stageError locates a stage's compile error inside the route.
type stageError struct {
	path string
	err  error
}

func (e *stageError) Error() string { return e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

// compileRoute builds a route's chain from the route stage table, with
// the CORS preflight answer before it and the proxy (which signs the
// identity assertion) after it.
func (p *Plan) compileRoute(r config.Route, lp *Listener, pool *proxy.Pool, deps pipeline.Deps, st *State) (*Route, error) {
	b := &routeBuild{r: r, p: p, lp: lp, st: st, deps: deps}
	b.preLimit, b.limit = ratelimit.Stages(r, st.Limits, st.Shared, deps.Now)
	rt := &Route{id: r.ID, sensitive: r.Sensitive || config.SensitiveCategory(r.Category), category: r.Category}
	var err error
	if rt.resp, err = respond.Compile(p.Config.ResponseHeaders, r.ResponseHeaders); err != nil {
		return nil, &stageError{path: "response_headers", err: err}
	}
	if rt.cors, err = cors.Compile(r.CORS, r.Methods); err != nil {
		return nil, &stageError{path: "cors", err: err}
	}
	if rt.cors != nil {
		rt.stages = append(rt.stages, "cors") // preflights are answered before the chain
	}
	mws := make([]pipeline.Middleware, 0, len(routeStages))
	for _, s := range routeStages {
		mw, err := s.build(b)
		if err != nil {
			return nil, &stageError{path: s.section, err: err}
		}
		if mw != nil {
			rt.stages = append(rt.stages, s.name)
			mws = append(mws, mw)
		}
	}
	fwd := proxy.Options{StripIdentityHeaders: p.Config.StripIdentityHeaders, Now: deps.Now}
	if a := p.Config.Assertion; a != nil {
		fwd.AssertionHeader = a.Header // a client's value is removed even where nothing is signed
	}
	if p.signer != nil && !r.SkipAssertion {
		fwd.Signer = p.signer
		rt.stages = append(rt.stages, "sign_assertion")
	}
	rt.stages = append(rt.stages, "proxy")
	rt.handler = pipeline.Chain(proxy.NewHandler(r, pool, deps, fwd), mws...)
	return rt, nil
}

// ID is the route's id.
func (rt *Route) ID() string { return rt.id }

// Stages lists the route's stages in the order they run, from the CORS
// preflight answer to the proxy.
func (rt *Route) Stages() []string { return rt.stages }

// Sensitive reports whether the abuse detectors count this route apart
// (login, payment).
func (rt *Route) Sensitive() bool { return rt.sensitive }

// Category is what the route does (payment, login, ..., read).
func (rt *Route) Category() string { return rt.category }

// Handler runs the route's chain.
func (rt *Route) Handler() pipeline.Handler { return rt.handler }

// HasCORS reports whether the route has a CORS policy.
func (rt *Route) HasCORS() bool { return rt.cors != nil }

// IsPreflight reports whether r is a CORS preflight the route answers.
func (rt *Route) IsPreflight(r *http.Request) bool { return rt.cors != nil && cors.IsPreflight(r) }

// Preflight answers a CORS preflight (never forwarded).
func (rt *Route) Preflight(w http.ResponseWriter, r *http.Request) error {
	return rt.cors.Preflight(w, r)
}

// CheckOrigin reports a browser on a site the CORS policy does not allow
// that sent the user's credentials: it will not let the page read the
// answer, but the attempt is worth knowing about.
func (rt *Route) CheckOrigin(r *http.Request, origin string, events pipeline.Events) {
	if origin == "" || (r.Header.Get("Cookie") == "" && r.Header.Get("Authorization") == "") || rt.cors.Allowed(origin) {
		return
	}
	s := pipeline.ScopeOf(r.Context())
	events.Emit(pipeline.Event{Time: s.Start, Name: cors.EventOriginRefused, Code: cors.EventOriginRefused,
		RequestID: s.RequestID, Route: rt.id, ClientIP: s.ClientIPText, Method: r.Method, Host: s.Host, Path: s.Path,
		Attrs: map[string]string{"origin": observe.RedactText(origin)}})
}

// Decorate applies the route's response hygiene (secure defaults, then
// response_headers) to a response, and its CORS headers for origin when
// withCORS.
func (rt *Route) Decorate(h http.Header, authenticated, withCORS bool, origin string) {
	rt.resp.Apply(h, authenticated)
	if withCORS {
		rt.cors.Decorate(h, origin)
	}
}

// RouteStageNames lists the route stage table's names, in order.
func RouteStageNames() []string {
	out := make([]string, 0, len(routeStages))
	for _, s := range routeStages {
		out = append(out, s.name)
	}
	return out
}
