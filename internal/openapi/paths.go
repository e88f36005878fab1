package openapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

// pathEntry is one path template of the document.
type pathEntry struct {
	template string
	segs     []string // "" for a {parameter} segment
	params   []string // parameter names, by segment ("" for literals)
	literals int
	item     *openapi3.PathItem
}

// serverBases are the base paths the document's servers put before its
// paths (/v1 for "servers: [{url: /v1}]" or "https://api.example.com/v1");
// a request path is matched under one of them only, never also without
// it. No servers: the root.
func serverBases(doc *openapi3.T) ([]string, error) {
	if len(doc.Servers) == 0 {
		return []string{""}, nil
	}
	var out []string
	for _, s := range doc.Servers {
		p, err := s.BasePath()
		if err != nil {
			return nil, fmt.Errorf("server %q: %w", s.URL, err)
		}
		out = append(out, strings.TrimSuffix(p, "/"))
	}
	return out, nil
}

// compilePaths lists the path templates, those with more literal
// segments first (a concrete path matches before a templated one).
func compilePaths(doc *openapi3.T) []pathEntry {
	var out []pathEntry
	for tmpl, item := range doc.Paths.Map() {
		e := pathEntry{template: tmpl, item: item}
		for _, seg := range strings.Split(strings.TrimPrefix(tmpl, "/"), "/") {
			if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
				e.segs, e.params = append(e.segs, ""), append(e.params, seg[1:len(seg)-1])
				continue
			}
			e.segs, e.params = append(e.segs, seg), append(e.params, "")
			e.literals++
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].literals != out[j].literals {
			return out[i].literals > out[j].literals
		}
		return out[i].template < out[j].template
	})
	return out
}

// find matches a request path against the templates under the server
// bases.
func (s *Spec) find(path string) (*pathEntry, map[string]string) {
	for _, base := range s.bases {
		rest, ok := strings.CutPrefix(path, base)
		if !ok || (rest != "" && rest[0] != '/') {
			continue
		}
		segs := strings.Split(strings.TrimPrefix(rest, "/"), "/")
		for i := range s.paths {
			if params, ok := s.paths[i].match(segs); ok {
				return &s.paths[i], params
			}
		}
	}
	return nil, nil
}

// match matches the path segments; a parameter takes one non-empty
// segment.
func (e *pathEntry) match(segs []string) (map[string]string, bool) {
	if len(segs) != len(e.segs) {
		return nil, false
	}
	var params map[string]string
	for i, seg := range segs {
		switch {
		case e.params[i] != "" && seg != "":
			if params == nil {
				params = map[string]string{}
			}
			params[e.params[i]] = seg
		case e.params[i] != "" || seg != e.segs[i]:
			return nil, false
		}
	}
	return params, true
}

// match finds r's operation: the route and path parameters, or the status
// of an undocumented request (404 path, 405 method).
func (s *Spec) match(r *http.Request) (*routers.Route, map[string]string, int) {
	e, params := s.find(r.URL.Path)
	if e == nil {
		return nil, nil, http.StatusNotFound
	}
	op := e.item.GetOperation(r.Method)
	if op == nil {
		return nil, nil, http.StatusMethodNotAllowed
	}
	return &routers.Route{Spec: s.doc, Path: e.template, PathItem: e.item, Method: r.Method, Operation: op}, params, 0
}

// allowed lists the methods the document declares on r's path.
func (s *Spec) allowed(r *http.Request) string {
	e, _ := s.find(r.URL.Path)
	if e == nil {
		return ""
	}
	var m []string
	for _, name := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"} {
		if e.item.GetOperation(name) != nil {
			m = append(m, name)
		}
	}
	return strings.Join(m, ", ")
}

// baseURL is the location the document is read from, for its relative
// references.
func baseURL(dir string) *url.URL {
	if dir == "" {
		dir = "."
	}
	return &url.URL{Path: filepath.Join(dir, "openapi.yaml")}
}

