package router

import (
	"errors"
	"strings"
)

// ErrBadHost is returned for a Host value that is not a valid host[:port].
var ErrBadHost = errors.New("invalid host")

// CanonicalHost lower-cases host, strips the port and a trailing dot, and
// rejects anything that is not a plausible DNS name or IP literal. The
// result is what routing and logging see.
func CanonicalHost(host string) (string, error) {
	if host == "" {
		return "", ErrBadHost
	}
	h := host
	if h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", ErrBadHost
		}
		rest := h[end+1:]
		if rest != "" && !validPort(rest) {
			return "", ErrBadHost
		}
		h = h[:end+1]
		for i := 1; i < len(h)-1; i++ {
			c := h[i]
			if !(isHex(c) || c == ':' || c == '.') {
				return "", ErrBadHost
			}
		}
		return strings.ToLower(h), nil
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !validPort(h[i:]) {
			return "", ErrBadHost
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return "", ErrBadHost
	}
	lower := true
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		case c >= 'A' && c <= 'Z':
			lower = false
		default:
			return "", ErrBadHost
		}
	}
	if !lower {
		h = strings.ToLower(h)
	}
	return h, nil
}

func validPort(s string) bool {
	// s includes the leading ':'
	if len(s) < 2 || len(s) > 6 || s[0] != ':' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	_, ok := unhex(c)
	return ok
}

// hostPattern is a compiled route host: exact, or "*.suffix" matching
// exactly one extra label.
type hostPattern struct {
	exact  string
	suffix string // ".example.com" for "*.example.com"
}

func compileHost(h string) hostPattern {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if s, ok := strings.CutPrefix(h, "*"); ok {
		return hostPattern{suffix: s}
	}
	return hostPattern{exact: h}
}

func (p hostPattern) match(host string) bool {
	if p.suffix == "" {
		return host == p.exact
	}
	label, ok := strings.CutSuffix(host, p.suffix)
	return ok && label != "" && !strings.Contains(label, ".")
}

// Hosts is a compiled list of route hosts (exact names and "*.domain"
// patterns), matched the way the router matches them.
type Hosts []hostPattern

// CompileHosts compiles a route's hosts.
func CompileHosts(hosts []string) Hosts {
	out := make(Hosts, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, compileHost(h))
	}
	return out
}

// Match reports whether a request host (any spelling CanonicalHost
// accepts, port included) is one of the hosts.
func (hs Hosts) Match(host string) bool {
	if len(hs) == 0 {
		return false
	}
	c, err := CanonicalHost(host)
	if err != nil {
		return false
	}
	for _, p := range hs {
		if p.match(c) {
			return true
		}
	}
	return false
}
