// Package cors is the gateway's cross-origin policy for a route: it
// answers preflights itself (they never reach the service) and sets the
// CORS headers of responses, replacing any the service set.
//
// Security: the classic CORS mistakes are refused by construction.
// Origins are compared on the parsed origin (scheme, host, port), never by
// substring or regular expression on the raw header, so
// "https://example.com.evil.net" and "https://evil-example.com" match
// neither "https://example.com" nor "https://*.example.com"; the request's
// Origin is echoed only when it is allowed (no reflection); "null" is
// allowed only when listed; "*" never goes with credentials; and every
// response of a CORS route carries Vary: Origin, so that a cache never
// serves one origin's answer to another.
package cors

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Decision codes.
const (
	// CodePreflightRefused: a preflight from an origin, for a method or
	// with headers the route does not allow (403, no CORS headers).
	CodePreflightRefused = "cors.preflight_refused"
	// EventOriginRefused: a request with credentials from an origin the
	// route does not allow (security event; the browser gets no CORS
	// headers, so it withholds the response from the page).
	EventOriginRefused = "cors.origin_refused"
)

// DefaultMaxAge is how long browsers cache a preflight unless configured.
const DefaultMaxAge = 10 * time.Minute

// Policy is a compiled CORS section. Immutable.
type Policy struct {
	any         bool
	null        bool
	exact       map[origin]bool
	patterns    []pattern
	methods     map[string]bool
	allowMeth   []string // Access-Control-Allow-Methods value
	headers     map[string]bool
	expose      []string // Access-Control-Expose-Headers value, nil when none
	credentials bool
	maxAge      []string
}

// origin is a parsed origin: lower-case scheme and host, the port always
// present.
type origin struct{ scheme, host, port string }

// pattern is "scheme://*.suffix[:port]".
type pattern struct {
	scheme, suffix, port string // suffix with its leading dot
}

var (
	vary        = []string{"Origin"}
	trueValue   = []string{"true"}
	anyOrigin   = []string{"*"}
	errWildcard = errors.New(`credentials: true cannot go with origin "*" (any site could read answers sent with the user's cookies); list the origins`)
)

// Compile checks and compiles a route's CORS section; routeMethods are
// the route's methods (the default of methods).
func Compile(c *config.CORS, routeMethods []string) (*Policy, error) {
	if c == nil {
		return nil, nil
	}
	p := &Policy{exact: map[origin]bool{}, methods: map[string]bool{}, headers: map[string]bool{}, credentials: c.Credentials}
	if len(c.Origins) == 0 {
		return nil, errors.New("origins: at least one origin")
	}
	for _, o := range c.Origins {
		if err := p.addOrigin(o); err != nil {
			return nil, err
		}
	}
	if p.any && c.Credentials {
		return nil, errWildcard
	}
	methods := c.Methods
	if len(methods) == 0 {
		methods = routeMethods
	}
	if len(methods) == 0 {
		methods = []string{http.MethodGet, http.MethodHead, http.MethodPost}
	}
	for _, m := range methods {
		if !pipeline.ValidHeaderName(m) {
			return nil, fmt.Errorf("methods: %q is not a method", m)
		}
		p.methods[strings.ToUpper(m)] = true
	}
	p.allowMeth = []string{strings.ToUpper(strings.Join(methods, ", "))}
	for _, h := range c.Headers {
		if !pipeline.ValidHeaderName(h) {
			return nil, fmt.Errorf("headers: %q is not a header name", h)
		}
		p.headers[strings.ToLower(h)] = true
	}
	for _, h := range c.Expose {
		if !pipeline.ValidHeaderName(h) {
			return nil, fmt.Errorf("expose: %q is not a header name", h)
		}
	}
	if len(c.Expose) > 0 {
		p.expose = []string{strings.Join(c.Expose, ", ")}
	}
	age := c.MaxAge.D()
	if age == 0 {
		age = DefaultMaxAge
	}
	if age < 0 {
		return nil, errors.New("max_age: must not be negative")
	}
	p.maxAge = []string{strconv.Itoa(int(age / time.Second))}
	return p, nil
}

func (p *Policy) addOrigin(o string) error {
	switch o {
	case "*":
		p.any = true
		return nil
	case "null":
		p.null = true
		return nil
	}
	scheme, rest, ok := strings.Cut(o, "://")
	if ok && strings.HasPrefix(rest, "*.") {
		host, port, err := splitOrigin(scheme, rest[1:])
		if err != nil || strings.Count(host, ".") < 2 || strings.Contains(host, "..") {
			return fmt.Errorf("origins: %q: want https://*.example.com (a domain of at least two labels)", o)
		}
		p.patterns = append(p.patterns, pattern{scheme: scheme, suffix: host, port: port})
		return nil
	}
	c, ok := parse(o)
	if !ok {
		return fmt.Errorf("origins: %q is not an origin (scheme://host[:port], no path), \"*\", \"null\" or https://*.domain", o)
	}
	p.exact[c] = true
	return nil
}

// parse reads an origin: the form browsers send (lower case, no default
// port) without allocating, anything else through Canonical.
func parse(o string) (origin, bool) {
	if c, ok := simple(o); ok {
		return c, true
	}
	s, ok := Canonical(o)
	if !ok {
		return origin{}, false
	}
	scheme, rest, _ := strings.Cut(s, "://")
	i := strings.LastIndexByte(rest, ':')
	return origin{scheme, rest[:i], rest[i+1:]}, true
}

