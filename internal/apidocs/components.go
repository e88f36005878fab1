package apidocs

import (
	"reflect"
	"slices"
	"strings"
)

// componentKinds are the component sections merged from the documents
// (their security schemes are replaced by the gateway's).
var componentKinds = []string{"schemas", "responses", "parameters", "examples", "requestBodies", "headers", "links", "callbacks", "pathItems"}

// mergeComponents adds a document's components. A name already taken by
// a different definition is renamed PREFIX+Name (and the document's
// references follow); an identical definition is shared. It returns the
// renames as old → new reference.
func (b *builder) mergeComponents(doc obj, prefix, file string) map[string]string {
	comps, _ := doc["components"].(obj)
	renames := map[string]string{}
	// First decide the names (until no rename makes another definition
	// differ: a response that refers to a renamed schema is itself
	// different), then copy with every reference rewritten.
	for changed := true; changed; {
		changed = false
		for _, kind := range componentKinds {
			sec, _ := comps[kind].(obj)
			have, _ := b.components[kind].(obj)
			for _, name := range sortedKeys(sec) {
				ref := "#/components/" + kind + "/" + name
				if _, done := renames[ref]; done {
					continue
				}
				if old, taken := have[name]; taken && !reflect.DeepEqual(old, rewriteRefs(sec[name], renames)) {
					renames[ref] = "#/components/" + kind + "/" + prefix + name
					b.note("%s: component %s/%s renamed %s%s (another document defines it differently)", file, kind, name, prefix, name)
					changed = true
				}
			}
		}
	}
	for _, kind := range componentKinds {
		sec, _ := comps[kind].(obj)
		if len(sec) == 0 {
			continue
		}
		have, _ := b.components[kind].(obj)
		if have == nil {
			have = obj{}
			b.components[kind] = have
		}
		for name, v := range sec {
			if to, ok := renames["#/components/"+kind+"/"+name]; ok {
				name = to[strings.LastIndexByte(to, '/')+1:]
			}
			have[name] = b.strip(rewriteRefs(v, renames))
		}
	}
	return renames
}

// rewriteRefs returns v with every $ref in renames replaced (a deep copy
// of what it rewrites).
func rewriteRefs(v any, renames map[string]string) any {
	switch t := v.(type) {
	case obj:
		out := make(obj, len(t))
		for k, x := range t {
			if s, ok := x.(string); ok && k == "$ref" {
				if to, ok := renames[s]; ok {
					x = to
				}
			}
			out[k] = rewriteRefs(x, renames)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = rewriteRefs(x, renames)
		}
		return out
	}
	return v
}

// strip removes internal extensions (x-rampart-*, and those the docs
// section lists) everywhere in v.
func (b *builder) strip(v any) any {
	switch t := v.(type) {
	case obj:
		for k, x := range t {
			if strings.HasPrefix(k, "x-rampart-") || slices.Contains(b.hide, k) {
				delete(t, k)
				continue
			}
			t[k] = b.strip(x)
		}
	case []any:
		for i, x := range t {
			t[i] = b.strip(x)
		}
	}
	return v
}
