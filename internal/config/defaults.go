package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Defaults of every optional setting. docs/config.md quotes these values and
// a test keeps the two in step.
const (
	DefaultReadHeaderTimeout     = 5 * time.Second
	DefaultReadTimeout           = 30 * time.Second
	DefaultWriteTimeout          = 60 * time.Second
	DefaultIdleTimeout           = 120 * time.Second
	DefaultMaxHeaderBytes        = 64 << 10
	DefaultMaxConnections        = 10000
	DefaultMaxBodyBytes          = 1 << 20
	DefaultHSTSMaxAge            = 365 * 24 * time.Hour
	DefaultConnectTimeout        = 5 * time.Second
	DefaultResponseTimeout       = 30 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultMaxIdleConnsPerTarget = 256
	DefaultHealthInterval        = 10 * time.Second
	DefaultHealthTimeout         = 2 * time.Second
	DefaultHealthyThreshold      = 2
	DefaultUnhealthyThreshold    = 3
	DefaultPassiveFailures       = 5
	DefaultEjectFor              = 30 * time.Second
	DefaultBreakerFailures       = 20
	DefaultBreakerOpenFor        = 10 * time.Second
	DefaultRetryAttempts         = 2
	DefaultClockSkew             = 30 * time.Second
	MaxClockSkew                 = 5 * time.Minute
	DefaultJWKSRefresh           = 5 * time.Minute
	DefaultMinRefetch            = 30 * time.Second
	DefaultFetchTimeout          = 5 * time.Second
	DefaultIntrospectionTimeout  = 2 * time.Second
	DefaultIntrospectionCache    = 60 * time.Second
	DefaultIntrospectionNegCache = 10 * time.Second
	DefaultAssertionTTL          = 60 * time.Second
	DefaultOverloadMinLimit      = 2
	DefaultOverloadMaxLimit      = 1000
	DefaultOverloadTolerance     = 2.0
	DefaultOverloadQueue         = 16
	DefaultOverloadMaxWait       = 50 * time.Millisecond
	DefaultOverloadMinLatency    = 50 * time.Millisecond
)

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

func setBool(b **bool, def bool) {
	if *b == nil {
		v := def
		*b = &v
	}
}

func (c *Config) applyDefaults() {
	c.listenerDefaults()
	c.upstreamDefaults()
	for i := range c.Routes {
		c.routeDefaults(&c.Routes[i])
	}
	c.securityDefaults()
	c.observabilityDefaults()
	c.documentationDefaults()
}

func (c *Config) listenerDefaults() {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		lim := &l.Limits
		setDur(&lim.ReadHeaderTimeout, DefaultReadHeaderTimeout)
		setDur(&lim.ReadTimeout, DefaultReadTimeout)
		setDur(&lim.WriteTimeout, DefaultWriteTimeout)
		setDur(&lim.IdleTimeout, DefaultIdleTimeout)
		if lim.MaxHeaderBytes == 0 {
			lim.MaxHeaderBytes = DefaultMaxHeaderBytes
		}
		setInt(&lim.MaxConnections, DefaultMaxConnections)
		if lim.MaxBodyBytes == 0 {
			lim.MaxBodyBytes = DefaultMaxBodyBytes
		}
		if l.TLS != nil {
			setBool(&l.TLS.HSTS.Enabled, true)
			setBool(&l.TLS.HSTS.IncludeSubdomains, true)
			setDur(&l.TLS.HSTS.MaxAge, DefaultHSTSMaxAge)
			if a := l.TLS.ACME; a != nil {
				c.acmeDefaults(a)
			}
		}
	}
}

func (c *Config) acmeDefaults(a *ACME) {
	switch a.CA {
	case "", "letsencrypt":
		a.CA = ACMELetsEncrypt
	case "letsencrypt-staging":
		a.CA = ACMEStaging
	}
	if a.KeyType == "" {
		a.KeyType = "p256"
	}
	if a.Storage == "" {
		a.Storage = "file"
	}
	if a.StorageDir == "" && a.Storage == "file" {
		a.StorageDir = "acme"
	}
	if len(a.Challenges) == 0 {
		a.Challenges = []string{ChallengeTLSALPN01}
		if c.PlainListener() != nil {
			a.Challenges = append(a.Challenges, ChallengeHTTP01)
		}
	}
}

