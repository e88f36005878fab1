package waf

import (
	"math/bits"
	"regexp/syntax"
	"slices"
	"strings"
)

// A shape is a second necessary condition, finer than the literal sets:
// a disjunction of alternatives, each a set of bytes the input must all
// contain and literals it must all contain (ASCII case-insensitively). It
// follows the expression's branches, so that an alternation of commands,
// each spelled letter by letter with evasion characters in between,
// needs all the letters of one command rather than any letter of any.
type shape struct {
	alts []conj
	// always: some branch requires nothing.
	always bool
}

// shapeFilter is a shape ready to test inputs with: its alternatives
// listed by a byte each requires (its least common one), so that an input
// is checked only against the alternatives whose key byte it contains.
type shapeFilter struct {
	alts  []conj
	byKey [256][]int32
}

// conj is one alternative: every byte of bytes, every literal, and for
// each set of anyOf at least one of its bytes (a character class, kept
// as one condition rather than one alternative per character).
type conj struct {
	bytes byteSet
	lits  []string
	anyOf []byteSet
}

// byteSet is a set of bytes (upper-case ASCII stored as lower).
type byteSet [4]uint64

func (b *byteSet) add(c byte) { b[c>>6] |= 1 << (c & 63) }
func (b byteSet) union(o byteSet) byteSet {
	return byteSet{b[0] | o[0], b[1] | o[1], b[2] | o[2], b[3] | o[3]}
}
func (b byteSet) within(o byteSet) bool { return b[0]&^o[0]|b[1]&^o[1]|b[2]&^o[2]|b[3]&^o[3] == 0 }
func (b byteSet) meets(o byteSet) bool  { return b[0]&o[0]|b[1]&o[1]|b[2]&o[2]|b[3]&o[3] != 0 }
func bytesOf(s string) (b byteSet) {
	for i := 0; i < len(s); i++ {
		b.add(s[i])
	}
	return b
}

// Limits: alternatives of one shape (an alternation of a few thousand
// commands or keywords is common in the CRS), and of a concatenation's
// product.
const (
	maxAlts    = 4096
	maxProduct = 256
)

var alwaysShape = shape{always: true}

// shapeOf computes the shape of a sub-expression (literals already lower
// case ASCII, as required() makes them).
func shapeOf(re *syntax.Regexp) shape {
	switch re.Op {
	case syntax.OpLiteral:
		n := literalNeed(re.Rune, re.Flags&syntax.FoldCase != 0)
		if len(n.sets) == 0 {
			return alwaysShape
		}
		l := n.sets[0][0]
		c := conj{bytes: bytesOf(l)}
		if len(l) > 1 {
			c.lits = []string{l}
		}
		return shape{alts: []conj{c}}
	case syntax.OpCharClass:
		n := classNeed(re.Rune)
		if len(n.sets) == 0 {
			return alwaysShape
		}
		return classShape(n.sets[0])
	case syntax.OpCapture, syntax.OpPlus:
		return shapeOf(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return shapeOf(re.Sub[0])
		}
	case syntax.OpConcat:
		return concatShape(re.Sub)
	case syntax.OpAlternate:
		var s shape
		for _, sub := range re.Sub {
			t := shapeOf(sub)
			if t.always {
				return alwaysShape
			}
			s.alts = append(s.alts, t.alts...)
			if len(s.alts) > 2*maxAlts {
				return alwaysShape
			}
		}
		s = s.minimal()
		if len(s.alts) > maxAlts {
			return alwaysShape
		}
		return s
	}
	return alwaysShape
}

// classShape: one of a class's characters. Single bytes make one
// condition (at least one of them); characters of several bytes (UTF-8)
// one alternative each.
func classShape(chars []string) shape {
	var s shape
	var set byteSet
	for _, l := range chars {
		if len(l) == 1 {
			set.add(l[0])
			continue
		}
		s.alts = append(s.alts, conj{bytes: bytesOf(l), lits: []string{l}})
	}
	switch {
	case set == byteSet{}:
	case bits.OnesCount64(set[0])+bits.OnesCount64(set[1])+bits.OnesCount64(set[2])+bits.OnesCount64(set[3]) == 1:
		s.alts = append(s.alts, conj{bytes: set})
	default:
		s.alts = append(s.alts, conj{anyOf: []byteSet{set}})
	}
	return s.minimal()
}

