package discovery

import (
	"bytes"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/rampart-gw/rampart/internal/sensitive"
)

// addJSON merges one JSON document into s by walking its tokens (no
// values are built: a sampled body costs its tokens, not a tree of maps).
// It reports whether the document was well-formed.
func (s *shape) addJSON(b []byte, budget *int, found observeFn) bool {
	dec := jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	w := walker{dec: dec, budget: budget, found: found}
	return w.value(s, 0) == nil
}

// walker walks one document; path is the JSON pointer's tokens of the
// value being walked, turned into a pointer only for a finding.
type walker struct {
	dec    *jsontext.Decoder
	budget *int
	found  observeFn
	path   []string
}

func (w *walker) value(s *shape, depth int) error {
	if depth > maxDepth {
		s.Count++
		return w.dec.SkipValue()
	}
	tok, err := w.dec.ReadToken()
	if err != nil {
		return err
	}
	s.Count++
	switch tok.Kind() {
	case '{':
		s.Types["object"]++
		return w.object(s, depth)
	case '[':
		s.Types["array"]++
		return w.array(s, depth)
	case '"':
		s.Types["string"]++
		var found observeFn
		if w.found != nil {
			found = func(_ string, c sensitive.Class) { w.found(w.pointer(), c) }
		}
		s.addString(tok.String(), "", "", found)
	case '0':
		if strings.ContainsAny(tok.String(), ".eE") {
			s.Types["number"]++
		} else {
			s.Types["integer"]++
		}
	case 't', 'f':
		s.Types["boolean"]++
	case 'n':
		s.Types["null"]++
	}
	return nil
}

func (w *walker) object(s *shape, depth int) error {
	if s.Props == nil {
		s.Props = map[string]*shape{}
	}
	for w.dec.PeekKind() != '}' {
		name, err := w.dec.ReadToken()
		if err != nil {
			return err
		}
		k := name.String()
		p := s.Props[k]
		if p == nil {
			if len(s.Props) >= maxProperties || *w.budget <= 0 {
				s.Dropped++
				if err := w.dec.SkipValue(); err != nil {
					return err
				}
				continue
			}
			*w.budget--
			p = newShape()
			p.secret = sensitive.SecretName(k)
			s.Props[k] = p
		}
		w.path = append(w.path, k)
		err = w.value(p, depth+1)
		w.path = w.path[:len(w.path)-1]
		if err != nil {
			return err
		}
	}
	_, err := w.dec.ReadToken()
	return err
}

func (w *walker) array(s *shape, depth int) error {
	if s.Items == nil && *w.budget > 0 {
		*w.budget--
		s.Items = newShape()
		s.Items.secret = s.secret
	}
	w.path = append(w.path, "0")
	defer func() { w.path = w.path[:len(w.path)-1] }()
	for i := 0; w.dec.PeekKind() != ']'; i++ {
		var err error
		if i >= 50 || s.Items == nil {
			err = w.dec.SkipValue() // the first elements tell the shape
		} else {
			err = w.value(s.Items, depth+1)
		}
		if err != nil {
			return err
		}
	}
	_, err := w.dec.ReadToken()
	return err
}

// pointer is the JSON pointer of the value being walked.
func (w *walker) pointer() string {
	var b strings.Builder
	for _, p := range w.path {
		b.WriteByte('/')
		b.WriteString(escape(p))
	}
	return b.String()
}