// PlainListener is the first listener without TLS (nil: none); it
// answers ACME http-01 challenges.
func (c *Config) PlainListener() *Listener {
	for i := range c.Listeners {
		if c.Listeners[i].TLS == nil {
			return &c.Listeners[i]
		}
	}
	return nil
}

func (c *Config) upstreamDefaults() {
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		if u.Balance == "" {
			u.Balance = "round_robin"
		}
		if u.Balance == "consistent_hash" && u.HashOn == "" {
			u.HashOn = "client_ip"
		}
		for j := range u.Targets {
			setInt(&u.Targets[j].Weight, 1)
		}
		setDur(&u.Timeouts.Connect, DefaultConnectTimeout)
		setDur(&u.Timeouts.Response, DefaultResponseTimeout)
		setDur(&u.Timeouts.Idle, DefaultIdleConnTimeout)
		setInt(&u.MaxIdleConnsPerTarget, DefaultMaxIdleConnsPerTarget)
		if h := u.HealthCheck; h != nil {
			setDur(&h.Interval, DefaultHealthInterval)
			setDur(&h.Timeout, DefaultHealthTimeout)
			setInt(&h.HealthyThreshold, DefaultHealthyThreshold)
			setInt(&h.UnhealthyThreshold, DefaultUnhealthyThreshold)
		}
		setBool(&u.Passive.Enabled, true)
		setInt(&u.Passive.ConsecutiveFailures, DefaultPassiveFailures)
		setDur(&u.Passive.EjectFor, DefaultEjectFor)
		if b := u.CircuitBreaker; b != nil {
			setInt(&b.ConsecutiveFailures, DefaultBreakerFailures)
			setDur(&b.OpenFor, DefaultBreakerOpenFor)
		}
	}
}

// limitDefaults fills a route's quotas and rate limits: names, keys,
// bursts, stores and failure policies.
func (c *Config) limitDefaults(r *Route) {
	for j := range r.Quotas {
		q := &r.Quotas[j]
		counterDefaults(&q.Name, "quota", j, &q.Key, LimitKeySubject, &q.OnStoreError, &q.OnMissingKey)
	}
	for j := range r.RateLimits {
		rl := &r.RateLimits[j]
		counterDefaults(&rl.Name, "limit", j, &rl.Key, LimitKeyClientIP, &rl.OnStoreError, &rl.OnMissingKey)
		if rl.Burst == 0 {
			rl.Burst = rl.Rate
		}
		for name, tier := range rl.Tiers {
			if tier.Burst == 0 {
				tier.Burst = tier.Rate
				rl.Tiers[name] = tier
			}
		}
		if rl.Store == "" {
			rl.Store = "local"
			if c.RateLimiting.Redis != nil {
				rl.Store = "redis"
			}
		}
	}
}

// counterDefaults fills what rate limits and quotas share: a name from
// the position, the key, and the failure policies (fail open while the
// store is down; refuse a request that lacks the key).
func counterDefaults(name *string, prefix string, j int, key *[]string, defKey string, onStoreError, onMissingKey *string) {
	if *name == "" {
		*name = fmt.Sprintf("%s%d", prefix, j)
	}
	if len(*key) == 0 {
		*key = []string{defKey}
	}
	if *onStoreError == "" {
		*onStoreError = "fail_open"
	}
	if *onMissingKey == "" {
		*onMissingKey = "refuse"
	}
}

