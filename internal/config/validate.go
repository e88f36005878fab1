package config

import (
	"encoding/base64"
	"fmt"
	"maps"
	"mime"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (c *Config) validate(p *Problems) {
	c.validateVersion(p)
	listeners := c.validateListeners(p)
	upstreams := c.validateUpstreams(p)
	c.validateAssertion(p)
	c.validateDocs(p, listeners)
	c.validateDiscovery(p)
	c.validateAudit(p)
	c.validateRateLimiting(p)
	c.validateAbuse(p)
	c.warnResponseHeaders(c.ResponseHeaders, "response_headers")
	issuers := c.validateAuthn(p)
	c.validateRoutes(p, listeners, upstreams, issuers)
	c.validateAccessLog(p)
	c.validateFiles(p)
	c.validateAccess(p)
	c.validateState(p)
	if v := c.Vault; v != nil {
		if v.Token.IsSet() {
			c.checkSecret(p, "vault.token", v.Token, 0)
		}
		if a := v.AppRole; a != nil {
			c.checkSecret(p, "vault.approle.role_id", a.RoleID, 0)
			c.checkSecret(p, "vault.approle.secret_id", a.SecretID, 0)
		}
		if u, err := url.Parse(v.Address); err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
			p.Add("vault.address", "%q: use https:// (http only to a Vault on loopback)", v.Address)
		}
	}
	if j := c.Journal; j != nil && j.CheckpointKey.IsSet() {
		c.checkSecret(p, "journal.checkpoint_key", j.CheckpointKey, 32)
	}
}

// validateAdminPrincipals checks the admin listener's users: at least
// one, unique names and tokens, each token a long secret reference.
func (c *Config) validateAdminPrincipals(p *Problems, a *Admin) {
	if !a.Token.IsSet() && len(a.Principals) == 0 {
		p.Add("admin.token", "required (or admin.principals)")
		return
	}
	names, tokens, sans := map[string]bool{}, map[string]bool{}, map[string]bool{}
	if a.Token.IsSet() {
		c.checkSecret(p, "admin.token", a.Token, 32)
		names["admin"], tokens[a.Token.Reveal()] = true, true
	}
	for i, pr := range a.Principals {
		base := fmt.Sprintf("admin.principals[%d]", i)
		checkName(p, base+".name", pr.Name, "principal")
		if names[pr.Name] {
			p.Add(base+".name", "duplicate principal %q (admin.token is the principal \"admin\")", pr.Name)
		}
		names[pr.Name] = true
		c.checkPrincipalCredentials(p, base, pr, a, tokens, sans)
	}
}

// checkPrincipalCredentials checks a principal's token and client
// certificate name: at least one, neither shared with another principal,
// a certificate name only where the admin listener verifies client
// certificates.
func (c *Config) checkPrincipalCredentials(p *Problems, base string, pr AdminPrincipal, a *Admin, tokens, sans map[string]bool) {
	if !pr.Token.IsSet() && pr.ClientCertSAN == "" {
		p.Add(base+".token", "required (or client_cert_san)")
	}
	if pr.Token.IsSet() {
		c.checkSecret(p, base+".token", pr.Token, 32)
		if tokens[pr.Token.Reveal()] {
			p.Add(base+".token", "the same token as another principal")
		}
		tokens[pr.Token.Reveal()] = true
	}
	if san := pr.ClientCertSAN; san != "" {
		if a.TLS == nil || a.TLS.ClientCAFile == "" {
			p.Add(base+".client_cert_san", "needs admin.tls.client_ca_file (client certificates are verified against it)")
		}
		if sans[san] {
			p.Add(base+".client_cert_san", "the same certificate name as another principal")
		}
		sans[san] = true
	}
}

// isLoopbackHost reports whether host is localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateState checks the master keys; without a state section, a config
// that makes Rampart write secret state is warned.
func (c *Config) validateState(p *Problems) {
	st := c.State
	if st == nil {
		if c.Assertion != nil || c.Authn.APIKeys != nil {
			c.warn("state", "the assertion key and API key store are written unencrypted (0600); set state.master_key to encrypt them at rest")
		}
		return
	}
	keys := append([]Secret{st.MasterKey}, st.PreviousMasterKeys...)
	for i, k := range keys {
		path := "state.master_key"
		if i > 0 {
			path = fmt.Sprintf("state.previous_master_keys[%d]", i-1)
		}
		c.checkSecret(p, path, k, 0)
		if k.IsSet() {
			if _, err := DecodeMasterKey(k.Reveal()); err != nil {
				p.Add(path, "%v", err)
			}
		}
	}
}

// validateAccess checks every access section's addresses and prefixes.
func (c *Config) validateAccess(p *Problems) {
	check := func(base string, a *Access) {
		if a == nil {
			return
		}
		for _, l := range []struct {
			key  string
			list []string
		}{{"allow", a.Allow}, {"deny", a.Deny}} {
			for i, v := range l.list {
				if _, err := ParsePrefix(v); err != nil {
					p.Add(fmt.Sprintf("%s.access.%s[%d]", base, l.key, i), "%v", err)
				}
			}
		}
	}
	for i, l := range c.Listeners {
		check(fmt.Sprintf("listeners[%d]", i), l.Access)
	}
	for i, r := range c.Routes {
		check(fmt.Sprintf("routes[%d]", i), r.Access)
	}
	if c.Admin != nil {
		check("admin", c.Admin.Access)
	}
}

func (c *Config) validateVersion(p *Problems) {
	if c.Version != 1 {
		if c.Version == 0 {
			p.Add("version", "missing; set version: 1")
		} else {
			p.Add("version", "unsupported version %d (this release reads version 1)", c.Version)
		}
	}
}

