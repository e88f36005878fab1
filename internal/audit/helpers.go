package audit

import (
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
)

// internalWords are path segments of routes that expose a service's
// internals rather than its API.
var internalWords = []string{"admin", "internal", "debug", "actuator", "metrics", "management", "manage", "console",
	"private", "pprof", "_debug", "_admin", "phpmyadmin", "env", "heapdump", "jolokia", "graphiql"}

// recoveryWords are path segments of account-recovery routes, which need
// a limit as much as a login does.
var recoveryWords = []string{"reset", "forgot", "forgot-password", "reset-password", "recover", "recovery", "password", "verify", "otp", "mfa"}

// segments are a route's path (or prefix) segments, lower case.
func segments(r config.Route) []string {
	return strings.FieldsFunc(strings.ToLower(r.Path+r.Prefix), func(c rune) bool { return c == '/' || c == '.' })
}

// hasSegment reports whether one of the route's segments is in words.
func hasSegment(r config.Route, words []string) (string, bool) {
	for _, s := range segments(r) {
		if slices.Contains(words, s) {
			return s, true
		}
	}
	return "", false
}

// sensitive reports routes the gateway treats as sensitive: marked so,
// or of the login, payment or admin category (named or inferred).
func sensitive(r config.Route) bool {
	return r.Sensitive || config.SensitiveCategory(r.Category)
}

// credentialRoute reports routes that take credentials or move money:
// login, account recovery, payment.
func credentialRoute(r config.Route) bool {
	_, recovery := hasSegment(r, recoveryWords)
	return r.Category == "login" || r.Category == "payment" || recovery
}

// changesState reports whether the route accepts a method that changes
// state (no methods: every method).
func changesState(r config.Route) bool {
	if len(r.Methods) == 0 {
		return true
	}
	return slices.ContainsFunc(r.Methods, func(m string) bool {
		return m != "GET" && m != "HEAD" && m != "OPTIONS"
	})
}

// takesBody reports whether the route accepts a method that carries a
// body (no methods: every method).
func takesBody(r config.Route) bool {
	if len(r.Methods) == 0 {
		return true
	}
	return slices.ContainsFunc(r.Methods, func(m string) bool { return m == "POST" || m == "PUT" || m == "PATCH" })
}

// authenticated reports whether the route names an authentication method.
func authenticated(r config.Route) bool { return r.Auth != nil }

// bearer reports whether the route accepts tokens (JWT or introspection).
func bearer(r config.Route) bool {
	return r.Auth != nil && (len(r.Auth.JWT) > 0 || len(r.Auth.Introspection) > 0)
}

// keyedBy reports whether one of the route's rate limits counts by kind
// (client_ip, subject, api_key, route, claim).
func keyedBy(r config.Route, kinds ...string) bool {
	for _, rl := range r.RateLimits {
		for _, k := range rl.Key {
			kind, _, _ := strings.Cut(k, ":")
			if slices.Contains(kinds, kind) {
				return true
			}
		}
	}
	return false
}

// loopbackAddress reports whether a listen address (host:port) binds
// only loopback; an empty host binds every interface.
func loopbackAddress(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	return loopbackHost(host)
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsLoopback()
}

// plaintextRemote reports whether rawURL is http:// to a host that is not
// loopback (or has no scheme and allowPlain says plaintext).
func plaintextRemote(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" {
		return false
	}
	return !loopbackHost(u.Hostname())
}

// privateRanges are the address ranges a proxy in front of the gateway
// normally has (RFC 1918, CGNAT, loopback, link-local, ULA).
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"),
}

// withinPrivate reports whether every address of p is in a private range.
func withinPrivate(p netip.Prefix) bool {
	return slices.ContainsFunc(privateRanges, func(q netip.Prefix) bool {
		return q.Contains(p.Addr()) && p.Bits() >= q.Bits()
	})
}

// bodyLimit is a route's body limit: its own, else its listeners'.
func bodyLimit(c *config.Config, r config.Route) config.ByteSize {
	if r.MaxBodyBytes > 0 {
		return r.MaxBodyBytes
	}
	return listenersBodyLimit(c, r)
}

// listenersBodyLimit is the largest body limit of the listeners a route
// is served on.
func listenersBodyLimit(c *config.Config, r config.Route) config.ByteSize {
	var most config.ByteSize
	for _, l := range c.Listeners {
		if len(r.Listeners) == 0 || slices.Contains(r.Listeners, l.Name) {
			most = max(most, l.Limits.MaxBodyBytes)
		}
	}
	return most
}