// concatShape: every part is required, so the alternatives multiply; a
// part that would make more than maxProduct is left out (requiring less),
// unless one side has a single alternative (the product is then no
// larger than the other side).
func concatShape(subs []*syntax.Regexp) shape {
	acc := shape{alts: []conj{{}}}
	for i := 0; i < len(subs); {
		t, after := spelledShape(subs, i)
		if after == i {
			t, after = shapeOf(subs[i]), i+1
		}
		i = after
		if t.always || (len(acc.alts) > 1 && len(t.alts) > 1 && len(acc.alts)*len(t.alts) > maxProduct) {
			continue
		}
		next := make([]conj, 0, len(acc.alts)*len(t.alts))
		for _, a := range acc.alts {
			for _, b := range t.alts {
				next = append(next, a.and(b))
			}
		}
		acc = shape{alts: next}.minimal()
	}
	if len(acc.alts) == 1 && acc.alts[0].bytes == (byteSet{}) && len(acc.alts[0].anyOf) == 0 {
		return alwaysShape
	}
	return acc
}

// spelledShape reads, from subs[i], a word spelled with gaps: literals
// separated by parts that may match nothing (evasion padding, as the
// CRS writes c["'\\]*a["'\\]*t). Either every gap matched nothing, and
// the literals stand next to each other ("cat"), or some gap matched
// something, and then it holds one of the literals its body requires (a
// quote, a backslash). It returns that shape and the index after the
// word's last literal; next == i when there is no such word (fewer than
// two literals).
func spelledShape(subs []*syntax.Regexp, i int) (s shape, next int) {
	first, ok := pieceOf(subs[i])
	if !ok {
		return shape{}, i
	}
	pieces, triggers, end := []string{first}, []string(nil), i+1
	for end < len(subs) {
		j, gap := end, []string(nil)
		for ; j < len(subs) && mayBeEmpty(subs[j]); j++ {
			t, ok := triggersOf(subs[j])
			if !ok {
				break
			}
			gap = append(gap, t...)
		}
		if j == len(subs) {
			break
		}
		lit, ok := pieceOf(subs[j])
		if !ok {
			break
		}
		pieces, triggers, end = append(pieces, lit), append(triggers, gap...), j+1
	}
	if len(pieces) < 2 {
		return shape{}, i
	}
	return wordShape(pieces, dedupe(triggers)), end
}

// pieceOf is the literal a part matches (one ASCII case-insensitive
// string), if it is one.
func pieceOf(re *syntax.Regexp) (string, bool) {
	var n need
	switch re.Op {
	case syntax.OpLiteral:
		n = literalNeed(re.Rune, re.Flags&syntax.FoldCase != 0)
	case syntax.OpCharClass:
		n = classNeed(re.Rune)
	}
	if len(n.sets) != 1 || len(n.sets[0]) != 1 {
		return "", false
	}
	return n.sets[0][0], true
}

// mayBeEmpty reports a part that can match nothing.
func mayBeEmpty(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpStar, syntax.OpQuest, syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	case syntax.OpRepeat:
		return re.Min == 0
	}
	return false
}

// triggersOf returns, for a part that can match nothing, literals of
// which a non-empty match of it holds one (none for an assertion, which
// is always empty); false when there are none to say.
func triggersOf(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpStar, syntax.OpQuest, syntax.OpRepeat:
		sets := required(re.Sub[0]).sets
		if len(sets) == 0 {
			return nil, false
		}
		sets = append([][]string(nil), sets...)
		sortBySelectivity(sets)
		return sets[0], true
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return nil, true
	}
	return nil, false
}