// simple parses "http(s)://host[:port]" with a host of lower-case letters,
// digits, '-' and inner dots only; it reports false for anything else
// (which Canonical then judges).
func simple(o string) (origin, bool) {
	var c origin
	switch {
	case strings.HasPrefix(o, "https://"):
		c.scheme, c.port, o = "https", "443", o[8:]
	case strings.HasPrefix(o, "http://"):
		c.scheme, c.port, o = "http", "80", o[7:]
	default:
		return c, false
	}
	c.host = o
	if i := strings.IndexByte(o, ':'); i >= 0 {
		c.host, c.port = o[:i], o[i+1:]
		n, ok := port(c.port)
		if !ok || (c.scheme == "https" && n == 443) || (c.scheme == "http" && n == 80) {
			return c, false // Canonical judges it, or spells the default port
		}
	}
	h := c.host
	if h == "" || h[0] == '.' || strings.Contains(h, "..") || !validHost(h) {
		return c, false
	}
	return c, true
}

// port reads a port number written without a leading zero.
func port(s string) (int, bool) {
	if len(s) == 0 || len(s) > 5 || s[0] == '0' {
		return 0, false
	}
	n := 0
	for j := 0; j < len(s); j++ {
		if s[j] < '0' || s[j] > '9' {
			return 0, false
		}
		n = n*10 + int(s[j]-'0')
	}
	return n, n <= 65535
}

// Canonical parses a serialised origin (RFC 6454) and returns it in one
// spelling: lower-case scheme and host, the port always present. It fails
// for anything that is not exactly scheme://host[:port].
func Canonical(o string) (string, bool) {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok {
		return "", false
	}
	host, port, err := splitOrigin(scheme, rest)
	if err != nil || strings.HasPrefix(host, ".") {
		return "", false
	}
	return strings.ToLower(scheme) + "://" + host + ":" + port, true
}

// splitOrigin parses "host[:port]" of an origin with the given scheme.
func splitOrigin(scheme, hostport string) (host, port string, err error) {
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return "", "", errors.New("scheme")
	}
	u, err := url.Parse(scheme + "://" + hostport)
	if err != nil || u.Host != hostport || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.ContainsAny(hostport, "/?#@\\ ") {
		return "", "", errors.New("not an origin")
	}
	host = strings.ToLower(u.Hostname())
	port = u.Port()
	if port == "" {
		port = "443"
		if scheme == "http" {
			port = "80"
		}
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
		return "", "", errors.New("port")
	}
	if !validHost(host) {
		return "", "", errors.New("host")
	}
	return host, port, nil
}

// validHost accepts an IP address or a name of lower-case letters,
// digits, '-' and dots (a leading dot marks a pattern's suffix).
func validHost(host string) bool {
	if host == "" || strings.HasSuffix(host, ".") {
		return false
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return net.ParseIP(host) != nil // an IPv6 literal
		}
	}
	return true
}

// Allowed reports whether a request's Origin header value is allowed.
func (p *Policy) Allowed(o string) bool {
	switch o {
	case "":
		return false
	case "null":
		return p.null
	}
	c, ok := parse(o)
	if !ok {
		return false
	}
	if p.any || p.exact[c] {
		return true
	}
	for _, pt := range p.patterns {
		// One or more labels before the suffix; never the bare domain.
		if pt.scheme == c.scheme && pt.port == c.port && len(c.host) > len(pt.suffix) && strings.HasSuffix(c.host, pt.suffix) {
			return true
		}
	}
	return false
}

// IsPreflight reports whether r is a CORS preflight: OPTIONS with an
// Origin and Access-Control-Request-Method.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// Preflight answers a preflight: 204 with the policy's headers when the
// origin, the method and every requested header are allowed; otherwise a
// 403 decision without CORS headers. It never reaches the service.
func (p *Policy) Preflight(w http.ResponseWriter, r *http.Request) error {
	origin := r.Header.Get("Origin")
	method := r.Header.Get("Access-Control-Request-Method")
	if !p.Allowed(origin) {
		return pipeline.Deny(http.StatusForbidden, CodePreflightRefused, "origin not allowed")
	}
	if !p.methods[method] {
		return pipeline.Deny(http.StatusForbidden, CodePreflightRefused, "method not allowed for cross-origin requests")
	}
	requested := r.Header.Values("Access-Control-Request-Headers")
	for _, list := range requested {
		for _, h := range strings.Split(list, ",") {
			if h = strings.TrimSpace(h); h != "" && !p.headers[strings.ToLower(h)] {
				return pipeline.Deny(http.StatusForbidden, CodePreflightRefused, "header not allowed for cross-origin requests")
			}
		}
	}
	h := w.Header()
	p.allowOrigin(h, origin)
	h["Access-Control-Allow-Methods"] = p.allowMeth
	if len(requested) > 0 {
		h["Access-Control-Allow-Headers"] = []string{strings.Join(requested, ", ")}
	}
	h["Access-Control-Max-Age"] = p.maxAge
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Decorate sets the CORS headers of a response to a request with the given
// Origin: Vary: Origin always; the origin, credentials and exposed headers
// only when the origin is allowed. CORS headers the service set are
// removed first: the route's policy is the gateway's.
func (p *Policy) Decorate(h http.Header, origin string) {
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(h, k)
		}
	}
	if !p.Allowed(origin) {
		addVary(h)
		return
	}
	p.allowOrigin(h, origin)
	if p.expose != nil {
		h["Access-Control-Expose-Headers"] = p.expose
	}
}

func (p *Policy) allowOrigin(h http.Header, origin string) {
	addVary(h)
	if p.any && !p.credentials {
		h["Access-Control-Allow-Origin"] = anyOrigin
		return
	}
	h["Access-Control-Allow-Origin"] = []string{origin}
	if p.credentials {
		h["Access-Control-Allow-Credentials"] = trueValue
	}
}

func addVary(h http.Header) {
	for _, v := range h["Vary"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, "Origin") {
				return
			}
		}
	}
	h["Vary"] = append(h["Vary"], vary...)
}
