package discovery

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Segment kinds a path segment is recognised as; anything else is a
// literal until a position has too many different literals.
const (
	kindInt  = "int"
	kindUUID = "uuid"
	kindHash = "hash"
	kindDate = "date"
	kindAny  = "any" // a high-cardinality position (slugs, names)
)

// uuidSeg is a UUID (also a string format).
var uuidSeg = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// segmentKind classifies one segment ("" for a literal). Versions (v1,
// v2.1) stay literal. It runs for every segment of every sample: plain
// loops, no expressions.
func segmentKind(s string) string {
	n := len(s)
	switch {
	case n == 0 || isVersion(s):
		return ""
	case n == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' && all(strings.ReplaceAll(s, "-", ""), isHex):
		return kindUUID
	case n == 10 && s[4] == '-' && s[7] == '-' && all(s[:4]+s[5:7]+s[8:], isDigit):
		return kindDate
	case n <= 19 && all(s, isDigit):
		return kindInt
	case n >= 16 && all(s, isHex):
		return kindHash
	case n >= 20 && all(s, isToken) && strings.ContainsAny(s, "0123456789") && hasUpperAndLower(s):
		return kindHash
	}
	return ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }
func isToken(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-'
}

func all(s string, f func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !f(s[i]) {
			return false
		}
	}
	return len(s) > 0
}

// isVersion reports v1, v2, v10.1 and the like.
func isVersion(s string) bool {
	if len(s) < 2 || len(s) > 8 || s[0] != 'v' {
		return false
	}
	major, minor, _ := strings.Cut(s[1:], ".")
	return all(major, isDigit) && (minor == "" || all(minor, isDigit))
}

func hasUpperAndLower(s string) bool {
	return strings.ToLower(s) != s && strings.ToUpper(s) != s
}

// preTemplate replaces the segments recognised by their shape with their
// kind ({int}, {uuid}, {hash}, {date}), and those at positions already
// found to be high-cardinality (collapsed, by prefix) with {any}: the key
// operations are learned under.
func preTemplate(path string, collapsed map[string]bool) string {
	if len(collapsed) == 0 && literalPath(path) {
		return path // the common case: nothing to replace, nothing allocated
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		switch {
		case len(collapsed) > 0 && collapsed[strings.Join(segs[:i], "/")]:
			segs[i] = "{" + kindAny + "}"
		default:
			if k := segmentKind(s); k != "" {
				segs[i] = "{" + k + "}"
			}
		}
	}
	return "/" + strings.Join(segs, "/")
}

// literalPath reports a path none of whose segments is recognised by its
// shape.
func literalPath(path string) bool {
	for rest := strings.Trim(path, "/"); ; {
		seg, tail, more := strings.Cut(rest, "/")
		if segmentKind(seg) != "" {
			return false
		}
		if !more {
			return strings.HasPrefix(path, "/") && !strings.HasSuffix(path, "/") || path == "/"
		}
		rest = tail
	}
}

// collapseThreshold is how many different literals one position may take
// before it is a parameter.
const collapseThreshold = 20

// templates maps each pre-template key to its final template: positions
// (under the same prefix) that took more than collapseThreshold
// different literals become parameters, and every parameter gets a name
// from the segment before it (/users/{int} → /users/{userId}).
func templates(keys []string) map[string]string {
	split := make([][]string, len(keys))
	for i, k := range keys {
		split[i] = strings.Split(strings.Trim(k, "/"), "/")
	}
	collapse(split, 0, allIndexes(len(keys)), nil)
	out := make(map[string]string, len(keys))
	for i, k := range keys {
		out[k] = "/" + strings.Join(nameParams(split[i]), "/")
	}
	return out
}

func allIndexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// collapse walks the keys (idx) sharing a prefix of depth segments and
// replaces a position's literals by {any} when there are too many,
// recording each such position (by its prefix) in positions when set.
func collapse(split [][]string, depth int, idx []int, positions map[string]bool) {
	groups := map[string][]int{}
	literals := map[string]bool{}
	for _, i := range idx {
		if len(split[i]) <= depth {
			continue
		}
		seg := split[i][depth]
		if !strings.HasPrefix(seg, "{") {
			literals[seg] = true
		}
		groups[seg] = append(groups[seg], i)
	}
	if len(literals) > collapseThreshold {
		if positions != nil && len(idx) > 0 {
			positions[strings.Join(split[idx[0]][:depth], "/")] = true
		}
		for lit := range literals {
			for _, i := range groups[lit] {
				split[i][depth] = "{" + kindAny + "}"
			}
			groups["{"+kindAny+"}"] = append(groups["{"+kindAny+"}"], groups[lit]...)
			delete(groups, lit)
		}
	}
	segs := make([]string, 0, len(groups))
	for s := range groups {
		segs = append(segs, s)
	}
	sort.Strings(segs)
	for _, s := range segs {
		collapse(split, depth+1, groups[s], positions)
	}
}

// nameParams names the parameter segments of a template after the
// segment before them: {int} after users is {userId}; a second one of
// the same name gets a number.
func nameParams(segs []string) []string {
	out := make([]string, len(segs))
	used := map[string]int{}
	for i, s := range segs {
		if !strings.HasPrefix(s, "{") {
			out[i] = s
			continue
		}
		kind := strings.Trim(s, "{}")
		name := "param"
		if i > 0 && !strings.HasPrefix(segs[i-1], "{") {
			name = singular(segs[i-1])
		}
		switch kind {
		case kindDate:
			name += "Date"
		case kindAny:
			name += "Name"
		default:
			name += "Id"
		}
		if used[name]++; used[name] > 1 {
			name += strconv.Itoa(used[name])
		}
		out[i] = "{" + name + "}"
	}
	return out
}

// singular is a rough English singular of a path segment, as an
// identifier: users → user, categories → category, order-items → orderItem.
func singular(s string) string {
	s = camelCase(s)
	switch {
	case strings.HasSuffix(s, "ies") && len(s) > 3:
		return s[:len(s)-3] + "y"
	case strings.HasSuffix(s, "ses") || strings.HasSuffix(s, "xes"):
		return s[:len(s)-2]
	case strings.HasSuffix(s, "s") && !strings.HasSuffix(s, "ss") && len(s) > 1:
		return s[:len(s)-1]
	}
	return s
}

func camelCase(s string) string {
	var b strings.Builder
	up := false
	for _, c := range s {
		if c == '-' || c == '_' || c == '.' {
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

// paramKind is the kind of a named template parameter, from the key
// segment it came from.
func paramSchema(kind string) map[string]any {
	switch kind {
	case kindInt:
		return map[string]any{"type": "integer", "minimum": 0}
	case kindUUID:
		return map[string]any{"type": "string", "format": "uuid"}
	case kindDate:
		return map[string]any{"type": "string", "format": "date"}
	}
	return map[string]any{"type": "string"}
}
