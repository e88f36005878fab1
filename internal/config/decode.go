package config

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// scalarShorthand is implemented by struct types that also accept a
// one-word scalar form (authorize: any_authenticated).
type scalarShorthand interface {
	decodeScalar(v string) error
}

// yamlDecoder is implemented by config value types with their own syntax
// (durations, sizes, secrets).
type yamlDecoder interface {
	decodeYAML(n *yaml.Node) error
}

// decoder maps a YAML node tree onto the config types. It is strict: unknown
// and duplicate keys are errors, and every error carries its line and key
// path. It keeps going after an error so that all problems are reported at
// once, and it records the line of every key for later validation messages.
type decoder struct {
	probs   *Problems // the document's shape: types, unknown and duplicate keys
	values  *Problems // values out of their enum: reported with validation's findings
	lines   map[string]int
	visits  int
	pending []pendingSecret // ${vault:} references, read once the document is decoded
	env     environment     // where ${env:} and ${file:} references are read
}

// pendingSecret is a ${vault:} reference and the key that holds it.
type pendingSecret struct {
	path   string
	line   int
	secret *Secret
}

// maxVisits bounds the nodes decoded, aliases expanded, so that an alias
// bomb cannot make loading a config take unbounded time.
const maxVisits = 1 << 20

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if d.visits++; d.visits > maxVisits {
		if d.visits == maxVisits+1 {
			d.probs.addAt(n.Line, path, "config too large after alias expansion")
		}
		return
	}
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	if v.CanAddr() {
		if u, ok := v.Addr().Interface().(yamlDecoder); ok {
			err := error(nil)
			if s, ok := u.(*Secret); ok {
				err = s.decodeFrom(n, d.env)
			} else {
				err = u.decodeYAML(n)
			}
			if err != nil {
				d.probs.addAt(n.Line, path, "%v", err)
			}
			if s, ok := u.(*Secret); ok && s.pending {
				d.pending = append(d.pending, pendingSecret{path: path, line: n.Line, secret: s})
			}
			return
		}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an explicit null leaves the default in place
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		if n.Kind == yaml.ScalarNode && v.CanAddr() {
			if sh, ok := v.Addr().Interface().(scalarShorthand); ok {
				if err := sh.decodeScalar(n.Value); err != nil {
					d.probs.addAt(n.Line, path, "%v", err)
				}
				return
			}
		}
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeList(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

// decodeList decodes a YAML sequence into a slice.
func (d *decoder) decodeList(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.probs.addAt(n.Line, path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

// decodeMap decodes a YAML mapping into a map, refusing duplicate keys.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.probs.addAt(n.Line, path, "expected a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := path + "." + k.Value
		d.lines[kp] = k.Line
		if seen[k.Value] {
			d.probs.addAt(k.Line, kp, "duplicate key")
			continue
		}
		seen[k.Value] = true
		ev := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, ev, kp)
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), ev)
	}
	v.Set(m)
}

// decodeScalar decodes a string, boolean or number, refusing YAML values
// of another type (no implicit conversions).
func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.probs.addAt(n.Line, path, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.probs.addAt(n.Line, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.probs.addAt(n.Line, path, "expected an integer, got %s", describe(n))
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || v.OverflowInt(i) {
			d.probs.addAt(n.Line, path, "integer %q out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!float" && n.Tag != "!!int") {
			d.probs.addAt(n.Line, path, "expected a number, got %s", describe(n))
			return
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.probs.addAt(n.Line, path, "invalid number %q", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.probs.addAt(n.Line, path, "unsupported config type %s", v.Type())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.probs.addAt(n.Line, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := joinPath(path, k.Value)
		d.lines[kp] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			msg := "unknown key"
			if s := suggest(k.Value, slices.Collect(maps.Keys(fields))); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.probs.addAt(k.Line, kp, "%s", msg)
			continue
		}
		if seen[k.Value] {
			d.probs.addAt(k.Line, kp, "duplicate key")
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.Field(idx), kp)
		if enum := v.Type().Field(idx).Tag.Get("enum"); enum != "" {
			d.checkEnum(val, v.Field(idx), strings.Split(enum, ","), kp)
		}
	}
}

// checkEnum enforces a field's enum tag (the one place a setting's
// allowed values are spelled; the JSON Schema is generated from the same
// tag): a string must be one of them, as must every item of a list of
// strings.
func (d *decoder) checkEnum(n *yaml.Node, f reflect.Value, allowed []string, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch {
	case f.Kind() == reflect.String && n.Kind == yaml.ScalarNode:
		if !slices.Contains(allowed, f.String()) {
			d.values.addAt(n.Line, path, "%q: use %s", f.String(), oneOf(allowed))
		}
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String && n.Kind == yaml.SequenceNode:
		for i := 0; i < f.Len() && i < len(n.Content); i++ {
			if s := f.Index(i).String(); !slices.Contains(allowed, s) {
				d.values.addAt(n.Content[i].Line, fmt.Sprintf("%s[%d]", path, i), "%q: use %s", s, oneOf(allowed))
			}
		}
	}
}

// oneOf writes "a, b or c".
func oneOf(allowed []string) string {
	if len(allowed) == 1 {
		return allowed[0]
	}
	return strings.Join(allowed[:len(allowed)-1], ", ") + " or " + allowed[len(allowed)-1]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structFields maps YAML keys to field indexes. Every exported field needs a
// yaml tag; "-" hides a field from the file.
func structFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unsupported value"
}

// suggest returns the candidate closest to s when it is plausibly a typo.
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD || (d == bestD && best != "" && c < best) {
			best, bestD = c, d
		}
	}
	if bestD >= 3 || bestD >= len(s) {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
