// Package apidocs builds the one API document the gateway publishes: the
// OpenAPI documents attached to routes, merged under the public paths the
// gateway serves, with what the gateway enforces written in (security
// schemes from the routes' authentication, per-operation security and
// scopes from authorize, its own problem+json error responses and rate
// limit headers), skeleton operations for routes without a document, and
// nothing internal: no upstream addresses, no documents' servers, no
// hidden routes, no internal x- extensions.
package apidocs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Document is the published document in both encodings.
type Document struct {
	JSON, YAML []byte
	// Notes say what the merge renamed or left out, for the operator.
	Notes []string
}

type obj = map[string]any

// builder accumulates the merged document.
type builder struct {
	cfg        *config.Config
	paths      obj
	components obj // by kind: schemas, responses, parameters...
	schemes    obj // security schemes in use
	opIDs      map[string]bool
	notes      []string
	hide       []string
}

// Build compiles the published document of cfg (a docs section is not
// required: without one, defaults are used and nothing is served).
func Build(cfg *config.Config) (*Document, error) {
	d := cfg.Docs
	if d == nil {
		d = &config.Docs{Title: "API", Version: "1.0"}
	}
	b := &builder{cfg: cfg, paths: obj{}, components: obj{}, schemes: obj{}, opIDs: map[string]bool{}, hide: d.HideExtensions}
	attached, order := attachedDocuments(cfg)
	for _, file := range order {
		if err := b.mergeDocument(file, attached[file]); err != nil {
			return nil, err
		}
	}
	for _, r := range cfg.Routes {
		if r.OpenAPI == nil && r.Docs != "hidden" {
			b.skeleton(r)
		}
	}
	b.gatewayComponents()
	if len(b.schemes) > 0 {
		b.components["securitySchemes"] = b.schemes
	}
	info := obj{"title": d.Title, "version": d.Version}
	if d.Description != "" {
		info["description"] = d.Description
	}
	sections := []section{{"openapi", "3.1.0"}, {"info", info}}
	if len(d.Servers) > 0 {
		var servers []any
		for _, s := range d.Servers {
			servers = append(servers, obj{"url": s})
		}
		sections = append(sections, section{"servers", servers})
	}
	sections = append(sections, section{"paths", b.paths}, section{"components", b.components})
	js, ym, err := encode(sections)
	if err != nil {
		return nil, err
	}
	return &Document{JSON: js, YAML: ym, Notes: b.notes}, nil
}

// section is a top-level member of the document, in the order written.
type section struct {
	key string
	val any
}

// encode writes the sections in order (maps inside them sorted by key),
// as JSON and as YAML.
func encode(sections []section) ([]byte, []byte, error) {
	var js bytes.Buffer
	var root yaml.Node
	root.Kind = yaml.MappingNode
	js.WriteString("{\n")
	for i, s := range sections {
		v, err := json.MarshalIndent(s.val, "  ", "  ")
		if err != nil {
			return nil, nil, err
		}
		k, _ := json.Marshal(s.key)
		fmt.Fprintf(&js, "  %s: %s", k, v)
		if i < len(sections)-1 {
			js.WriteString(",")
		}
		js.WriteString("\n")
		var vn yaml.Node
		if err := vn.Encode(s.val); err != nil {
			return nil, nil, err
		}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: s.key}, &vn)
	}
	js.WriteString("}\n")
	var ym bytes.Buffer
	enc := yaml.NewEncoder(&ym)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, nil, err
	}
	return js.Bytes(), ym.Bytes(), enc.Close()
}

// attachedDocuments groups the visible routes by the document they
// attach, in config order.
func attachedDocuments(cfg *config.Config) (map[string][]config.Route, []string) {
	out := map[string][]config.Route{}
	var order []string
	for _, r := range cfg.Routes {
		if r.OpenAPI == nil || r.Docs == "hidden" {
			continue
		}
		if out[r.OpenAPI.Spec] == nil {
			order = append(order, r.OpenAPI.Spec)
		}
		out[r.OpenAPI.Spec] = append(out[r.OpenAPI.Spec], r)
	}
	return out, order
}