func (c *Config) routeDefaults(r *Route) {
	setInt(&r.Retries.Attempts, DefaultRetryAttempts)
	if w := r.WAF; w != nil {
		setInt(&w.Paranoia, 1)
		setInt(&w.AnomalyThreshold, 5)
		setInt(&w.MaxArgs, 255)
		if w.BodyLimit == 0 {
			w.BodyLimit = 128 << 10
		}
	}
	if o := r.OpenAPI; o != nil {
		if o.Undocumented == "" {
			o.Undocumented = "refuse"
		}
		if o.Response == "" {
			o.Response = "off"
		}
		if o.MaxResponseBytes == 0 {
			o.MaxResponseBytes = 1 << 20
		}
	}
	if v := r.Validate; v != nil && v.Multipart != nil {
		setInt(&v.Multipart.MaxParts, 100)
	}
	if i := r.Idempotency; i != nil {
		c.idempotencyDefaults(i)
	}
	categoryDefaults(r)
	overloadDefaults(r)
	if v := r.Validate; v != nil && v.JSON != nil {
		setInt(&v.JSON.MaxDepth, 32)
		setInt(&v.JSON.MaxElements, 10000)
	}
	c.limitDefaults(r)
	if len(r.Retries.On) == 0 {
		r.Retries.On = []string{"connect_failure"}
	}
}

// securityDefaults fills authentication, assertion, abuse, decision
// fields and the client-keyed state.
func (c *Config) securityDefaults() {
	for i := range c.Authn.JWT {
		j := &c.Authn.JWT[i]
		setDur(&j.ClockSkew, DefaultClockSkew)
		setDur(&j.Refresh, DefaultJWKSRefresh)
		setDur(&j.MinRefetch, DefaultMinRefetch)
		setDur(&j.FetchTimeout, DefaultFetchTimeout)
	}
	for i := range c.Authn.Introspection {
		in := &c.Authn.Introspection[i]
		setDur(&in.Timeout, DefaultIntrospectionTimeout)
		setDur(&in.CacheTTL, DefaultIntrospectionCache)
		setDur(&in.NegativeCacheTTL, DefaultIntrospectionNegCache)
	}
	if k := c.Authn.APIKeys; k != nil && k.Header == "" {
		k.Header = "X-Api-Key"
	}
	if a := c.Assertion; a != nil {
		if a.Algorithm == "" {
			a.Algorithm = "EdDSA"
		}
		setDur(&a.TTL, DefaultAssertionTTL)
		if a.Header == "" {
			a.Header = "X-Rampart-Assertion"
		}
	}
	if c.Abuse != nil {
		c.Abuse.defaults()
	}
	if c.DecisionFields.Headers == nil {
		c.DecisionFields.Headers = []string{"X-Plan", "X-Tier", "X-Premium", "X-Is-Admin", "X-Admin", "X-Role", "X-Roles", "X-Scopes", "X-Account-Type", "X-Debug"}
	}
	if c.DecisionFields.QueryParams == nil {
		c.DecisionFields.QueryParams = []string{"is_admin", "admin", "role", "roles", "plan", "tier", "debug"}
	}
	if c.StripIdentityHeaders == nil {
		c.StripIdentityHeaders = []string{"X-Auth-*", "X-User-*", "X-Forwarded-User", "X-Remote-User", "X-Consumer-*"}
	}
}

// defaults fills the abuse section: the detectors, their keys and
// thresholds, the baselines.
func (a *Abuse) defaults() {
	setDur(&a.BanFor, 15*time.Minute)
	setInt(&a.MaxClients, 100000)
	if a.Action == "" {
		a.Action = "ban"
	}
	setInt(&a.CredentialStuffing.DistinctIPs, 5)
	setDur(&a.CredentialStuffing.Window, 10*time.Minute)
	setInt(&a.IdentitySpread.Addresses, 10)
	setInt(&a.IdentitySpread.Identities, 10)
	setDur(&a.IdentitySpread.Window, 10*time.Minute)
	setInt(&a.Scraping.Distinct, 1000)
	setDur(&a.Scraping.Window, 10*time.Minute)
	if a.Scraping.Action == "" {
		a.Scraping.Action = "flag"
	}
	if a.Scraping.Learned.Z == 0 {
		a.Scraping.Learned.Z = 6
	}
	setInt(&a.Scraping.Learned.Floor, 50)
	setInt(&a.Scraping.Learned.Windows, 50)
	if a.TightenTo == nil {
		a.TightenTo = &RateLimit{Rate: 1, Per: Duration(10 * time.Second)}
	}
	if a.TightenTo.Burst == 0 {
		a.TightenTo.Burst = a.TightenTo.Rate
	}
	for _, d := range []struct {
		det       *Detector
		threshold int
	}{{&a.BruteForce, 10}, {&a.Scanning, 50}, {&a.Enumeration, 30}, {&a.Fuzzing, 20}} {
		setInt(&d.det.Threshold, d.threshold)
		setDur(&d.det.Window, time.Minute)
		setInt(&d.det.SensitiveThreshold, max(1, (d.det.Threshold+1)/2))
		if d.det.Keys == nil {
			d.det.Keys = []string{"ip", "identity", "session"}
		}
	}
	if an := a.Anomaly; an != nil {
		setDur(&an.Interval, 10*time.Second)
		if an.Z == 0 {
			an.Z = 6
		}
		setInt(&an.MinRequests, 50)
		setInt(&an.Routes.MinRequests, 20)
		if an.Action == "" {
			an.Action = "log"
		}
	}

}

