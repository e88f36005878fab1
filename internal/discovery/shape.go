package discovery

import (
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"sort"
	"time"

	"github.com/rampart-gw/rampart/internal/sensitive"
)

// Bounds of one learned schema.
const (
	maxDepth      = 12
	maxProperties = 200 // per object; more are counted, not kept
	maxEnum       = 10  // distinct values a string may take to be an enum
	minEnumSeen   = 20  // samples before an enum is believed
)

// shape is what the values seen at one place of a JSON document had in
// common: their types, properties (with how often each was present),
// items, string formats, enum candidates and sensitive classes. It holds
// no value, except the short, non-sensitive enum candidates of fields
// whose names do not say they hold secrets.
type shape struct {
	Count     int64                     `json:"count"`
	Types     map[string]int64          `json:"types"`
	Props     map[string]*shape         `json:"properties,omitempty"`
	Dropped   int64                     `json:"dropped_properties,omitempty"`
	Items     *shape                    `json:"items,omitempty"`
	Formats   map[string]int64          `json:"formats,omitempty"`
	Enum      map[string]bool           `json:"-"`
	NoEnum    bool                      `json:"-"`
	Sensitive map[sensitive.Class]int64 `json:"sensitive,omitempty"`
}

func newShape() *shape { return &shape{Types: map[string]int64{}} }

// nodes counts the shape's nodes.
func (s *shape) nodes() int {
	if s == nil {
		return 0
	}
	n := 1 + s.Items.nodes()
	for _, p := range s.Props {
		n += p.nodes()
	}
	return n
}

// observeFn hears each sensitive value class found, at its JSON pointer.
type observeFn func(pointer string, c sensitive.Class)

// maxNodes bounds the shape nodes one body of an operation may grow
// (a document crafted to be wide and deep cannot grow the model).
const maxNodes = 4096

// add merges one decoded JSON value (from encoding/json into any); budget
// is how many new nodes it may still create.
func (s *shape) add(v any, name, pointer string, depth int, budget *int, found observeFn) {
	s.Count++
	if depth > maxDepth {
		return
	}
	switch t := v.(type) {
	case map[string]any:
		s.Types["object"]++
		if s.Props == nil {
			s.Props = map[string]*shape{}
		}
		for k, x := range t {
			p := s.Props[k]
			if p == nil {
				if len(s.Props) >= maxProperties || *budget <= 0 {
					s.Dropped++
					continue
				}
				*budget--
				p = newShape()
				s.Props[k] = p
			}
			p.add(x, k, pointer+"/"+escape(k), depth+1, budget, found)
		}
	case []any:
		s.Types["array"]++
		if s.Items == nil {
			if *budget <= 0 {
				return
			}
			*budget--
			s.Items = newShape()
		}
		for i, x := range t {
			if i >= 50 {
				break // the first elements tell the shape
			}
			s.Items.add(x, name, pointer+"/0", depth+1, budget, found)
		}
	case string:
		s.Types["string"]++
		s.addString(t, name, pointer, found)
	case float64:
		if t == float64(int64(t)) {
			s.Types["integer"]++
		} else {
			s.Types["number"]++
		}
	case bool:
		s.Types["boolean"]++
	case nil:
		s.Types["null"]++
	}
}