func (c *Config) validateListeners(p *Problems) map[string]bool {
	if len(c.Listeners) == 0 {
		p.Add("listeners", "at least one listener is required")
	}
	listeners := map[string]bool{}
	addrs := map[string]string{}
	for i, l := range c.Listeners {
		base := fmt.Sprintf("listeners[%d]", i)
		checkName(p, base+".name", l.Name, "listener")
		if listeners[l.Name] {
			p.Add(base+".name", "duplicate listener name %q", l.Name)
		}
		listeners[l.Name] = true
		if _, port, err := net.SplitHostPort(l.Address); err != nil {
			p.Add(base+".address", "invalid address %q: want host:port", l.Address)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			p.Add(base+".address", "invalid port in %q", l.Address)
		} else if prev, dup := addrs[l.Address]; dup && n != 0 {
			p.Add(base+".address", "address %q is already used by listener %q", l.Address, prev)
		} else {
			addrs[l.Address] = l.Name
		}
		if t := l.TLS; t != nil {
			switch {
			case t.CertFile == "" && len(t.Certificates) == 0 && t.ACME == nil:
				p.Add(base+".tls.cert_file", "required for a TLS listener (or tls.certificates, or tls.acme)")
			case (t.CertFile == "") != (t.KeyFile == ""):
				p.Add(base+".tls.key_file", "cert_file and key_file go together")
			}
			if t.ACME != nil {
				c.validateACME(p, base+".tls.acme", l.Name, t.ACME)
			}
			if t.HSTS.MaxAge.D() > 0 && t.HSTS.MaxAge.D().Hours() < 24*180 && *t.HSTS.Enabled {
				c.warn(base+".tls.hsts.max_age", "HSTS max_age below 180 days weakens protection (scanners grade it down)")
			}
		}
		for j, cidr := range l.TrustedProxies {
			if _, err := ParsePrefix(cidr); err != nil {
				p.Add(fmt.Sprintf("%s.trusted_proxies[%d]", base, j), "%v", err)
			}
		}
		lim := l.Limits
		if lim.MaxHeaderBytes < 1024 {
			p.Add(base+".limits.max_header_bytes", "must be at least 1KiB")
		}
		if lim.MaxConnections < 1 {
			p.Add(base+".limits.max_connections", "must be positive")
		}
		if lim.MaxBodyBytes < 0 {
			p.Add(base+".limits.max_body_bytes", "must not be negative")
		}
	}
	return listeners
}

func (c *Config) validateUpstreams(p *Problems) map[string]bool {
	upstreams := map[string]bool{}
	for i, u := range c.Upstreams {
		base := fmt.Sprintf("upstreams[%d]", i)
		checkName(p, base+".name", u.Name, "upstream")
		if upstreams[u.Name] {
			p.Add(base+".name", "duplicate upstream name %q", u.Name)
		}
		upstreams[u.Name] = true
		c.validateUpstream(p, base, u)
	}
	return upstreams
}

func (c *Config) validateAssertion(p *Problems) {
	if a := c.Assertion; a != nil {
		if a.Issuer == "" {
			p.Add("assertion.issuer", "required")
		}
		if a.TTL.D() > 10*time.Minute || a.TTL.D() < time.Second {
			p.Add("assertion.ttl", "between 1s and 10m (assertions must be short-lived)")
		}
		if !isToken(a.Header) {
			p.Add("assertion.header", "invalid header name %q", a.Header)
		}
		if a.Reuse.D() > a.TTL.D()/2 {
			p.Add("assertion.reuse", "at most half the ttl (%s)", a.TTL.D()/2)
		}
		if a.JWKSPath != "" {
			if err := CheckRoutePath(a.JWKSPath, false); err != nil {
				p.Add("assertion.jwks_path", "%v", err)
			}
		}
	}
}

// validateDiscovery checks the sampling rates and bounds.
// auditRuleID is the shape of an audit rule id (RA-PRACTICE-NNN); the
// rules themselves are the audit package's.
var auditRuleID = regexp.MustCompile(`^RA-[A-Z]+-[0-9]{3}$`)

// validateAudit checks the audit section's acceptances: a rule id, a
// reason, a date, a route that exists.
func (c *Config) validateAudit(p *Problems) {
	if c.Audit == nil {
		return
	}
	for i, a := range c.Audit.Accept {
		base := fmt.Sprintf("audit.accept[%d]", i)
		if !auditRuleID.MatchString(a.Rule) {
			p.Add(base+".rule", "%q: want a rule id such as RA-RATE-002 (rampart audit --rules lists them)", a.Rule)
		}
		if strings.TrimSpace(a.Reason) == "" {
			p.Add(base+".reason", "say why the finding is accepted")
		}
		if _, ok := a.ExpiresAt(); !ok {
			p.Add(base+".expires", "%q: want a date, YYYY-MM-DD", a.Expires)
		}
		if a.Route != "" && !slices.ContainsFunc(c.Routes, func(r Route) bool { return r.ID == a.Route }) {
			c.warn(base+".route", "no route with id %q: the acceptance covers nothing", a.Route)
		}
	}
}

func (c *Config) validateDiscovery(p *Problems) {
	if d := c.Discovery; d != nil {
		if d.Sample < 0 || d.Sample > 1 {
			p.Add("discovery.sample", "a fraction between 0 and 1, got %v", d.Sample)
		}
		if d.MaxOperations < 10 || d.MaxOperations > 1_000_000 {
			p.Add("discovery.max_operations", "between 10 and 1000000")
		}
		if d.Queue < 1 || d.Queue > 1_000_000 {
			p.Add("discovery.queue", "between 1 and 1000000")
		}
		if d.MaxBodyBytes > 16<<20 {
			p.Add("discovery.max_body_bytes", "at most 16MiB")
		}
	}
	for i, r := range c.Routes {
		if rd := r.Discovery; rd != nil {
			if c.Discovery == nil {
				p.Add(fmt.Sprintf("routes[%d].discovery", i), "needs the discovery section")
			}
			if rd.Sample != nil && (*rd.Sample < 0 || *rd.Sample > 1) {
				p.Add(fmt.Sprintf("routes[%d].discovery.sample", i), "a fraction between 0 and 1")
			}
		}
	}
}

// validateDocs checks the docs section: its listeners exist, its path is
// a clean route path, its servers are absolute https URLs (http on
// loopback).
func (c *Config) validateDocs(p *Problems, listeners map[string]bool) {
	d := c.Docs
	if d == nil {
		return
	}
	for i, l := range d.Listeners {
		if !listeners[l] {
			p.Add(fmt.Sprintf("docs.listeners[%d]", i), "no listener named %q", l)
		}
	}
	if err := CheckRoutePath(d.Path, false); err != nil || strings.HasSuffix(d.Path, "/") {
		p.Add("docs.path", "a path such as /api-docs (no trailing slash)")
	}
	for i, s := range d.Servers {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
			p.Add(fmt.Sprintf("docs.servers[%d]", i), "an absolute https:// URL (http:// only on loopback), got %q", s)
		}
	}
}