// documentationDefaults fills the journal, discovery and docs sections.
func (c *Config) documentationDefaults() {
	if j := c.Journal; j != nil {
		setInt(&j.CheckpointEvery, 100)
	}
	if d := c.Discovery; d != nil {
		if d.Sample == 0 {
			d.Sample = 0.01
		}
		setInt(&d.MaxOperations, 5000)
		setInt(&d.Queue, 1024)
		setDur(&d.Window, 24*time.Hour)
		if d.MaxBodyBytes == 0 {
			d.MaxBodyBytes = 64 << 10
		}
	}
	if d := c.Docs; d != nil {
		if d.Title == "" {
			d.Title = "API"
		}
		if d.Version == "" {
			d.Version = "1.0"
		}
		if d.Path == "" {
			d.Path = "/api-docs"
		}
	}
}

// observabilityDefaults fills rate-limit storage, access log, tracing,
// admin and the security event stream.
func (c *Config) observabilityDefaults() {
	if r := c.RateLimiting.Redis; r != nil {
		setDur(&r.Timeout, 100*time.Millisecond)
		if r.KeyPrefix == "" {
			r.KeyPrefix = "rampart:rl:"
		}
	}
	if c.ClientIP.IPv6Prefix == 0 {
		c.ClientIP.IPv6Prefix = c.RateLimiting.IPv6Prefix // its former place
	}
	setInt(&c.ClientIP.IPv6Prefix, 64)
	setInt(&c.RateLimiting.MaxKeys, 1000000)
	setBool(&c.AccessLog.Enabled, true)
	if t := c.Tracing; t != nil {
		if t.Protocol == "" {
			t.Protocol = "http"
		}
		if t.SampleRatio == nil {
			r := 0.01
			t.SampleRatio = &r
		}
		if t.TrustIncoming == "" {
			t.TrustIncoming = "trusted_proxies"
		}
		if t.ServiceName == "" {
			t.ServiceName = "rampart"
		}
	}
	if c.Admin != nil && c.Admin.Address == "" {
		c.Admin.Address = "127.0.0.1:9901"
	}
	setBool(&c.SecurityEvents.Enabled, true)
	if c.SecurityEvents.Output == "" {
		c.SecurityEvents.Output = "stdout"
	}
	setInt(&c.SecurityEvents.QueueSize, 10000)
	if w := c.SecurityEvents.Webhook; w != nil {
		setInt(&w.BatchSize, 100)
		setInt(&w.MaxRetries, 5)
		setInt(&w.QueueSize, 10000)
		if w.FlushInterval == 0 {
			w.FlushInterval = Duration(time.Second)
		}
		if w.Timeout == 0 {
			w.Timeout = Duration(5 * time.Second)
		}
	}
	if c.AccessLog.Output == "" {
		c.AccessLog.Output = "stdout"
	}
}

