package speclint

import (
	"errors"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/config"
)

// crossRules are the checks of a document against the route it is
// attached to: what the document promises against what the gateway
// enforces. They run with CrossCheck, not with Lint.
var crossRules = []rule{
	{"rampart:config-operation-not-routed", Warning, "every documented operation is served by a route the document is attached to",
		"widen the route's path, prefix or methods, or remove the operation from the document", nil},
	{"rampart:config-public-but-secured", Error, "an operation the document secures is not public at the gateway",
		"remove public: true and set the route's auth, or declare security: [] in the document", nil},
	{"rampart:config-scope-not-enforced", Warning, "scopes the document requires are enforced by the route",
		"add the scopes to the route's authorize (scopes_all or scopes_any)", nil},
	{"rampart:config-bola-hint", Warning, "object ids in paths are tied to the caller",
		"bind the path parameter to a claim (authorize.bind or cel), or mark it x-rampart-ownership: service once the service checks ownership", nil},
	{"rampart:config-shadow-passed", Warning, "undocumented operations are refused",
		"set openapi.undocumented: refuse once the document is complete", nil},
}

// CrossCheck compares a document (src, read from file) with the routes
// it is attached to — what it promises against what the gateway
// enforces: operations none of them serves, secured operations served by
// a public route, scopes a serving route does not enforce, object ids a
// serving route does not tie to the caller, and undocumented operations
// let through.
func CrossCheck(file string, src []byte, routes []config.Route, o Options) ([]Finding, error) {
	d, err := parse(file, src)
	if err != nil {
		return nil, err
	}
	var out []Finding
	add := func(id string, n *yaml.Node, ptr, msg string) {
		if slices.Contains(o.Disable, id) {
			return
		}
		for _, rl := range crossRules {
			if rl.id == id {
				out = append(out, Finding{Rule: id, Severity: rl.severity, File: file, Line: n.Line, Column: n.Column, Pointer: ptr,
					Message: msg, Fix: rl.fix})
			}
		}
	}
	bases := serverBases(d)
	for _, op := range d.operations() {
		crossOperation(d, op, bases, routes, add)
	}
	for _, r := range routes {
		if r.OpenAPI != nil && r.OpenAPI.Undocumented == "monitor" {
			add("rampart:config-shadow-passed", d.root, "", "route "+r.ID+" passes operations the document does not declare (undocumented: monitor)")
		}
	}
	Sort(out)
	return out, nil
}

// crossOperation checks one documented operation against the routes
// that serve it.
func crossOperation(d *doc, op operation, bases []string, routes []config.Route, add func(id string, n *yaml.Node, ptr, msg string)) {
	name := strings.ToUpper(op.method) + " " + op.path
	var serving []config.Route
	for _, r := range routes {
		for _, b := range bases {
			if r.Serves(op.method, b+op.path) {
				serving = append(serving, r)
				break
			}
		}
	}
	if len(serving) == 0 {
		add("rampart:config-operation-not-routed", op.node, op.ptr, name+" is documented but no route it is attached to serves it ("+routeIDs(routes)+")")
	}
	secured := !unprotected(d, op)
	for _, r := range serving {
		if secured && r.Public {
			add("rampart:config-public-but-secured", op.node, op.ptr, name+" requires authentication in the document but route "+r.ID+" is public")
		}
		if !r.Public {
			for _, s := range documentedScopes(d, op) {
				if a := r.Authorize; a == nil || (!slices.Contains(a.ScopesAll, s) && !slices.Contains(a.ScopesAny, s)) {
					add("rampart:config-scope-not-enforced", op.node, op.ptr, name+" requires scope "+s+" but route "+r.ID+" does not enforce it")
				}
			}
		}
		for _, p := range d.parameters(op) {
			pname := scalar(field(p, "name"))
			owned := scalar(field(p, "x-rampart-ownership")) == "service"
			if scalar(field(p, "in")) == "path" && idParam.MatchString(pname) && !owned && (r.Authorize == nil || !bound(r.Authorize, pname)) {
				add("rampart:config-bola-hint", p, op.ptr, name+": path parameter "+pname+" is not bound to the caller at route "+r.ID)
			}
		}
	}
}

func routeIDs(routes []config.Route) string {
	var ids []string
	for _, r := range routes {
		ids = append(ids, r.ID)
	}
	return strings.Join(ids, ", ")
}

// bound reports whether the route's policy ties path parameter name to
// the caller: bind maps it to a claim, or the CEL policy reads it.
func bound(a *config.Authorize, name string) bool {
	_, ok := a.Bind[name]
	return ok || (a.CEL != "" && strings.Contains(a.CEL, name))
}

// documentedScopes are the OAuth 2 / OIDC scopes of the first security
// requirement in force for op.
func documentedScopes(d *doc, op operation) []string {
	s := d.security(op)
	if s == nil || s.Kind != yaml.SequenceNode || len(s.Content) == 0 {
		return nil
	}
	var out []string
	pairs(s.Content[0], func(_, v *yaml.Node) {
		if v.Kind == yaml.SequenceNode {
			for _, sc := range v.Content {
				out = append(out, sc.Value)
			}
		}
	})
	return out
}

// serverBases are the base paths of the document's servers ("" for the
// root, and when there are none).
func serverBases(d *doc) []string {
	var out []string
	servers(d, func(s *yaml.Node, _ string) {
		u, err := url.Parse(scalar(field(s, "url")))
		if err == nil {
			out = append(out, strings.TrimSuffix(u.Path, "/"))
		}
	})
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

// Attached is the lint and the cross-check of one document attached to
// routes: its path as the config names it, the routes it is attached to
// (in config order) and the findings.
type Attached struct {
	Spec     string
	Routes   []config.Route
	Findings []Finding
}

// LintAttached lints every document the routes attach (once each, in
// the order the routes first name them), with its cross-check against
// the routes it is attached to. read reads a document; name is how its
// findings name the file. A document that cannot be read or parsed is
// left out and its error joined into the returned one.
func LintAttached(routes []config.Route, read func(string) ([]byte, error), name func(string) string, o Options) ([]Attached, error) {
	var out []Attached
	index := map[string]int{}
	for _, r := range routes {
		if r.OpenAPI == nil {
			continue
		}
		i, ok := index[r.OpenAPI.Spec]
		if !ok {
			i = len(out)
			index[r.OpenAPI.Spec] = i
			out = append(out, Attached{Spec: r.OpenAPI.Spec})
		}
		out[i].Routes = append(out[i].Routes, r)
	}
	var errs []error
	kept := out[:0]
	for _, a := range out {
		fs, err := lintOne(a, read, name(a.Spec), o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.Findings = fs
		kept = append(kept, a)
	}
	return kept, errors.Join(errs...)
}

// lintOne is the lint and cross-check of one attached document.
func lintOne(a Attached, read func(string) ([]byte, error), file string, o Options) ([]Finding, error) {
	src, err := read(a.Spec)
	if err != nil {
		return nil, err
	}
	lint, err := Lint(file, src, o)
	if err != nil {
		return nil, err
	}
	cross, err := CrossCheck(file, src, a.Routes, o)
	if err != nil {
		return nil, err
	}
	return append(lint, cross...), nil
}
