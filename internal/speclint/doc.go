package speclint

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// doc is an OpenAPI document as parsed YAML (JSON is YAML), so that every
// finding keeps the line and column of the node it is about.
type doc struct {
	file string
	root *yaml.Node // the top-level mapping
	v31  bool       // OpenAPI 3.1 (JSON Schema 2020-12)
}

// parse reads an OpenAPI 3.x document.
func parse(file string, src []byte) (*doc, error) {
	var top yaml.Node
	if err := yaml.Unmarshal(src, &top); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if top.Kind != yaml.DocumentNode || len(top.Content) == 0 || top.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not an OpenAPI document (a mapping at the top)", file)
	}
	d := &doc{file: file, root: top.Content[0]}
	v := scalar(field(d.root, "openapi"))
	switch {
	case strings.HasPrefix(v, "3.1"):
		d.v31 = true
	case strings.HasPrefix(v, "3.0"):
	case scalar(field(d.root, "swagger")) != "":
		return nil, fmt.Errorf("%s: Swagger 2.0 is not linted; convert it to OpenAPI 3", file)
	default:
		return nil, errors.New(file + ": no openapi version (3.0.x or 3.1.x)")
	}
	return d, nil
}

// field is the value of key in mapping n (nil when n is no mapping or
// lacks the key).
func field(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

// deref follows a YAML alias to its anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// has reports whether mapping n has key.
func has(n *yaml.Node, key string) bool { return field(n, key) != nil }

// scalar is a scalar node's value ("" otherwise).
func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// pairs calls f for each key and value of mapping n, in order.
func pairs(n *yaml.Node, f func(key *yaml.Node, val *yaml.Node)) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		f(n.Content[i], deref(n.Content[i+1]))
	}
}

// escape is a JSON pointer token.
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// resolve follows a local $ref ("#/components/..."), up to a depth, and
// returns the node it names (n itself without a $ref; nil when it
// cannot be followed).
func (d *doc) resolve(n *yaml.Node) *yaml.Node {
	for depth := 0; depth < 16; depth++ {
		ref := scalar(field(n, "$ref"))
		if ref == "" {
			return n
		}
		if !strings.HasPrefix(ref, "#/") {
			return nil // another document: not followed
		}
		cur := d.root
		for _, tok := range strings.Split(ref[2:], "/") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			if cur = field(cur, tok); cur == nil {
				return nil
			}
		}
		n = cur
	}
	return nil
}

// methods are the operation keys of a path item.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operation is one operation of the document.
type operation struct {
	path, method string
	node         *yaml.Node
	item         *yaml.Node // its path item (shared parameters)
	ptr          string
}

// operations lists the document's operations in document order.
func (d *doc) operations() []operation {
	var ops []operation
	pairs(field(d.root, "paths"), func(p, item *yaml.Node) {
		item = d.resolve(item)
		pairs(item, func(m, op *yaml.Node) {
			for _, method := range methods {
				if m.Value == method {
					ops = append(ops, operation{path: p.Value, method: method, node: op, item: item,
						ptr: "/paths/" + escape(p.Value) + "/" + method})
				}
			}
		})
	})
	return ops
}

// parameters are an operation's parameters with its path item's,
// resolved.
func (d *doc) parameters(op operation) []*yaml.Node {
	var out []*yaml.Node
	for _, list := range []*yaml.Node{field(op.item, "parameters"), field(op.node, "parameters")} {
		if list == nil || list.Kind != yaml.SequenceNode {
			continue
		}
		for _, p := range list.Content {
			if r := d.resolve(p); r != nil {
				out = append(out, r)
			}
		}
	}
	return out
}

// responses are an operation's responses by status, resolved.
func (d *doc) responses(op operation) (map[string]*yaml.Node, *yaml.Node) {
	node := field(op.node, "responses")
	out := map[string]*yaml.Node{}
	pairs(node, func(k, v *yaml.Node) {
		if r := d.resolve(v); r != nil {
			out[k.Value] = r
		}
	})
	return out, node
}

// security is the security requirement list in force for op: its own,
// else the document's (nil when neither declares one).
func (d *doc) security(op operation) *yaml.Node {
	if s := field(op.node, "security"); s != nil {
		return s
	}
	return field(d.root, "security")
}

// schemaTypes are the JSON Schema types a node declares (type: x, or
// type: [x, y] in 3.1); none for a node that is not a typed schema.
func schemaTypes(n *yaml.Node) []string {
	t := field(n, "type")
	if t == nil {
		return nil
	}
	switch t.Kind {
	case yaml.ScalarNode:
		return []string{t.Value}
	case yaml.SequenceNode:
		var out []string
		for _, c := range t.Content {
			out = append(out, c.Value)
		}
		return out
	}
	return nil
}

// schemaNodes calls f for every typed schema in the document with its
// JSON pointer: any mapping whose type is a JSON Schema type, wherever it
// is, except inside examples and x- extensions (data, not schemas).
func (d *doc) schemaNodes(f func(n *yaml.Node, ptr string, types []string)) {
	seen := map[*yaml.Node]bool{} // an anchor is walked once, however often aliased
	var walk func(n *yaml.Node, ptr string)
	walk = func(n *yaml.Node, ptr string) {
		if seen[n] {
			return
		}
		seen[n] = true
		switch n.Kind {
		case yaml.MappingNode:
			if ts := schemaTypes(n); len(ts) > 0 && jsonTypes(ts) {
				f(n, ptr, ts)
			}
			pairs(n, func(k, v *yaml.Node) {
				if k.Value == "example" || k.Value == "examples" || strings.HasPrefix(k.Value, "x-") {
					return
				}
				walk(v, ptr+"/"+escape(k.Value))
			})
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(deref(c), fmt.Sprintf("%s/%d", ptr, i))
			}
		}
	}
	walk(d.root, "")
}

// jsonTypes reports whether every name is a JSON Schema type.
func jsonTypes(ts []string) bool {
	for _, t := range ts {
		switch t {
		case "string", "integer", "number", "boolean", "array", "object", "null":
		default:
			return false
		}
	}
	return true
}

func contains(ts []string, t string) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}
