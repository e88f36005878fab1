package waf

import (
	"math/bits"
	"regexp/syntax"
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

// conj is one alternative: every byte of bytes and every literal.
type conj struct {
	bytes byteSet
	lits  []string
}

// byteSet is a set of bytes (upper-case ASCII stored as lower).
type byteSet [4]uint64

func (b *byteSet) add(c byte) { b[c>>6] |= 1 << (c & 63) }
func (b byteSet) union(o byteSet) byteSet {
	return byteSet{b[0] | o[0], b[1] | o[1], b[2] | o[2], b[3] | o[3]}
}
func (b byteSet) within(o byteSet) bool { return b[0]&^o[0]|b[1]&^o[1]|b[2]&^o[2]|b[3]&^o[3] == 0 }
func (b byteSet) equal(o byteSet) bool  { return b == o }
func (c conj) implies(o conj) bool      { return o.bytes.within(c.bytes) && litsWithin(o.lits, c.lits) }
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
		var s shape
		for _, l := range n.sets[0] {
			c := conj{bytes: bytesOf(l)}
			if len(l) > 1 {
				c.lits = []string{l}
			}
			s.alts = append(s.alts, c)
		}
		return s.minimal()
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

// concatShape: every part is required, so the alternatives multiply; a
// part that would make more than maxProduct is left out (requiring less).
func concatShape(subs []*syntax.Regexp) shape {
	acc := shape{alts: []conj{{}}}
	for _, sub := range subs {
		t := shapeOf(sub)
		if t.always || len(acc.alts)*len(t.alts) > maxProduct {
			continue
		}
		next := make([]conj, 0, len(acc.alts)*len(t.alts))
		for _, a := range acc.alts {
			for _, b := range t.alts {
				next = append(next, conj{bytes: a.bytes.union(b.bytes), lits: append(append([]string(nil), a.lits...), b.lits...)})
			}
		}
		acc = shape{alts: next}.minimal()
	}
	if len(acc.alts) == 1 && acc.alts[0].bytes == (byteSet{}) {
		return alwaysShape
	}
	return acc
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
		if key < 0 { // requires no byte: every input may match
			return nil
		}
		f.byKey[key] = append(f.byKey[key], int32(i))
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
		if !a.bytes.within(present) {
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
