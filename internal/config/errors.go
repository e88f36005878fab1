package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem in a config file, located by file, line and key
// path (for example routes[2].upstream).
type FieldError struct {
	File string
	Line int
	Path string
	Msg  string
}

// Error formats the problem as file:line: path: message.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Problems gathers every problem found in one config so that they can all be
// reported at once, in file order.
type Problems struct {
	file  string
	lines map[string]int
	errs  []*FieldError
}

func newProblems(file string, lines map[string]int) *Problems {
	return &Problems{file: file, lines: lines}
}

// Add records a problem at path; its line is the line of the nearest key on
// the path that appears in the file.
func (p *Problems) Add(path, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{File: p.file, Line: lineOf(p.lines, path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// addAt records a problem at an explicit line.
func (p *Problems) addAt(line int, path, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{File: p.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Len is the number of problems recorded.
func (p *Problems) Len() int { return len(p.errs) }

// Err returns every problem joined, sorted by line, or nil.
func (p *Problems) Err() error {
	if len(p.errs) == 0 {
		return nil
	}
	sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// lineOf finds the line of path, walking up to parents (a missing key is
// reported at the line of the object that should hold it).
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return lines[""]
}

// FieldErrors unpacks an error returned by Load or Compile into its
// individual problems (nil if err holds none).
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		var fe *FieldError
		if errors.As(e, &fe) && fe == e {
			out = append(out, fe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if errors.As(e, &fe) {
			out = append(out, fe)
		}
	}
	walk(err)
	return out
}
