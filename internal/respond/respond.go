// Package respond is the response side of the gateway's policy: the
// secure headers every response carries (the service's and the gateway's
// own refusals alike) and the operator's response_headers (set, add,
// remove), compiled once per route.
package respond

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// The secure defaults. Shared, read-only value slices.
var (
	nosniff    = []string{"nosniff"}
	frameDeny  = []string{"DENY"}
	frameNone  = []string{"frame-ancestors 'none'"}
	noReferrer = []string{"no-referrer"}
	noStore    = []string{"no-store"}
)

// managed are headers the gateway owns: response_headers cannot touch
// them (framing, connection management, CORS which has its own section).
var managed = []string{"Connection", "Content-Length", "Transfer-Encoding", "Keep-Alive", "Proxy-Connection", "Trailer", "Upgrade", "Te", "Date", "X-Request-Id"}

type field struct {
	name   string
	values []string
}

// Policy is a compiled response header policy. Immutable; nil-safe: a nil
// Policy applies the defaults only.
type Policy struct {
	set    []field
	add    []field
	remove []string
}

// Compile merges the top-level and a route's response_headers (route
// entries win; removals add up) and checks them. Either may be nil; the
// result is nil when there is nothing beyond the defaults.
func Compile(top, route *config.ResponseHeaders) (*Policy, error) {
	p := &Policy{}
	for _, rh := range []*config.ResponseHeaders{top, route} {
		if rh == nil {
			continue
		}
		if err := p.merge(rh); err != nil {
			return nil, err
		}
	}
	if len(p.set) == 0 && len(p.add) == 0 && len(p.remove) == 0 {
		return nil, nil
	}
	return p, nil
}

func (p *Policy) merge(rh *config.ResponseHeaders) error {
	for _, name := range sortedKeys(rh.Set) {
		k, err := checkField("set", name, rh.Set[name])
		if err != nil {
			return err
		}
		p.set = slices.DeleteFunc(p.set, func(f field) bool { return f.name == k })
		p.set = append(p.set, field{k, []string{rh.Set[name]}})
	}
	for _, name := range sortedKeys(rh.Add) {
		k, err := checkField("add", name, rh.Add[name])
		if err != nil {
			return err
		}
		p.add = append(p.add, field{k, []string{rh.Add[name]}})
	}
	for _, name := range rh.Remove {
		k, err := checkField("remove", name, "")
		if err != nil {
			return err
		}
		if !slices.Contains(p.remove, k) {
			p.remove = append(p.remove, k)
		}
	}
	return nil
}

func checkField(op, name, value string) (string, error) {
	if !pipeline.ValidHeaderName(name) {
		return "", fmt.Errorf("%s: %q is not a header name", op, name)
	}
	k := http.CanonicalHeaderKey(name)
	if slices.Contains(managed, k) {
		return "", fmt.Errorf("%s: %s is managed by the gateway", op, k)
	}
	if strings.HasPrefix(k, "Access-Control-") {
		return "", fmt.Errorf("%s: %s: use the route's cors section", op, k)
	}
	if !pipeline.ValidHeaderValue(value) {
		return "", fmt.Errorf("%s: the value of %s holds control characters", op, k)
	}
	return k, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Apply writes the secure defaults into a response's headers, then the
// policy. authenticated says the request carried a verified identity: its
// response is then never stored by a shared cache unless it says so.
func (p *Policy) Apply(h http.Header, authenticated bool) {
	h["X-Content-Type-Options"] = nosniff
	_, xfo := h["X-Frame-Options"]
	_, csp := h["Content-Security-Policy"]
	if !xfo && !csp {
		h["X-Frame-Options"] = frameDeny
		h["Content-Security-Policy"] = frameNone
	}
	if _, ok := h["Referrer-Policy"]; !ok {
		h["Referrer-Policy"] = noReferrer
	}
	if authenticated {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = noStore
		}
	}
	if p == nil {
		return
	}
	for _, k := range p.remove {
		delete(h, k)
	}
	for _, f := range p.set {
		h[f.name] = f.values
	}
	for _, f := range p.add {
		h[f.name] = append(h[f.name][:len(h[f.name]):len(h[f.name])], f.values...)
	}
}
