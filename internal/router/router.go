package router

import (
	"fmt"
	"sort"
	"strings"
)

// Spec describes one route to compile. Paths must already be validated by
// config.CheckRoutePath.
type Spec[T any] struct {
	// ID names the route (for errors and the golden plan).
	ID string
	// Hosts are exact names or "*.domain"; empty matches any host.
	Hosts []string
	// Methods allowed; empty allows any.
	Methods []string
	// Path is an exact path or a template ("/users/{id}").
	Path string
	// Prefix matches a path and everything below it at a segment boundary.
	Prefix string
	// Value is returned on a match.
	Value T
}

// Result says how a match ended.
type Result int

// Match results.
const (
	Found Result = iota
	NotFound
	MethodNotAllowed
	UnknownHost
)

// Match is the outcome of Router.Match.
type Match[T any] struct {
	Result Result
	// Value of the matched route (Result == Found).
	Value T
	// ID of the matched route.
	ID string
	// Params are template parameters, decoded; nil when the route has none.
	Params map[string]string
	// Allow lists the methods that would have matched (MethodNotAllowed).
	Allow []string
}

type entry[T any] struct {
	spec     Spec[T]
	hosts    []hostPattern
	methods  []string
	kind     int // 3 exact, 2 template, 1 prefix
	exact    string
	prefix   string   // without trailing slash, "" for "/"
	segs     []string // template segments; "" marks a parameter
	params   []string // parameter names by position ("" for literals)
	literals int
	shape    string // 'L' literal / 'P' parameter per segment
	hostRank int
	index    int
}

// Router matches requests to routes. It is immutable after New and safe
// for concurrent use.
type Router[T any] struct {
	entries  []*entry[T]
	anyHost  bool
	hostless bool
}

// New compiles specs into a router. Precedence, most specific first:
// exact host over wildcard host over any host; then exact path over
// template over prefix; among templates, more literal segments, then
// literals further left; among prefixes, the longer; then a route that
// lists methods over one that does not; then config order.
func New[T any](specs []Spec[T]) (*Router[T], error) {
	rt := &Router[T]{}
	for i, s := range specs {
		e := &entry[T]{spec: s, methods: s.Methods, index: i}
		for _, h := range s.Hosts {
			hp := compileHost(h)
			e.hosts = append(e.hosts, hp)
			rank := 1
			if hp.suffix == "" {
				rank = 2
			}
			e.hostRank = max(e.hostRank, rank)
		}
		if len(s.Hosts) == 0 {
			rt.hostless = true
		}
		switch {
		case s.Prefix != "":
			e.kind = 1
			e.prefix = strings.TrimSuffix(s.Prefix, "/")
		case strings.Contains(s.Path, "{"):
			e.kind = 2
			for _, seg := range strings.Split(s.Path[1:], "/") {
				if strings.HasPrefix(seg, "{") {
					e.segs = append(e.segs, "")
					e.params = append(e.params, seg[1:len(seg)-1])
					e.shape += "P"
				} else {
					e.segs = append(e.segs, seg)
					e.params = append(e.params, "")
					e.literals++
					e.shape += "L"
				}
			}
		case s.Path != "":
			e.kind = 3
			e.exact = s.Path
		default:
			return nil, fmt.Errorf("route %q: no path or prefix", s.ID)
		}
		rt.entries = append(rt.entries, e)
	}
	sort.SliceStable(rt.entries, func(i, j int) bool { return more(rt.entries[i], rt.entries[j]) })
	return rt, nil
}

// more reports whether a is more specific than b.
func more[T any](a, b *entry[T]) bool {
	if a.hostRank != b.hostRank {
		return a.hostRank > b.hostRank
	}
	if a.kind != b.kind {
		return a.kind > b.kind
	}
	switch a.kind {
	case 2:
		if a.literals != b.literals {
			return a.literals > b.literals
		}
		if len(a.segs) != len(b.segs) {
			return len(a.segs) > len(b.segs)
		}
		if a.shape != b.shape {
			return a.shape < b.shape // 'L' < 'P': literals further left win
		}
	case 1:
		if len(a.prefix) != len(b.prefix) {
			return len(a.prefix) > len(b.prefix)
		}
	}
	if (len(a.methods) > 0) != (len(b.methods) > 0) {
		return len(a.methods) > 0
	}
	return a.index < b.index
}

// Order returns the route ids in precedence order (for the golden plan).
func (rt *Router[T]) Order() []string {
	ids := make([]string, len(rt.entries))
	for i, e := range rt.entries {
		ids[i] = e.spec.ID
	}
	return ids
}

// Match finds the most specific route for a canonical host (see
// CanonicalHost) and a normalised path (see Normalise).
func (rt *Router[T]) Match(host, method, path string) Match[T] {
	hostSeen := rt.hostless
	var allow []string
	for _, e := range rt.entries {
		if len(e.hosts) > 0 {
			if !e.matchHost(host) {
				continue
			}
			hostSeen = true
		}
		params, ok := e.matchPath(path)
		if !ok {
			continue
		}
		if !e.allows(method) {
			allow = appendNew(allow, e.methods)
			continue
		}
		return Match[T]{Result: Found, Value: e.spec.Value, ID: e.spec.ID, Params: params}
	}
	switch {
	case allow != nil:
		return Match[T]{Result: MethodNotAllowed, Allow: allow}
	case !hostSeen:
		return Match[T]{Result: UnknownHost}
	}
	return Match[T]{Result: NotFound}
}

func (e *entry[T]) matchHost(host string) bool {
	for _, h := range e.hosts {
		if h.match(host) {
			return true
		}
	}
	return false
}

func (e *entry[T]) allows(method string) bool {
	if len(e.methods) == 0 {
		// A route without a method list allows every method except
		// TRACE and CONNECT, which a route must list explicitly.
		return method != "TRACE" && method != "CONNECT"
	}
	for _, m := range e.methods {
		if m == method {
			return true
		}
	}
	return false
}

func (e *entry[T]) matchPath(path string) (map[string]string, bool) {
	switch e.kind {
	case 3:
		return nil, path == e.exact
	case 1:
		if !strings.HasPrefix(path, e.prefix) {
			return nil, false
		}
		rest := path[len(e.prefix):]
		return nil, rest == "" || rest[0] == '/'
	}
	rest := path[1:]
	var params map[string]string
	for i, lit := range e.segs {
		seg, tail, more := strings.Cut(rest, "/")
		last := i == len(e.segs)-1
		if last == more || seg == "" {
			return nil, false
		}
		if e.params[i] == "" {
			if seg != lit {
				return nil, false
			}
		} else {
			if params == nil {
				params = make(map[string]string, len(e.params))
			}
			params[e.params[i]] = Unescape(seg)
		}
		rest = tail
	}
	return params, true
}

func appendNew(list, add []string) []string {
	if list == nil {
		list = []string{}
	}
outer:
	for _, m := range add {
		for _, x := range list {
			if x == m {
				continue outer
			}
		}
		list = append(list, m)
	}
	return list
}

// Decision codes of a request the router refuses.
const (
	CodeNotFound         = "router.not_found"
	CodeUnknownHost      = "router.unknown_host"
	CodeMethodNotAllowed = "router.method_not_allowed"
)