// wordShape: the word's pieces side by side, or all of them and one of
// the gaps' triggers.
func wordShape(pieces, triggers []string) shape {
	word := strings.Join(pieces, "")
	s := shape{alts: []conj{{bytes: bytesOf(word), lits: []string{word}}}}
	var apart []string
	for _, p := range pieces {
		if len(p) > 1 {
			apart = append(apart, p)
		}
	}
	for _, t := range triggers {
		c := conj{bytes: bytesOf(word).union(bytesOf(t)), lits: append([]string(nil), apart...)}
		if len(t) > 1 {
			c.lits = append(c.lits, t)
		}
		s.alts = append(s.alts, c)
	}
	return s.minimal()
}

// implies reports that whenever c holds, o does.
func (c conj) implies(o conj) bool {
	if !o.bytes.within(c.bytes) || !litsWithin(o.lits, c.lits) {
		return false
	}
	for _, set := range o.anyOf {
		if !c.bytes.meets(set) && !slices.ContainsFunc(c.anyOf, func(t byteSet) bool { return t.within(set) }) {
			return false
		}
	}
	return true
}

// and is the alternative requiring both c and o.
func (c conj) and(o conj) conj {
	return conj{bytes: c.bytes.union(o.bytes), lits: append(append([]string(nil), c.lits...), o.lits...),
		anyOf: append(append([]byteSet(nil), c.anyOf...), o.anyOf...)}
}

// minimal drops alternatives implied by another (whenever they hold, the
// other does, so the disjunction is the same).
func (s shape) minimal() shape {
	out := s.alts[:0:0]
	for i, a := range s.alts {
		redundant := false
		for j, b := range s.alts {
			if i != j && a.implies(b) && (!b.implies(a) || j < i) {
				redundant = true
				break
			}
		}
		if !redundant {
			out = append(out, a)
		}
	}
	return shape{alts: out}
}

func litsWithin(small, big []string) bool {
	for _, s := range small {
		found := false
		for _, b := range big {
			if b == s {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// commonBytes orders bytes from the most common in requests' text; an
// alternative's key is its byte that comes last here (or not at all).
const commonBytes = " etaoinsrhldcumfpgwybvkxjqz0123456789./-_=:,;&%?+"

// newShapeFilter indexes a shape (not always) by key bytes; nil when an
// alternative requires nothing.
func newShapeFilter(s shape) *shapeFilter {
	f := &shapeFilter{alts: s.alts}
	for i, a := range s.alts {
		key, rank := -1, -1
		for c := 0; c < 256; c++ {
			if a.bytes[c>>6]&(1<<(c&63)) == 0 {
				continue
			}
			r := strings.IndexByte(commonBytes, byte(c))
			if r < 0 {
				r = len(commonBytes)
			}
			if r > rank {
				key, rank = c, r
			}
		}
		switch {
		case key >= 0:
			f.byKey[key] = append(f.byKey[key], int32(i))
		case len(a.anyOf) > 0:
			// No byte it must hold, but one of a set: listed under each.
			for c := 0; c < 256; c++ {
				if a.anyOf[0][c>>6]&(1<<(c&63)) != 0 {
					f.byKey[c] = append(f.byKey[c], int32(i))
				}
			}
		default: // requires nothing: every input may match
			return nil
		}
	}
	return f
}

// maybe reports whether an input whose bytes are present (lower-cased)
// may satisfy the shape.
func (s *shapeFilter) maybe(in string, present byteSet) bool {
	for w, set := range present {
		for set != 0 {
			c := w<<6 | bits.TrailingZeros64(set)
			set &= set - 1
			if s.holdsAny(in, present, s.byKey[c]) {
				return true
			}
		}
	}
	return false
}

// holdsAny reports whether one of the alternatives idx holds.
func (s *shapeFilter) holdsAny(in string, present byteSet, idx []int32) bool {
	for _, i := range idx {
		a := &s.alts[i]
		if !a.bytes.within(present) || slices.ContainsFunc(a.anyOf, func(set byteSet) bool { return !set.meets(present) }) {
			continue
		}
		ok := true
		for _, l := range a.lits {
			if !containsFold(in, l) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// presentBytes is the set of bytes of s, ASCII letters lower-cased.
func presentBytes(s string) (b byteSet) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.add(c)
	}
	return b
}

// containsFold reports whether s contains lit (lower-case ASCII letters
// matching either case in s).
func containsFold(s, lit string) bool {
	n := len(lit)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lit[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}