func (c *Config) validateRateLimiting(p *Problems) {
	if r := c.RateLimiting.Redis; r != nil {
		if len(r.Addresses) == 0 {
			p.Add("rate_limiting.redis.addresses", "at least one address is required")
		}
		for i, a := range r.Addresses {
			if _, _, err := net.SplitHostPort(a); err != nil {
				p.Add(fmt.Sprintf("rate_limiting.redis.addresses[%d]", i), "invalid address %q: want host:port", a)
			}
		}
		if r.Password.IsSet() {
			c.checkSecret(p, "rate_limiting.redis.password", r.Password, 0)
		}
	}
	if v := c.ClientIP.IPv6Prefix; v < 32 || v > 128 {
		p.Add("client_ip.ipv6_prefix", "between 32 and 128")
	}
	if v := c.RateLimiting.IPv6Prefix; v != 0 {
		if v != c.ClientIP.IPv6Prefix {
			p.Add("rate_limiting.ipv6_prefix", "differs from client_ip.ipv6_prefix (%d); set only client_ip.ipv6_prefix", c.ClientIP.IPv6Prefix)
		} else {
			c.warn("rate_limiting.ipv6_prefix", "moved to client_ip.ipv6_prefix, which now also keys bans and detectors")
		}
	}
}

func (c *Config) validateAbuse(p *Problems) {
	if a := c.Abuse; a != nil {
		if a.MaxClients < 0 {
			p.Add("abuse.max_clients", "must be positive")
		}
		if t := a.TightenTo; t != nil && (t.Rate < 1 || t.Per.D() <= 0 || t.Burst < 1) {
			p.Add("abuse.tighten_to", "rate, per and burst must be positive")
		}
		for i, cidr := range a.Allow {
			if _, err := ParsePrefix(cidr); err != nil {
				p.Add(fmt.Sprintf("abuse.allow[%d]", i), "%v", err)
			}
		}
		if an := a.Anomaly; an != nil {
			if an.Z < 2 {
				p.Add("abuse.anomaly.z", "at least 2 (lower flags ordinary clients)")
			}
			if an.Interval.D() < 100*time.Millisecond {
				p.Add("abuse.anomaly.interval", "at least 100ms")
			}
		}
		if l := a.Scraping.Learned; !l.Disabled {
			if l.Z < 2 {
				p.Add("abuse.scraping.learned.z", "at least 2 (lower flags ordinary readers)")
			}
			if l.Floor < 1 || l.Windows < 1 {
				p.Add("abuse.scraping.learned", "floor and windows must be positive")
			}
		}
		for name, d := range map[string]Detector{"brute_force": a.BruteForce, "scanning": a.Scanning, "enumeration": a.Enumeration, "fuzzing": a.Fuzzing} {
			if d.Threshold < 1 {
				p.Add("abuse."+name+".threshold", "must be positive")
			}
		}
	}
}

// validateRoutes checks every route against the listeners, upstreams
// and issuers the config defines.
func (c *Config) validateRoutes(p *Problems, listeners, upstreams map[string]bool, issuers map[string]bool) {
	if len(c.Routes) == 0 {
		c.warn("routes", "no routes: every request will get 404")
	}
	ids := map[string]int{}
	type matchKey struct{ hosts, methods, path, prefix, listeners string }
	seen := map[matchKey]int{}
	for i, r := range c.Routes {
		base := fmt.Sprintf("routes[%d]", i)
		checkName(p, base+".id", r.ID, "route")
		if r.ID == NoRoute || strings.HasPrefix(r.ID, "rampart.") {
			p.Add(base+".id", "%q is reserved (logs and metrics name unrouted requests %q; rampart.* are the gateway's own)", r.ID, NoRoute)
		}
		if prev, dup := ids[r.ID]; dup && r.ID != "" {
			p.Add(base+".id", "duplicate route id %q (also routes[%d])", r.ID, prev)
		} else {
			ids[r.ID] = i
		}
		// Deny by default: a route authenticates its callers or says
		// explicitly that it is public.
		switch {
		case !r.Public && r.Auth == nil:
			p.Add(base, "route %q declares no authentication; add auth or set public: true (deny by default)", r.ID)
		case r.Public && r.Auth != nil:
			p.Add(base+".public", "route %q has both auth and public: true; choose one", r.ID)
		case r.Auth != nil:
			c.validateRouteAuth(p, base, r, issuers)
		}
		c.validateRouteLimits(p, base, r)
		c.validateRouteStages(p, base, i, r)
		switch {
		case r.Auth != nil && r.Authorize == nil:
			p.Add(base, "route %q authenticates but has no policy; add authorize (or authorize: any_authenticated) (deny by default)", r.ID)
		case r.Public && r.Authorize != nil:
			p.Add(base+".authorize", "a public route has no identity to authorize; remove authorize or add auth")
		case r.Authorize != nil:
			validateAuthorize(p, base+".authorize", r.Authorize, r, true)
			for _, h := range r.Authorize.Headers {
				c.warn(base+".authorize.headers", "the policy reads request header %s, which the client controls; decide on verified identity where you can", h)
			}
		}
		if r.Upstream == "" {
			p.Add(base+".upstream", "required")
		} else if !upstreams[r.Upstream] {
			msg := fmt.Sprintf("unknown upstream %q", r.Upstream)
			if s := suggest(r.Upstream, slices.Collect(maps.Keys(upstreams))); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.Add(base+".upstream", "%s", msg)
		}
		for j, ln := range r.Listeners {
			if !listeners[ln] {
				p.Add(fmt.Sprintf("%s.listeners[%d]", base, j), "unknown listener %q", ln)
			}
		}
		validateRouteMatch(p, base, r)
		k := matchKey{
			hosts:     strings.ToLower(strings.Join(sortedCopy(r.Hosts), ",")),
			methods:   strings.Join(sortedCopy(r.Methods), ","),
			path:      r.Path,
			prefix:    r.Prefix,
			listeners: strings.Join(sortedCopy(r.Listeners), ","),
		}
		if prev, dup := seen[k]; dup {
			p.Add(base, "route %q matches exactly the same requests as routes[%d] (%q); one of them would never be used", r.ID, prev, c.Routes[prev].ID)
		} else {
			seen[k] = i
		}
	}
}

