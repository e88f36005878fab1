package discovery

import (
	"net/mail"
	"net/netip"
	"net/url"
	"sort"
	"strings"
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
	secret    bool                      // its field's name says it holds a secret: no enum
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

// isEnumToken reports what an enum value looks like: a short word
// (letters first, then letters, digits, _ . -), with at most two digits
// (ids, tokens and session values are not candidates).
func isEnumToken(v string) bool {
	if len(v) == 0 || len(v) > 32 {
		return false
	}
	digits := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && c >= '0' && c <= '9':
			if digits++; digits > 2 {
				return false
			}
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
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
	if c != sensitive.None || s.secret || !isEnumToken(v) {
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

// format is the JSON Schema format a string has ("" for none). Each
// test runs only on values of its length and first characters.
func format(v string) string {
	n := len(v)
	switch {
	case n == 36 && uuidSeg.MatchString(v):
		return "uuid"
	case n == 10 && segmentKind(v) == kindDate:
		return "date"
	case n >= 20 && n <= 40 && v[4] == '-' && v[10] == 'T' && isDateTime(v):
		return "date-time"
	case n < 255 && strings.IndexByte(v, '@') > 0 && isEmail(v):
		return "email"
	case n < 2048 && strings.HasPrefix(v, "http") && isURI(v):
		return "uri"
	}
	if n >= 2 && n <= 45 && (strings.IndexByte(v, '.') > 0 || strings.IndexByte(v, ':') >= 0) {
		if a, err := netip.ParseAddr(v); err == nil {
			if a.Is4() {
				return "ipv4"
			}
			return "ipv6"
		}
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
