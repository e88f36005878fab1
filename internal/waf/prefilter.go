package waf

import (
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// A prefilter is a necessary condition for a regular expression to match,
// derived from its syntax tree: every string the expression matches
// contains at least one literal of each of its sets (compared ASCII
// case-insensitively). When an input lacks them all, the expression
// cannot match and is not run. A prefilter never answers "no" for an
// input the expression matches; where the analysis cannot be sure it
// requires nothing (nil), and the expression runs.
type prefilter struct {
	sets  []*literalSet
	shape *shapeFilter // nil: no alternatives required
	// folded: some literal came from a case-insensitive part of the
	// expression. Such a literal containing k or s also matches the
	// non-ASCII K (U+212A) and ſ (U+017F), which an ASCII comparison
	// misses: inputs with a byte >= 0x80 then skip the prefilter.
	folded bool
}

// maybe reports whether the expression may match s: false only when it
// cannot.
func (p *prefilter) maybe(s string) bool {
	if p == nil {
		return true
	}
	if p.folded && !isASCII(s) {
		return true
	}
	for _, set := range p.sets {
		if !set.in(s) {
			return false
		}
	}
	return p.shape == nil || p.shape.maybe(s, presentBytes(s))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Limits of the analysis: literal sets larger than maxSet, and character
// classes of more than maxClass characters, require nothing.
const (
	maxSet   = 512
	maxClass = 16
	// maxSets is how many sets of a concatenation are kept (each one an
	// input must pass).
	maxSets = 2
)

// hasFoldedLiteral reports a case-insensitive literal anywhere in re.
func hasFoldedLiteral(re *syntax.Regexp) bool {
	if re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase != 0 {
		return true
	}
	for _, s := range re.Sub {
		if hasFoldedLiteral(s) {
			return true
		}
	}
	return false
}

// need is what a sub-expression requires of its input: one literal of
// each set (lower-cased ASCII). No sets: it requires nothing.
type need struct {
	sets [][]string
}

// newPrefilter analyses pattern (Go regexp syntax, Perl flags); nil when
// nothing useful is required.
func newPrefilter(pattern string) *prefilter {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	p := &prefilter{folded: hasFoldedLiteral(re)}
	for _, set := range required(re).sets {
		if ls := newLiteralSet(set); ls != nil {
			p.sets = append(p.sets, ls)
		}
	}
	if s := shapeOf(re); !s.always {
		p.shape = newShapeFilter(s) // nil when it requires nothing
	}
	if len(p.sets) == 0 && p.shape == nil {
		return nil
	}
	return p
}

// required computes the need of a sub-expression.
func required(re *syntax.Regexp) need {
	switch re.Op {
	case syntax.OpLiteral:
		return literalNeed(re.Rune, re.Flags&syntax.FoldCase != 0)
	case syntax.OpCharClass:
		return classNeed(re.Rune)
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
		return need{}
	case syntax.OpConcat:
		return concatNeed(re.Sub)
	case syntax.OpAlternate:
		return alternateNeed(re.Sub)
	}
	// Star, quest, any character, empty matches, anchors, word
	// boundaries, no-match: nothing required.
	return need{}
}

// literalNeed: the literal itself. Under case folding a non-ASCII rune
// folds to runes an ASCII comparison cannot see, and U+FFFD also matches
// an invalid byte: neither is required.
func literalNeed(runes []rune, fold bool) need {
	var b strings.Builder
	for _, r := range runes {
		if r == utf8.RuneError || (fold && r >= utf8.RuneSelf) {
			return need{}
		}
		b.WriteRune(r)
	}
	return need{sets: [][]string{{asciiLower(b.String())}}}
}

// classNeed: one of a small class's characters (the parser has already
// put every case of a folded class in it).
func classNeed(ranges []rune) need {
	var set []string
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		if hi-lo+1 > maxClass || len(set)+int(hi-lo+1) > maxClass {
			return need{}
		}
		for r := lo; r <= hi; r++ {
			if r == utf8.RuneError || r > utf8.MaxRune || (r >= 0xD800 && r <= 0xDFFF) {
				return need{}
			}
			set = append(set, asciiLower(string(r)))
		}
	}
	if len(set) == 0 {
		return need{}
	}
	return need{sets: [][]string{dedupe(set)}}
}

// concatNeed: every part must match, so each part's sets are required;
// the most selective are kept.
func concatNeed(subs []*syntax.Regexp) need {
	var all need
	for _, s := range subs {
		all.sets = append(all.sets, required(s).sets...)
	}
	if len(all.sets) > maxSets {
		best := make([][]string, 0, len(all.sets))
		best = append(best, all.sets...)
		sortBySelectivity(best)
		all.sets = best[:maxSets]
	}
	return all
}

// alternateNeed: one branch matches, so its requirement holds: the union
// of each branch's most selective set. A branch requiring nothing makes
// the whole require nothing.
func alternateNeed(subs []*syntax.Regexp) need {
	var union []string
	for _, s := range subs {
		n := required(s)
		if len(n.sets) == 0 {
			return need{}
		}
		sets := append([][]string(nil), n.sets...)
		sortBySelectivity(sets)
		union = append(union, sets[0]...)
		if len(union) > maxSet {
			return need{}
		}
	}
	return need{sets: [][]string{dedupe(union)}}
}

// sortBySelectivity orders sets most selective first: longer shortest
// literal, then fewer literals.
func sortBySelectivity(sets [][]string) {
	score := func(set []string) (int, int) {
		short := 1 << 30
		for _, l := range set {
			short = min(short, len(l))
		}
		return short, len(set)
	}
	for i := 1; i < len(sets); i++ {
		for j := i; j > 0; j-- {
			a1, a2 := score(sets[j-1])
			b1, b2 := score(sets[j])
			if b1 > a1 || (b1 == a1 && b2 < a2) {
				sets[j-1], sets[j] = sets[j], sets[j-1]
				continue
			}
			break
		}
	}
}

func dedupe(set []string) []string {
	seen := make(map[string]bool, len(set))
	out := set[:0]
	for _, s := range set {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// asciiLower lower-cases ASCII letters only (what the case-insensitive
// comparison folds).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