// validateRouteLimits checks a route's rate limits and quotas.
func (c *Config) validateRouteLimits(p *Problems, base string, r Route) {
	for j, rl := range r.RateLimits {
		rp := fmt.Sprintf("%s.rate_limits[%d]", base, j)
		if rl.Rate < 1 {
			p.Add(rp+".rate", "must be positive")
		}
		if rl.Per.D() <= 0 {
			p.Add(rp+".per", "must be positive")
		} else if rl.Rate > 0 && rl.Per.D()/time.Duration(rl.Rate) <= 0 {
			p.Add(rp+".per", "rate too high for the period")
		}
		if rl.Burst < 1 {
			p.Add(rp+".burst", "must be positive")
		}
		if rl.Store == "redis" && c.RateLimiting.Redis == nil {
			p.Add(rp+".store", "rate_limiting.redis is not configured")
		}
		checkLimitKeys(p, rp, rl.Key, r)
		if (rl.TierClaim == "") != (len(rl.Tiers) == 0) {
			p.Add(rp+".tiers", "tier_claim and tiers go together")
		}
		if rl.TierClaim != "" && r.Auth == nil {
			p.Add(rp+".tier_claim", "tiers come from a verified claim: the route needs auth")
		}
		for name, tier := range rl.Tiers {
			if tier.Rate < 1 || tier.Per.D() <= 0 || tier.Burst < 1 {
				p.Add(rp+".tiers."+name, "rate, per and burst must be positive")
			}
		}
	}
	for j, q := range r.Quotas {
		qp := fmt.Sprintf("%s.quotas[%d]", base, j)
		if q.Limit < 1 {
			p.Add(qp+".limit", "must be positive")
		}
		checkLimitKeys(p, qp, q.Key, r)
	}
}

// validateRouteStages checks the sections that turn a route's input
// stages on: abuse_account, waf, openapi, validate, response headers.
func (c *Config) validateRouteStages(p *Problems, base string, i int, r Route) {
	if aa := r.AbuseAccount; aa != nil {
		if aa.JSONField == "" && aa.FormField == "" {
			p.Add(base+".abuse_account", "set json_field, form_field or both")
		}
		if c.Abuse == nil {
			p.Add(base+".abuse_account", "needs the abuse section")
		}
	}
	if w := r.WAF; w != nil {
		if w.Paranoia < 1 || w.Paranoia > 4 {
			p.Add(base+".waf.paranoia", "use 1 to 4")
		}
		if w.AnomalyThreshold < 1 {
			p.Add(base+".waf.anomaly_threshold", "must be positive")
		}
		if w.MaxArgs < 1 || w.MaxArgs > 10000 {
			p.Add(base+".waf.max_args", "use 1 to 10000")
		}
	}
	if o := r.OpenAPI; o != nil {
		if o.MaxResponseBytes < 0 {
			p.Add(base+".openapi.max_response_bytes", "must not be negative")
		}
	}
	c.warnResponseHeaders(r.ResponseHeaders, fmt.Sprintf("routes[%d].response_headers", i))
	if v := r.Validate; v != nil && v.JSON != nil && v.JSON.AllowDuplicateNames {
		c.warn(fmt.Sprintf("routes[%d].validate.json.allow_duplicate_names", i), "JSON bodies may name a member twice: the gateway's checks and the service may read different values")
	}
	if v := r.Validate; v != nil && v.Multipart != nil {
		validateMultipart(p, base+".validate.multipart", v.Multipart)
	}
	if r.PreserveHost && len(r.Hosts) == 0 {
		c.warn(base+".preserve_host", "the client's Host reaches the service unchecked on a route without hosts (links and cache keys a service builds from it can be poisoned); list the route's hosts")
	}
	if r.MaxInFlight < 0 {
		p.Add(base+".max_in_flight", "must not be negative")
	}
	if i := r.Idempotency; i != nil {
		c.validateIdempotency(p, base+".idempotency", i)
	}
	validateRaceDefence(p, base, r)
	validateOverload(p, base, r.Overload)
}

// validateRaceDefence checks a route's per-caller concurrency and race
// detector.
func validateRaceDefence(p *Problems, base string, r Route) {
	if n := r.MaxInFlightPerIdentity; n != nil && *n < 0 {
		p.Add(base+".max_in_flight_per_identity", "must not be negative")
	}
	if rc := r.Race; rc != nil && rc.Action != "off" {
		if rc.Requests < 2 {
			p.Add(base+".race.requests", "at least 2 (the first request is never a duplicate)")
		}
		if rc.Window.D() <= 0 || rc.Window.D() > time.Hour {
			p.Add(base+".race.window", "want a duration up to 1h")
		}
	}
}

// validateOverload checks a route's shedding limits.
func validateOverload(p *Problems, base string, o *Overload) {
	if o == nil || o.Off {
		return
	}
	if o.MinLimit < 1 {
		p.Add(base+".overload.min_limit", "at least 1")
	}
	if o.MaxLimit < o.MinLimit {
		p.Add(base+".overload.max_limit", "at least min_limit")
	}
	if o.Tolerance < 1.1 || o.Tolerance > 100 {
		p.Add(base+".overload.tolerance", "want between 1.1 and 100 (times the route's usual latency)")
	}
	if o.Queue != nil && *o.Queue < 0 {
		p.Add(base+".overload.queue", "must not be negative")
	}
	if o.MaxWait.D() < 0 || o.MaxWait.D() > 10*time.Second {
		p.Add(base+".overload.max_wait", "want a duration up to 10s")
	}
	if o.MinLatency.D() < 0 || o.MinLatency.D() > 10*time.Second {
		p.Add(base+".overload.min_latency", "want a duration up to 10s")
	}
}

// validateIdempotency checks a route's idempotency section.
func (c *Config) validateIdempotency(p *Problems, base string, i *Idempotency) {
	if i.Store == "redis" && c.RateLimiting.Redis == nil {
		p.Add(base+".store", "redis needs rate_limiting.redis")
	}
	if i.TTL.D() < time.Minute || i.TTL.D() > 30*24*time.Hour {
		p.Add(base+".ttl", "want between 1m and 30d")
	}
	for j, m := range i.Methods {
		if m == "GET" || m == "HEAD" || m == "OPTIONS" || m != strings.ToUpper(m) || m == "" {
			p.Add(fmt.Sprintf("%s.methods[%d]", base, j), "%q: want an upper-case method that changes state (POST, PATCH, PUT, DELETE)", m)
		}
	}
	if i.MaxResponseBytes < 0 || i.MaxResponseBytes > 16<<20 {
		p.Add(base+".max_response_bytes", "want at most 16MiB")
	}
	if i.MaxKeys < 1 {
		p.Add(base+".max_keys", "must be positive")
	}
	if i.MaxKeysPerCaller < 1 || i.MaxKeysPerCaller > i.MaxKeys {
		p.Add(base+".max_keys_per_caller", "want between 1 and max_keys")
	}
}

// validateMultipart checks a route's multipart limits.
func validateMultipart(p *Problems, base string, m *MultipartLimits) {
	if m.MaxParts < 1 {
		p.Add(base+".max_parts", "must be positive")
	}
	if m.MaxPartBytes < 0 {
		p.Add(base+".max_part_bytes", "must not be negative")
	}
	for i, t := range m.FileTypes {
		if mt, _, err := mime.ParseMediaType(t); err != nil || mt != strings.ToLower(t) || !strings.Contains(t, "/") {
			p.Add(fmt.Sprintf("%s.file_types[%d]", base, i), "not a media type (type/subtype, lower case)")
		}
	}
}