func (c *Config) idempotencyDefaults(i *Idempotency) {
	setDur(&i.TTL, 24*time.Hour)
	if i.Store == "" {
		i.Store = "local"
		if c.RateLimiting.Redis != nil {
			i.Store = "redis"
		}
	}
	if len(i.Methods) == 0 {
		i.Methods = []string{"POST", "PATCH"}
	}
	if i.MaxResponseBytes == 0 {
		i.MaxResponseBytes = 256 << 10
	}
	setInt(&i.MaxKeys, 100000)
	setInt(&i.MaxKeysPerCaller, 100)
	if i.MaxStoreBytes == 0 {
		i.MaxStoreBytes = 64 << 20
	}
}

// categoryDefaults infers a route's category when it names none, and
// sets the race defence its category implies.
func categoryDefaults(r *Route) {
	if r.Category == "" {
		r.Category = InferCategory(r.Path+r.Prefix, r.Methods)
	}
	if r.MaxInFlightPerIdentity == nil {
		n := 0
		if r.Category == "payment" {
			n = 1
		}
		r.MaxInFlightPerIdentity = &n
	}
	if r.Race == nil {
		switch r.Category {
		case "payment":
			r.Race = &Race{Action: "refuse"}
		case "write", "account", "admin":
			r.Race = &Race{Action: "flag"}
		default:
			r.Race = &Race{Action: "off"}
		}
	}
	if r.Race.Action == "" {
		r.Race.Action = "refuse"
	}
	setInt(&r.Race.Requests, 2)
	setDur(&r.Race.Window, time.Second)
}

// overloadDefaults turns shedding on with its default limits, except on
// streaming routes (a stream's duration is not a latency).
func overloadDefaults(r *Route) {
	if r.Overload == nil {
		r.Overload = &Overload{Off: r.Stream}
	}
	o := r.Overload
	setInt(&o.MinLimit, DefaultOverloadMinLimit)
	setInt(&o.MaxLimit, DefaultOverloadMaxLimit)
	if o.Tolerance == 0 {
		o.Tolerance = DefaultOverloadTolerance
	}
	if o.Queue == nil {
		q := DefaultOverloadQueue
		o.Queue = &q
	}
	setDur(&o.MaxWait, DefaultOverloadMaxWait)
	setDur(&o.MinLatency, DefaultOverloadMinLatency)
}

// Categories are the route categories (routes[].category), in the order
// the dashboard lists them.
var Categories = [...]string{"payment", "login", "account", "search", "static", "admin", "write", "read"}

// SensitiveCategory reports the categories whose routes the abuse
// detectors count apart, against their sensitive thresholds, as if
// marked sensitive: login, payment and admin.
func SensitiveCategory(c string) bool { return c == "login" || c == "payment" || c == "admin" }

// categoryWords name a category by a segment of the route's path.
var categoryWords = []struct {
	category string
	words    []string
}{
	{"payment", []string{"pay", "payment", "payments", "checkout", "charge", "charges", "redeem", "redemption", "transfer", "transfers", "withdraw", "refund", "refunds", "purchase", "billing", "invoice", "invoices", "wallet"}},
	{"login", []string{"login", "logon", "signin", "sign-in", "token", "oauth", "auth", "session", "sessions", "password", "otp", "mfa", "2fa"}},
	{"admin", []string{"admin", "internal", "manage", "management"}},
	{"account", []string{"account", "accounts", "me", "profile", "user", "users", "signup", "register"}},
	{"search", []string{"search", "find", "query", "lookup"}},
	{"static", []string{"static", "assets", "public", "images", "img", "css", "js", "fonts", "favicon.ico"}},
}

// InferCategory is the category of a route with this path (or prefix)
// and methods: the first category one of whose words is a segment of
// the path (payment before login before admin before account before
// search before static), else read when every method is safe (GET,
// HEAD, OPTIONS), else write.
func InferCategory(path string, methods []string) string {
	segs := strings.FieldsFunc(strings.ToLower(path), func(r rune) bool { return r == '/' || r == '.' || r == '_' })
	for _, cw := range categoryWords {
		for _, seg := range segs {
			if slices.Contains(cw.words, seg) {
				return cw.category
			}
		}
	}
	if len(methods) == 0 {
		return "write"
	}
	for _, m := range methods {
		if m != "GET" && m != "HEAD" && m != "OPTIONS" {
			return "write"
		}
	}
	return "read"
}