// localFiles reads referenced documents from files under dir only:
// remote references are never fetched, and no reference leaves dir.
func localFiles(dir string) openapi3.ReadFromURIFunc {
	return func(_ *openapi3.Loader, u *url.URL) ([]byte, error) {
		if dir == "" {
			return nil, errors.New("references to other files are not allowed here")
		}
		if u.Scheme != "" || u.Host != "" {
			return nil, fmt.Errorf("remote reference %s: not fetched", u.Redacted())
		}
		root, _ := filepath.Abs(dir)
		p, _ := filepath.Abs(u.Path)
		if p != root && !strings.HasPrefix(p, root+string(filepath.Separator)) {
			return nil, fmt.Errorf("reference %s leaves the document's directory", u.Path)
		}
		return os.ReadFile(p)
	}
}

// schemaRoots lists the document's schemas: components, parameters,
// request bodies and responses.
func schemaRoots(doc *openapi3.T) []*openapi3.SchemaRef {
	var roots []*openapi3.SchemaRef
	params := func(ps openapi3.Parameters) {
		for _, p := range ps {
			if p.Value != nil {
				roots = append(roots, p.Value.Schema)
			}
		}
	}
	if doc.Components != nil {
		for _, s := range doc.Components.Schemas {
			roots = append(roots, s)
		}
	}
	for _, item := range doc.Paths.Map() {
		params(item.Parameters)
		for _, op := range item.Operations() {
			params(op.Parameters)
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for _, mt := range op.RequestBody.Value.Content {
					roots = append(roots, mt.Schema)
				}
			}
			if op.Responses == nil {
				continue
			}
			for _, resp := range op.Responses.Map() {
				if resp.Value != nil {
					for _, mt := range resp.Value.Content {
						roots = append(roots, mt.Schema)
					}
				}
			}
		}
	}
	return roots
}

// usesJSONSchema2020 reports whether any schema of the document uses a
// JSON Schema 2020-12 keyword that only the 2020-12 validator enforces
// (the keywords kin-openapi itself checks before falling back).
func usesJSONSchema2020(doc *openapi3.T) bool {
	found := false
	seen := map[*openapi3.Schema]bool{}
	for _, r := range schemaRoots(doc) {
		walk(r, seen, func(s *openapi3.Schema) {
			found = found || s.Const != nil || len(s.PrefixItems) != 0 || s.Contains != nil ||
				len(s.PatternProperties) != 0 || len(s.DependentSchemas) != 0 || s.PropertyNames != nil ||
				s.UnevaluatedItems.Has != nil || s.UnevaluatedItems.Schema != nil ||
				s.UnevaluatedProperties.Has != nil || s.UnevaluatedProperties.Schema != nil ||
				s.If != nil || s.Then != nil || s.Else != nil ||
				len(s.DependentRequired) != 0 || len(s.Defs) != 0 || s.ContentSchema != nil
		})
	}
	return found
}

// tightenDocument makes every object schema that does not say otherwise
// refuse undeclared properties (strict mode). Members of an allOf are
// left alone: each would refuse its siblings' properties.
func tightenDocument(doc *openapi3.T) {
	roots := schemaRoots(doc)
	composed := map[*openapi3.Schema]bool{}
	seen := map[*openapi3.Schema]bool{}
	for _, r := range roots {
		walk(r, seen, func(s *openapi3.Schema) {
			for _, m := range s.AllOf {
				if m != nil && m.Value != nil {
					composed[m.Value] = true
				}
			}
		})
	}
	seen = map[*openapi3.Schema]bool{}
	for _, r := range roots {
		walk(r, seen, func(s *openapi3.Schema) {
			if !composed[s] && len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
				no := false
				s.AdditionalProperties.Has = &no
			}
		})
	}
}

// walk calls f on every schema reachable from ref, once each.
func walk(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool, f func(*openapi3.Schema)) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	s := ref.Value
	seen[s] = true
	f(s)
	for _, p := range s.Properties {
		walk(p, seen, f)
	}
	walk(s.Items, seen, f)
	for _, list := range [][]*openapi3.SchemaRef{s.AllOf, s.AnyOf, s.OneOf} {
		for _, sub := range list {
			walk(sub, seen, f)
		}
	}
}