// validateRouteMatch checks what a route matches and how it retries.
func validateRouteMatch(p *Problems, base string, r Route) {
	switch {
	case r.Path == "" && r.Prefix == "":
		p.Add(base, "set path (exact or template) or prefix")
	case r.Path != "" && r.Prefix != "":
		p.Add(base+".prefix", "set either path or prefix, not both")
	case r.Path != "":
		if err := CheckRoutePath(r.Path, true); err != nil {
			p.Add(base+".path", "%v", err)
		}
	default:
		if err := CheckRoutePath(r.Prefix, false); err != nil {
			p.Add(base+".prefix", "%v", err)
		}
	}
	for j, h := range r.Hosts {
		if err := checkHostPattern(h); err != nil {
			p.Add(fmt.Sprintf("%s.hosts[%d]", base, j), "%v", err)
		}
	}
	methods := map[string]bool{}
	for j, m := range r.Methods {
		mp := fmt.Sprintf("%s.methods[%d]", base, j)
		switch {
		case !isToken(m):
			p.Add(mp, "invalid method %q", m)
		case methods[m]:
			p.Add(mp, "duplicate method %q", m)
		case m != strings.ToUpper(m):
			p.Add(mp, "method %q is not upper case; methods are case-sensitive, so it would never match a standard client", m)
		}
		methods[m] = true
	}
	if r.MaxBodyBytes < 0 {
		p.Add(base+".max_body_bytes", "must not be negative")
	}
	if r.Retries.Attempts < 1 || r.Retries.Attempts > 10 {
		p.Add(base+".retries.attempts", "must be between 1 and 10")
	}
}

// validateHealthCheck checks an upstream's active health check.
func validateHealthCheck(p *Problems, base string, h *HealthCheck) {
	if h == nil {
		return
	}
	if !strings.HasPrefix(h.Path, "/") {
		p.Add(base+".health_check.path", "must start with /")
	}
	if h.Timeout > h.Interval {
		p.Add(base+".health_check.timeout", "must not exceed the interval")
	}
	if h.HealthyThreshold < 1 {
		p.Add(base+".health_check.healthy_threshold", "must be positive")
	}
	if h.UnhealthyThreshold < 1 {
		p.Add(base+".health_check.unhealthy_threshold", "must be positive")
	}
	for j, s := range h.ExpectStatus {
		if s < 100 || s > 599 {
			p.Add(fmt.Sprintf("%s.health_check.expect_status[%d]", base, j), "invalid status %d", s)
		}
	}
}

func (c *Config) validateUpstream(p *Problems, base string, u Upstream) {
	if len(u.Targets) == 0 {
		p.Add(base+".targets", "at least one target is required")
	}
	for j, t := range u.Targets {
		tp := fmt.Sprintf("%s.targets[%d]", base, j)
		if t.Weight < 1 || t.Weight > 1000 {
			p.Add(tp+".weight", "must be between 1 and 1000")
		}
		if err := checkTargetURL(t.URL); err != nil {
			p.Add(tp+".url", "%v", err)
			continue
		}
		if strings.HasPrefix(t.URL, "http://") && !u.AllowPlaintext {
			p.Add(tp+".url", "plaintext target %q: use https:// or set allow_plaintext: true on the upstream", t.URL)
		}
	}
	if u.HashOn != "" {
		if u.Balance != "consistent_hash" {
			p.Add(base+".hash_on", "only used with balance: consistent_hash")
		}
		if h, ok := strings.CutPrefix(u.HashOn, "header:"); ok {
			if !isToken(h) {
				p.Add(base+".hash_on", "invalid header name %q", h)
			}
		} else if u.HashOn != "client_ip" && u.HashOn != "path" {
			p.Add(base+".hash_on", "unknown key %q (use client_ip, path or header:NAME)", u.HashOn)
		}
	}
	validateUpstreamTLS(p, base, u)
	validateHealthCheck(p, base, u.HealthCheck)
	if u.Passive.ConsecutiveFailures < 1 {
		p.Add(base+".passive.consecutive_failures", "must be positive")
	}
	if b := u.CircuitBreaker; b != nil && b.ConsecutiveFailures < 1 {
		p.Add(base+".circuit_breaker.consecutive_failures", "must be positive")
	}
	if u.MaxIdleConnsPerTarget < 0 || u.MaxConnsPerTarget < 0 {
		p.Add(base, "connection limits must not be negative")
	}
	if cr := u.Credential; cr != nil {
		c.checkCredential(p, base+".credential", *cr)
	}
}

// validateUpstreamTLS checks an upstream's tls section: client
// certificate and key together, the identity pins, and a section that
// some https:// target uses.
func validateUpstreamTLS(p *Problems, base string, u Upstream) {
	t := u.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.Add(base+".tls", "cert_file and key_file must be set together")
	}
	validateUpstreamIdentity(p, base+".tls", t)
	set := t.CAFile != "" || t.ServerName != "" || t.CertFile != "" || t.KeyFile != "" || t.SPIFFEID != "" || len(t.SPKISHA256) > 0
	if !set {
		return
	}
	for _, tg := range u.Targets {
		if strings.HasPrefix(tg.URL, "https://") {
			return
		}
	}
	p.Add(base+".tls", "tls is set but no target uses https://")
}

// validateUpstreamIdentity checks the identity pins: a spiffe:// URI
// with a trust domain, SHA-256 digests in base64.
func validateUpstreamIdentity(p *Problems, base string, t UpstreamTLS) {
	if id := t.SPIFFEID; id != "" {
		u, err := url.Parse(id)
		if err != nil || u.Scheme != "spiffe" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			p.Add(base+".spiffe_id", "a SPIFFE ID such as spiffe://example.org/orders, got %q", id)
		}
	}
	for i, pin := range t.SPKISHA256 {
		if b, err := base64.StdEncoding.DecodeString(pin); err != nil || len(b) != 32 {
			p.Add(fmt.Sprintf("%s.spki_sha256[%d]", base, i), "the base64 SHA-256 of a SubjectPublicKeyInfo (44 characters), got %q", pin)
		}
	}
}

// JWTAlgorithms are the JWS algorithms Rampart verifies ("none" is never
// one): the one list, for config checks and for the verifier.
var JWTAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS384", "HS512"}

