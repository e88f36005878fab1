package discovery

import (
	"sort"
	"strconv"
	"strings"
)

// drift compares an operation's observed bodies with its declared
// schemas: fields seen that the schema does not declare, and types seen
// that it does not allow.
func drift(rep *Report, ref OpRef, d Declared, dop map[string]any, op *opModel) {
	if op.ReqBody != nil {
		if s := d.bodySchema(dop["requestBody"]); s != nil {
			compare(rep, ref, d, "request body", "", op.ReqBody, s, 0)
		}
	}
	responses, _ := dop["responses"].(map[string]any)
	for st, r := range op.Statuses {
		if r.Body == nil {
			continue
		}
		dr, ok := responses[strconv.Itoa(st)]
		if !ok {
			dr = responses[string(strconv.Itoa(st)[0])+"XX"]
		}
		if s := d.bodySchema(dr); s != nil {
			compare(rep, ref, d, "response "+strconv.Itoa(st), "", r.Body, s, 0)
		}
	}
}

// bodySchema is the JSON schema of a request body or response object.
func (d Declared) bodySchema(v any) map[string]any {
	o := d.resolve(v)
	content, _ := o["content"].(map[string]any)
	for ct, m := range content {
		if ct == "application/json" || strings.HasSuffix(ct, "+json") {
			return d.resolve(d.resolve(m)["schema"])
		}
	}
	return nil
}

// resolve follows local $refs.
func (d Declared) resolve(v any) map[string]any {
	o, _ := v.(map[string]any)
	for i := 0; i < 16 && o != nil; i++ {
		ref, ok := o["$ref"].(string)
		if !ok {
			return o
		}
		if !strings.HasPrefix(ref, "#/") {
			return nil
		}
		var cur any = d.Doc
		for _, tok := range strings.Split(ref[2:], "/") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			m, _ := cur.(map[string]any)
			cur = m[tok]
		}
		o, _ = cur.(map[string]any)
	}
	return o
}

// compare walks an observed shape against a declared schema.
func compare(rep *Report, ref OpRef, d Declared, where, ptr string, seen *shape, decl map[string]any, depth int) {
	if decl == nil || depth > maxDepth {
		return
	}
	props, open := d.properties(decl)
	declTypes := schemaTypeSet(decl)
	if len(declTypes) > 0 {
		for t := range seen.Types {
			if t != "null" && !declTypes[t] && !(t == "integer" && declTypes["number"]) {
				add(&rep.Drift, Drift{OpRef: ref, Where: where, Pointer: ptr, Kind: "type_mismatch", Seen: t, Declared: joinKeys(declTypes)})
			}
		}
	}
	var names []string
	for k := range seen.Props {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p := seen.Props[k]
		dp, ok := props[k]
		if !ok {
			if !open {
				add(&rep.Drift, Drift{OpRef: ref, Where: where, Pointer: ptr + "/" + escape(k), Kind: "undeclared_field", Seen: typesOf(p)})
			}
			continue
		}
		compare(rep, ref, d, where, ptr+"/"+escape(k), p, d.resolve(dp), depth+1)
	}
	if seen.Items != nil {
		compare(rep, ref, d, where, ptr+"/0", seen.Items, d.resolve(decl["items"]), depth+1)
	}
}

// properties are a schema's declared properties (allOf members
// included); open reports a schema that declares none, whose extra
// fields are therefore not drift.
func (d Declared) properties(s map[string]any) (map[string]any, bool) {
	out := map[string]any{}
	declares := false
	if p, ok := s["properties"].(map[string]any); ok {
		declares = true
		for k, v := range p {
			out[k] = v
		}
	}
	all, _ := s["allOf"].([]any)
	for _, m := range all {
		sub, _ := d.properties(d.resolve(m))
		for k, v := range sub {
			declares = true
			out[k] = v
		}
	}
	return out, !declares
}

func schemaTypeSet(s map[string]any) map[string]bool {
	out := map[string]bool{}
	switch t := s["type"].(type) {
	case string:
		out[t] = true
	case []any:
		for _, x := range t {
			if str, ok := x.(string); ok {
				out[str] = true
			}
		}
	}
	if s["nullable"] == true {
		out["null"] = true
	}
	return out
}

func joinKeys(m map[string]bool) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, "|")
}

func typesOf(s *shape) string {
	m := map[string]bool{}
	for t := range s.Types {
		m[t] = true
	}
	return joinKeys(m)
}