// load reads a document as plain JSON values.
func load(file string) (obj, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var y any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	js, err := json.Marshal(y)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var doc obj
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("%s: not an OpenAPI document", file)
	}
	return doc, nil
}

// mergeDocument adds the operations of one document that its visible
// routes serve, under their public paths, and its components (renamed on
// a conflict).
func (b *builder) mergeDocument(file string, routes []config.Route) error {
	doc, err := load(file)
	if err != nil {
		return err
	}
	prefix := camel(routes[0].ID)
	renames := b.mergeComponents(doc, prefix, filepath.Base(file))
	base := serverBase(doc)
	paths, _ := doc["paths"].(obj)
	for _, p := range sortedKeys(paths) {
		item, _ := paths[p].(obj)
		public := base + p
		for _, method := range []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"} {
			op, ok := item[method].(obj)
			if !ok {
				continue
			}
			r, ok := serving(routes, method, public)
			if !ok {
				b.note("%s: %s %s is served by none of its visible routes; left out", filepath.Base(file), strings.ToUpper(method), public)
				continue
			}
			op = rewriteRefs(op, renames).(obj)
			if params, ok := item["parameters"].([]any); ok {
				op["parameters"] = append(rewriteRefs(params, renames).([]any), asList(op["parameters"])...)
			}
			b.addOperation(public, method, op, r, prefix)
		}
	}
	return nil
}

func serving(routes []config.Route, method, path string) (config.Route, bool) {
	for _, r := range routes {
		if r.Serves(method, path) {
			return r, true
		}
	}
	return config.Route{}, false
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// addOperation puts an operation under the public path with the
// gateway's security and responses, and a unique operation id.
func (b *builder) addOperation(path, method string, op obj, r config.Route, prefix string) {
	item, _ := b.paths[path].(obj)
	if item == nil {
		item = obj{}
		b.paths[path] = item
	}
	if _, dup := item[method]; dup {
		b.note("%s %s is documented twice; the first is kept", strings.ToUpper(method), path)
		return
	}
	if id, ok := op["operationId"].(string); ok {
		if b.opIDs[id] {
			op["operationId"] = prefix + "_" + id
			b.note("operationId %s renamed %s (route %s)", id, op["operationId"], r.ID)
		}
		b.opIDs[op["operationId"].(string)] = true
	}
	op["security"] = b.security(r)
	b.addGatewayResponses(op, r)
	item[method] = b.strip(op)
}

func (b *builder) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

// serverBase is the path of the document's first server ("" when none
// or absolute without a path).
func serverBase(doc obj) string {
	servers, _ := doc["servers"].([]any)
	if len(servers) == 0 {
		return ""
	}
	s, _ := servers[0].(obj)
	u, _ := s["url"].(string)
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			u = rest[j:]
		} else {
			u = ""
		}
	}
	return strings.TrimSuffix(u, "/")
}

func sortedKeys(m obj) []string { return slices.Sorted(maps.Keys(m)) }

// camel turns a route id into a component prefix: orders-read → OrdersRead.
func camel(id string) string {
	var b strings.Builder
	up := true
	for _, c := range id {
		if c == '-' || c == '_' || c == '.' || c == ' ' {
			up = true
			continue
		}
		if up && c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up = false
		b.WriteRune(c)
	}
	return b.String()
}

// Serve answers GET and HEAD with the document in one encoding;
// methodNotAllowed is the decision code of other methods.
func Serve(body []byte, contentType, methodNotAllowed string) pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			e := pipeline.Deny(http.StatusMethodNotAllowed, methodNotAllowed, "method not allowed")
			e.Header = http.Header{"Allow": {"GET, HEAD"}}
			return e
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Access-Control-Allow-Origin", "*") // a public document, read by tools in browsers
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
		return nil
	}
}