func (c *Config) validateAuthn(p *Problems) map[string]bool {
	inNames := map[string]bool{}
	for i, in := range c.Authn.Introspection {
		base := fmt.Sprintf("authn.introspection[%d]", i)
		checkName(p, base+".name", in.Name, "introspection endpoint")
		if inNames[in.Name] {
			p.Add(base+".name", "duplicate name %q", in.Name)
		}
		inNames[in.Name] = true
		if err := CheckFetchURL(in.Endpoint, in.AllowPlaintext); err != nil {
			p.Add(base+".endpoint", "%v", err)
		}
		if in.ClientID == "" {
			p.Add(base+".client_id", "required")
		}
		c.checkSecret(p, base+".client_secret", in.ClientSecret, 0)
	}
	if k := c.Authn.APIKeys; k != nil {
		c.checkSecret(p, "authn.api_keys.secret", k.Secret, 32)
		if k.Header != "" && !isToken(k.Header) {
			p.Add("authn.api_keys.header", "invalid header name %q", k.Header)
		}
	}
	names := map[string]bool{}
	issuerIDs := map[string]string{}
	for i, j := range c.Authn.JWT {
		base := fmt.Sprintf("authn.jwt[%d]", i)
		checkName(p, base+".name", j.Name, "issuer")
		if names[j.Name] {
			p.Add(base+".name", "duplicate issuer name %q", j.Name)
		}
		names[j.Name] = true
		if j.Issuer == "" {
			p.Add(base+".issuer", "required: the exact iss of the tokens")
		} else if prev, dup := issuerIDs[j.Issuer]; dup {
			p.Add(base+".issuer", "issuer %q is already configured as %q", j.Issuer, prev)
		} else {
			issuerIDs[j.Issuer] = j.Name
		}
		c.validateIssuer(p, base, j)
	}
	return names
}

// validateIssuer checks one JWT issuer: audiences, algorithms, exactly
// one key source, fetch URLs and its static keys.
func (c *Config) validateIssuer(p *Problems, base string, j JWTIssuer) {
	if len(j.Audiences) == 0 {
		p.Add(base+".audiences", "at least one audience is required (RFC 8725 §3.9)")
	}
	for k, a := range j.Audiences {
		if a == "" {
			p.Add(fmt.Sprintf("%s.audiences[%d]", base, k), "empty audience")
		}
	}
	if len(j.Algorithms) == 0 {
		p.Add(base+".algorithms", "list the allowed algorithms explicitly")
	}
	hmacAlgs := 0
	for k, a := range j.Algorithms {
		if !slices.Contains(JWTAlgorithms, a) {
			p.Add(fmt.Sprintf("%s.algorithms[%d]", base, k), "unsupported algorithm %q (supported: %s)", a, strings.Join(JWTAlgorithms, ", "))
		}
		if strings.HasPrefix(a, "HS") {
			hmacAlgs++
		}
	}
	sources := 0
	for _, on := range []bool{j.JWKSURL != "", j.Discovery, len(j.Keys) > 0} {
		if on {
			sources++
		}
	}
	if sources != 1 {
		p.Add(base, "set exactly one key source: jwks_url, discovery or keys")
	}
	if hmacAlgs > 0 && len(j.Keys) == 0 {
		p.Add(base+".algorithms", "HS* algorithms need static keys with a secret")
	}
	if j.JWKSURL != "" {
		if err := CheckFetchURL(j.JWKSURL, j.AllowPlaintext); err != nil {
			p.Add(base+".jwks_url", "%v", err)
		}
	}
	if j.Discovery {
		if err := CheckFetchURL(j.Issuer, j.AllowPlaintext); err != nil {
			p.Add(base+".issuer", "discovery needs an https issuer URL: %v", err)
		}
	}
	if j.ClockSkew.D() > MaxClockSkew {
		p.Add(base+".clock_skew", "at most %s", MaxClockSkew)
	}
	if j.MinRefetch.D() < time.Second {
		p.Add(base+".min_refetch", "at least 1s")
	}
	c.validateIssuerKeys(p, base, j)
}

// validateIssuerKeys checks an issuer's static keys: HS* keys are
// referenced secrets of 32+ bytes, others are files.
func (c *Config) validateIssuerKeys(p *Problems, base string, j JWTIssuer) {
	for k, key := range j.Keys {
		kp := fmt.Sprintf("%s.keys[%d]", base, k)
		if !slices.Contains(j.Algorithms, key.Algorithm) {
			p.Add(kp+".algorithm", "%q is not in the issuer's algorithms", key.Algorithm)
		}
		isHMAC := strings.HasPrefix(key.Algorithm, "HS")
		switch {
		case isHMAC && key.File != "":
			p.Add(kp+".file", "an HS* key is a secret, not a file")
		case isHMAC && !key.Secret.IsSet():
			p.Add(kp+".secret", "required for %s", key.Algorithm)
		case isHMAC:
			c.checkSecret(p, kp+".secret", key.Secret, 32)
		case !isHMAC && key.File == "":
			p.Add(kp+".file", "required: a PEM public key, certificate or JWK")
		case !isHMAC && key.Secret.IsSet():
			p.Add(kp+".secret", "only HS* keys take a secret")
		}
	}
}

func (c *Config) validateRouteAuth(p *Problems, routeBase string, r Route, issuers map[string]bool) {
	a, base := r.Auth, routeBase+".auth"
	methods := 0
	if len(a.JWT) > 0 {
		methods++
	}
	if len(a.Introspection) > 0 {
		methods++
		known := map[string]bool{}
		for _, in := range c.Authn.Introspection {
			known[in.Name] = true
		}
		for i, n := range a.Introspection {
			if !known[n] {
				p.Add(fmt.Sprintf("%s.introspection[%d]", base, i), "unknown introspection endpoint %q", n)
			}
		}
	}
	if a.APIKey {
		methods++
		if c.Authn.APIKeys == nil {
			p.Add(base+".api_key", "authn.api_keys is not configured")
		}
	}
	if a.MTLS {
		methods++
		for _, l := range c.Listeners {
			if len(r.Listeners) > 0 && !slices.Contains(r.Listeners, l.Name) {
				continue
			}
			if l.TLS == nil || l.TLS.ClientCAFile == "" {
				p.Add(base+".mtls", "listener %q has no tls.client_ca_file; restrict the route to mTLS listeners with listeners:", l.Name)
			}
		}
	}
	switch {
	case methods == 0:
		p.Add(base, "name at least one authentication method (jwt, introspection, api_key, mtls)")
	case methods > 1 && a.Combine == "":
		p.Add(base+".combine", "several methods: say combine: any_of (one suffices) or all_of (all required)")
	}
	// NIST SP 800-204 MS-SS-1: an API key alone must not open a
	// sensitive route.
	if r.Sensitive && a.APIKey && (methods == 1 || a.Combine == "any_of") {
		p.Add(base+".api_key", "route %q is sensitive: API keys alone cannot authenticate it; use combine: all_of with a stronger method, or drop api_key", r.ID)
	}
	for i, n := range a.JWT {
		if !issuers[n] {
			msg := fmt.Sprintf("unknown issuer %q", n)
			if s := suggest(n, slices.Collect(maps.Keys(issuers))); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.Add(fmt.Sprintf("%s.jwt[%d]", base, i), "%s", msg)
		}
	}
}

