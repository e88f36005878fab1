package waf

// A literalSet finds whether any of its literals occurs in a string,
// ASCII case-insensitively, in one pass without allocating: an
// Aho-Corasick automaton made deterministic, over the classes of bytes
// its literals use (every other byte is one class).
type literalSet struct {
	class   [256]uint8 // byte -> class; upper-case ASCII as lower
	classes int
	next    []uint16 // state*classes + class -> state
	accept  []bool   // a literal ends in this state
}

// newLiteralSet builds the automaton of lits (lower-cased ASCII, none
// empty); nil when it would be too large for its tables (more than 255
// classes of bytes or 65,535 states).
func newLiteralSet(lits []string) *literalSet {
	ls := &literalSet{classes: 1} // class 0: bytes in no literal
	total := 0
	for _, l := range lits {
		total += len(l)
		for i := 0; i < len(l); i++ {
			if c := l[i]; ls.class[c] == 0 {
				if ls.classes == 255 {
					return nil
				}
				ls.class[c] = uint8(ls.classes)
				ls.classes++
			}
		}
	}
	if total >= 1<<16 {
		return nil
	}
	for c := 'A'; c <= 'Z'; c++ {
		ls.class[c] = ls.class[c+'a'-'A']
	}
	// The trie: goto[state][class], 0 meaning none (state 0 is the root).
	trie := [][]uint16{make([]uint16, ls.classes)}
	accept := []bool{false}
	for _, l := range lits {
		s := 0
		for i := 0; i < len(l); i++ {
			c := ls.class[l[i]]
			if trie[s][c] == 0 {
				trie = append(trie, make([]uint16, ls.classes))
				accept = append(accept, false)
				trie[s][c] = uint16(len(trie) - 1)
			}
			s = int(trie[s][c])
		}
		accept[s] = true
	}
	ls.accept = accept
	ls.next = make([]uint16, len(trie)*ls.classes)
	ls.link(trie)
	return ls
}

// link fills the deterministic transitions breadth first: a missing edge
// goes where the state's failure link goes, and a state accepts when its
// failure link does (a literal ending inside a longer one's prefix).
func (ls *literalSet) link(trie [][]uint16) {
	fail := make([]uint16, len(trie))
	queue := make([]uint16, 0, len(trie))
	for c := 0; c < ls.classes; c++ {
		if t := trie[0][c]; t != 0 {
			ls.next[c] = t
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		ls.accept[s] = ls.accept[s] || ls.accept[fail[s]]
		for c := 0; c < ls.classes; c++ {
			t := trie[s][c]
			if t == 0 {
				ls.next[int(s)*ls.classes+c] = ls.next[int(fail[s])*ls.classes+c]
				continue
			}
			fail[t] = ls.next[int(fail[s])*ls.classes+c]
			ls.next[int(s)*ls.classes+c] = t
			queue = append(queue, t)
		}
	}
}

// in reports whether some literal occurs in s.
func (ls *literalSet) in(s string) bool {
	state := 0
	for i := 0; i < len(s); i++ {
		state = int(ls.next[state*ls.classes+int(ls.class[s[i]])])
		if ls.accept[state] {
			return true
		}
	}
	return false
}