// enumToken is what an enum value looks like: a short word (ids, tokens
// and session values, with their digits, are not candidates).
var enumToken = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,31}$`)

func digits(v string) int {
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] >= '0' && v[i] <= '9' {
			n++
		}
	}
	return n
}

// addString records a string's format, sensitive class and, when it may
// be an enum value, the value.
func (s *shape) addString(v, name, pointer string, found observeFn) {
	if f := format(v); f != "" {
		if s.Formats == nil {
			s.Formats = map[string]int64{}
		}
		s.Formats[f]++
	}
	c := sensitive.Classify(v)
	if c != sensitive.None {
		if s.Sensitive == nil {
			s.Sensitive = map[sensitive.Class]int64{}
		}
		s.Sensitive[c]++
		if found != nil {
			found(pointer, c)
		}
	}
	if s.NoEnum {
		return
	}
	if c != sensitive.None || sensitive.SecretName(name) || !enumToken.MatchString(v) || digits(v) > 2 {
		s.NoEnum, s.Enum = true, nil
		return
	}
	if s.Enum == nil {
		s.Enum = map[string]bool{}
	}
	s.Enum[v] = true
	if len(s.Enum) > maxEnum {
		s.NoEnum, s.Enum = true, nil
	}
}

var dateOnly = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

// format is the JSON Schema format a string has ("" for none).
func format(v string) string {
	switch {
	case uuidSeg.MatchString(v):
		return "uuid"
	case dateOnly.MatchString(v):
		return "date"
	case len(v) >= 20 && len(v) <= 40 && isDateTime(v):
		return "date-time"
	case len(v) < 255 && isEmail(v):
		return "email"
	case len(v) < 2048 && isURI(v):
		return "uri"
	}
	if a, err := netip.ParseAddr(v); err == nil {
		if a.Is4() {
			return "ipv4"
		}
		return "ipv6"
	}
	return ""
}

func isDateTime(v string) bool {
	_, err := time.Parse(time.RFC3339Nano, v)
	return err == nil
}

func isEmail(v string) bool {
	a, err := mail.ParseAddress(v)
	return err == nil && a.Address == v
}

func isURI(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// merge adds o's observations into s (two operations that one template
// joins).
func (s *shape) merge(o *shape) {
	if o == nil {
		return
	}
	s.Count += o.Count
	for t, n := range o.Types {
		s.Types[t] += n
	}
	for k, p := range o.Props {
		if s.Props == nil {
			s.Props = map[string]*shape{}
		}
		if s.Props[k] == nil {
			s.Props[k] = newShape()
		}
		s.Props[k].merge(p)
	}
	s.Dropped += o.Dropped
	if o.Items != nil {
		if s.Items == nil {
			s.Items = newShape()
		}
		s.Items.merge(o.Items)
	}
	for f, n := range o.Formats {
		if s.Formats == nil {
			s.Formats = map[string]int64{}
		}
		s.Formats[f] += n
	}
	for c, n := range o.Sensitive {
		if s.Sensitive == nil {
			s.Sensitive = map[sensitive.Class]int64{}
		}
		s.Sensitive[c] += n
	}
	if o.NoEnum || s.NoEnum {
		s.NoEnum, s.Enum = true, nil
		return
	}
	for v := range o.Enum {
		if s.Enum == nil {
			s.Enum = map[string]bool{}
		}
		s.Enum[v] = true
	}
	if len(s.Enum) > maxEnum {
		s.NoEnum, s.Enum = true, nil
	}
}

// schema is the JSON Schema the shape suggests: its types (several: a
// list), properties (required when present in every object seen), items,
// the format every string had, an enum when few values took many samples.
func (s *shape) schema() map[string]any {
	out := map[string]any{}
	var types []string
	for t := range s.Types {
		types = append(types, t)
	}
	sort.Strings(types)
	if types = mergeNumeric(types); len(types) == 1 {
		out["type"] = types[0]
	} else if len(types) > 1 {
		out["type"] = types
	}
	if s.Props != nil {
		props := map[string]any{}
		var req []string
		for k, p := range s.Props {
			props[k] = p.schema()
			if p.Count == s.Types["object"] && s.Types["object"] > 1 {
				req = append(req, k)
			}
		}
		sort.Strings(req)
		out["properties"] = props
		if len(req) > 0 {
			out["required"] = req
		}
	}
	if s.Items != nil {
		out["items"] = s.Items.schema()
	}
	for f, n := range s.Formats {
		if n == s.Types["string"] {
			out["format"] = f
		}
	}
	if !s.NoEnum && len(s.Enum) > 0 && s.Types["string"] >= minEnumSeen && int64(len(s.Enum))*2 <= s.Types["string"] && out["format"] == nil {
		var vals []string
		for v := range s.Enum {
			vals = append(vals, v)
		}
		sort.Strings(vals)
		out["enum"] = vals
	}
	return out
}

// mergeNumeric folds integer into number when both were seen.
func mergeNumeric(types []string) []string {
	hasNum, hasInt := false, false
	for _, t := range types {
		hasNum = hasNum || t == "number"
		hasInt = hasInt || t == "integer"
	}
	if !hasNum || !hasInt {
		return types
	}
	var out []string
	for _, t := range types {
		if t != "integer" {
			out = append(out, t)
		}
	}
	return out
}

func escape(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '~':
			b = append(b, '~', '0')
		case '/':
			b = append(b, '~', '1')
		default:
			b = append(b, s[i])
		}
	}
	return string(b)
}