func validateAuthorize(p *Problems, base string, a *Authorize, r Route, top bool) {
	conditions := len(a.ScopesAll) + len(a.ScopesAny) + len(a.RolesAll) + len(a.RolesAny) + len(a.Claims) + len(a.Bind) + len(a.Methods)
	if a.CEL != "" {
		conditions++
	}
	if a.AnyAuthenticated && conditions > 0 {
		p.Add(base, "any_authenticated cannot be combined with conditions")
	}
	if !a.AnyAuthenticated && conditions == 0 {
		p.Add(base, "empty policy; say any_authenticated to admit every authenticated caller")
	}
	params := map[string]bool{}
	for _, seg := range strings.Split(r.Path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			params[seg[1:len(seg)-1]] = true
		}
	}
	for param, claim := range a.Bind {
		if !params[param] {
			p.Add(base+".bind."+param, "route path %q has no parameter {%s}", r.Path, param)
		}
		if claim == "" {
			p.Add(base+".bind."+param, "name the claim to bind to (e.g. sub)")
		}
	}
	for claim, vals := range a.Claims {
		if len(vals) == 0 {
			p.Add(base+".claims."+claim, "list the allowed values")
		}
	}
	if a.CEL == "" && len(a.Headers) > 0 {
		p.Add(base+".headers", "only used by cel")
	}
	for m, sub := range a.Methods {
		mp := base + ".methods." + m
		if !top {
			p.Add(mp, "methods cannot be nested")
			continue
		}
		if !isToken(m) || m != strings.ToUpper(m) {
			p.Add(mp, "invalid method %q", m)
		}
		if len(r.Methods) > 0 && !slices.Contains(r.Methods, m) {
			p.Add(mp, "the route does not allow %s", m)
		}
		if sub == nil {
			p.Add(mp, "empty policy")
			continue
		}
		validateAuthorize(p, mp, sub, r, false)
	}
}

// checkLimitKeys checks the key parts and failure policy of a rate limit
// or quota: keys come from verified data only, so identity keys need an
// authenticated route.
func checkLimitKeys(p *Problems, base string, keys []string, r Route) {
	for k, part := range keys {
		kp := fmt.Sprintf("%s.key[%d]", base, k)
		key, ok := ParseLimitKey(part)
		switch {
		case !ok:
			p.Add(kp, "unknown key %q (use client_ip, subject, api_key, claim:NAME or route)", part)
		case key.Identity() && r.Auth == nil:
			p.Add(kp, "%q needs an authenticated route (keys come from verified data only)", part)
		}
	}
}

// checkSecret is the one rule for every secret field: required, at least
// minLen bytes when minLen > 0, and a reference (${env:NAME} or
// ${file:/path}, optionally after a fixed prefix), never a literal in the
// file. With LoadOptions.AllowLiteralSecrets (development only) a literal
// is a warning instead.
func (c *Config) checkSecret(p *Problems, path string, s Secret, minLen int) {
	switch {
	case !s.IsSet():
		p.Add(path, "required")
	case s.Literal() && c.opts.AllowLiteralSecrets:
		c.warn(path, "literal secret in config (allowed by --allow-literal-secrets; never in production)")
	case s.Literal():
		p.Add(path, "literal secret in config: use ${env:NAME} or ${file:/path}; for local development only, --allow-literal-secrets accepts it")
	case len(s.Reveal()) < minLen:
		p.Add(path, "must be at least %d bytes (it has %d; e.g. openssl rand -hex 32)", minLen, len(s.Reveal()))
	}
}

// CheckFetchURL is the rule for every URL the gateway fetches from
// (JWKS, OIDC discovery and the jwks_uri it names, introspection, the
// event webhook): https, or http only where the operator allowed
// plaintext.
func CheckFetchURL(raw string, allowPlaintext bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("invalid URL %q", raw)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowPlaintext:
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("%q is plaintext; use https:// (or allow_plaintext: true for a local development IdP)", raw)
	}
	return fmt.Errorf("%q: scheme must be https", raw)
}

func (c *Config) validateAccessLog(p *Problems) {
	out := c.AccessLog.Output
	if out != "stdout" && out != "stderr" && !strings.HasPrefix(out, "/") {
		p.Add("access_log.output", "use stdout, stderr or an absolute file path")
	}
	c.validateAdmin(p)
	c.validateTracing(p)
	c.validateSecurityEvents(p)
}

// validateAdmin checks the admin listener: loopback unless allowed, a
// referenced token of 32 bytes or more, an address of its own.
func (c *Config) validateAdmin(p *Problems) {
	if a := c.Admin; a != nil {
		host, _, err := net.SplitHostPort(a.Address)
		if err != nil {
			p.Add("admin.address", "invalid address %q: want host:port", a.Address)
		} else if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			switch {
			case !a.AllowRemote:
				p.Add("admin.address", "%q is not a loopback address; set allow_remote: true to expose the admin listener", a.Address)
			case a.TLS == nil:
				p.Add("admin.tls", "a non-loopback admin listener needs tls (its tokens would cross the network in the clear)")
			case a.TLS.ClientCAFile == "":
				c.warn("admin.tls.client_ca_file", "a non-loopback admin listener without client certificates (mTLS) relies on tokens alone")
			}
		}
		c.validateAdminPrincipals(p, a)
		for _, l := range c.Listeners {
			if l.Address == a.Address && !strings.HasSuffix(a.Address, ":0") {
				p.Add("admin.address", "also the address of listener %q", l.Name)
			}
		}
	}
}

func (c *Config) validateTracing(p *Problems) {
	if tr := c.Tracing; tr != nil {
		if _, _, err := net.SplitHostPort(tr.Endpoint); err != nil {
			p.Add("tracing.endpoint", "invalid endpoint %q: want host:port", tr.Endpoint)
		}
		if r := *tr.SampleRatio; r < 0 || r > 1 {
			p.Add("tracing.sample_ratio", "use 0 to 1")
		}
		for i, h := range tr.Headers {
			c.checkCredential(p, fmt.Sprintf("tracing.headers[%d]", i), h)
		}
	}
}

func (c *Config) validateSecurityEvents(p *Problems) {
	se := c.SecurityEvents
	if out := se.Output; out != "stdout" && out != "stderr" && out != "off" && !strings.HasPrefix(out, "/") {
		p.Add("security_events.output", "use stdout, stderr, off or an absolute file path")
	}
	if se.QueueSize < 1 {
		p.Add("security_events.queue_size", "must be positive")
	}
	if w := se.Webhook; w != nil {
		if err := CheckFetchURL(w.URL, w.AllowPlaintext); err != nil {
			p.Add("security_events.webhook.url", "%v", err)
		}
		if w.BatchSize < 1 || w.QueueSize < 1 || w.MaxRetries < 0 {
			p.Add("security_events.webhook", "batch_size and queue_size must be positive, max_retries not negative")
		}
		for i, h := range w.Headers {
			c.checkCredential(p, fmt.Sprintf("security_events.webhook.headers[%d]", i), h)
		}
	}
}

// checkCredential checks a header carrying a secret: a valid header name
// and a secret reference (a literal value is a warning).
func (c *Config) checkCredential(p *Problems, base string, h Credential) {
	if !isToken(h.Header) {
		p.Add(base+".header", "invalid header name %q", h.Header)
	}
	switch {
	case !h.Value.IsSet():
		p.Add(base+".value", "required")
	case strings.IndexFunc(h.Value.Reveal(), func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) >= 0:
		// Security: a header value cannot carry CR, LF or NUL (a secret
		// file with a second line); refused here, not on every request.
		p.Add(base+".value", "holds control characters (a second line?); a header value cannot carry them")
	default:
		c.checkSecret(p, base+".value", h.Value, 0)
	}
}

func (c *Config) warn(path, format string, args ...any) {
	c.Warnings = append(c.Warnings, c.Problem(path, format, args...))
}

func checkName(p *Problems, path, name, what string) {
	if name == "" {
		p.Add(path, "required")
		return
	}
	if len(name) > 64 {
		p.Add(path, "%s name longer than 64 characters", what)
		return
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			p.Add(path, "%s name %q may hold only letters, digits, '-', '_' and '.'", what, name)
			return
		}
	}
}

func checkTargetURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL %q", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("target %q must use http:// or https://", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("target %q has no host", raw)
	}
	if u.User != nil {
		return fmt.Errorf("target %q must not carry user info; use credential", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("target %q must not have a path, query or fragment", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("target %q has an invalid port", raw)
		}
	}
	return nil
}

// ParsePrefix parses a CIDR or a single address (a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP or CIDR %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// CheckRoutePath checks the syntax of a route path or prefix: absolute, in
// normalised form (no dot segments, no empty segments, no characters the
// gateway rejects in requests), with templates ({name}) only as whole
// segments and only when allowed.
func CheckRoutePath(path string, templates bool) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("%q must start with /", path)
	}
	names := map[string]bool{}
	segs := strings.Split(path[1:], "/")
	for i, seg := range segs {
		if seg == "" {
			if i == len(segs)-1 {
				continue // trailing slash
			}
			return fmt.Errorf("%q has an empty segment (//)", path)
		}
		if seg == "." || seg == ".." {
			return fmt.Errorf("%q has a dot segment", path)
		}
		if strings.ContainsAny(seg, "{}") {
			if !templates {
				return fmt.Errorf("%q: templates ({name}) are allowed only in path, not prefix", path)
			}
			name, ok := strings.CutPrefix(seg, "{")
			name, ok2 := strings.CutSuffix(name, "}")
			if !ok || !ok2 || name == "" || strings.ContainsAny(name, "{}") || !isIdent(name) {
				return fmt.Errorf("%q: segment %q must be a whole {name} with a name of letters, digits and '_'", path, seg)
			}
			if names[name] {
				return fmt.Errorf("%q: parameter {%s} appears twice", path, name)
			}
			names[name] = true
			continue
		}
		for j := 0; j < len(seg); j++ {
			ch := seg[j]
			if ch <= ' ' || ch >= 0x7f || strings.IndexByte("\\#?;%", ch) >= 0 {
				return fmt.Errorf("%q: character %q is not allowed in a route path", path, ch)
			}
		}
	}
	return nil
}

func checkHostPattern(h string) error {
	s := strings.TrimPrefix(h, "*.")
	if s == "" || strings.Contains(s, "*") {
		return fmt.Errorf("invalid host %q: use an exact name or *.domain", h)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == ':' || r == '[' || r == ']') {
			return fmt.Errorf("invalid host %q (no ports, schemes or paths)", h)
		}
	}
	if strings.HasSuffix(s, ".") || strings.HasPrefix(s, ".") || strings.Contains(s, "..") {
		return fmt.Errorf("invalid host %q", h)
	}
	return nil
}

func isIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}

// isToken reports whether s is an RFC 9110 token (method and header names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// SecureResponseHeaders are the headers the gateway sets on every
// response by default (see Config.ResponseHeaders); a response_headers
// section that changes one is reported, never silent.
var SecureResponseHeaders = []string{"X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy", "Referrer-Policy", "Cache-Control", "Strict-Transport-Security"}

// warnResponseHeaders reports every secure default a response_headers
// section changes.
func (c *Config) warnResponseHeaders(rh *ResponseHeaders, path string) {
	for _, w := range WeakenedDefaults(rh) {
		c.warn(path+"."+w.Key, "%s", w.Msg)
	}
}

// Weakening is a response-header change that weakens a secure default:
// the key that makes it (remove, set, add) and what it does.
type Weakening struct {
	Key, Header, Msg string
}

// WeakenedDefaults lists the secure default response headers that rh
// removes, replaces or adds to (rampart check warns; rampart audit
// reports).
func WeakenedDefaults(rh *ResponseHeaders) []Weakening {
	if rh == nil {
		return nil
	}
	has := func(m map[string]string, name string) bool {
		for k := range m {
			if strings.EqualFold(k, name) {
				return true
			}
		}
		return false
	}
	var out []Weakening
	for _, d := range SecureResponseHeaders {
		switch {
		case slices.ContainsFunc(rh.Remove, func(n string) bool { return strings.EqualFold(n, d) }):
			out = append(out, Weakening{"remove", d, "removes the secure default " + d})
		case has(rh.Set, d):
			out = append(out, Weakening{"set", d, "replaces the secure default " + d})
		case has(rh.Add, d):
			out = append(out, Weakening{"add", d, "adds to the secure default " + d})
		}
	}
	return out
}
