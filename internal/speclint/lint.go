// Package speclint lints OpenAPI 3.0 and 3.1 documents for security:
// Stoplight Spectral's OWASP API Security Top 10 2023 ruleset (the same
// rule ids, on the same documents) and the checks only a gateway can
// make, each finding with its rule, severity, file:line and a fix. It
// reads the documents as YAML nodes, so that every finding points at the
// line it is about.
package speclint

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"

	"github.com/rampart-gw/rampart/internal/sarif"

	"go.yaml.in/yaml/v3"
)

// Severity of a finding.
type Severity int

// Severities, least first.
const (
	Info Severity = iota
	Warning
	Error
)

func (s Severity) String() string { return [...]string{"info", "warning", "error"}[s] }

// ParseSeverity reads info, warning or error.
func ParseSeverity(s string) (Severity, bool) {
	for _, v := range []Severity{Info, Warning, Error} {
		if v.String() == s {
			return v, true
		}
	}
	return 0, false
}

// MarshalJSON writes the severity's name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Finding is one problem in a document.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Column   int      `json:"column"`
	Pointer  string   `json:"pointer"` // JSON pointer of the node, or of its operation
	Message  string   `json:"message"`
	Fix      string   `json:"fix"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d:%d: %s %s: %s (fix: %s)", f.File, f.Line, f.Column, f.Severity, f.Rule, f.Message, f.Fix)
}

// Options select rules.
type Options struct {
	// Disable lists rule ids not to run.
	Disable []string
}

// Lint checks one document (YAML or JSON) and returns its findings in
// file order. An error means the document could not be read as OpenAPI 3.
func Lint(file string, src []byte, o Options) ([]Finding, error) {
	d, err := parse(file, src)
	if err != nil {
		return nil, err
	}
	var out []Finding
	seen := map[string]bool{}
	for _, rl := range rules {
		if slices.Contains(o.Disable, rl.id) {
			continue
		}
		rl.check(d, func(n *yaml.Node, ptr, msg string) {
			f := Finding{Rule: rl.id, Severity: rl.severity, File: file, Line: n.Line, Column: n.Column, Pointer: ptr, Message: msg, Fix: rl.fix}
			key := f.Rule + "|" + strconv.Itoa(f.Line) + "|" + strconv.Itoa(f.Column) + "|" + f.Message
			if !seen[key] {
				seen[key] = true
				out = append(out, f)
			}
		})
	}
	Sort(out)
	return out, nil
}

// Sort orders findings by file, line, column and rule.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		switch {
		case a.File != b.File:
			return cmpString(a.File, b.File)
		case a.Line != b.Line:
			return a.Line - b.Line
		case a.Column != b.Column:
			return a.Column - b.Column
		}
		return cmpString(a.Rule, b.Rule)
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// RuleInfo describes a rule for listings.
type RuleInfo struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
	Fix      string   `json:"fix"`
}

// allRules are the document rules and the cross-checks.
func allRules() []rule { return append(slices.Clone(rules), crossRules...) }

// Rules lists every rule, in table order (the cross-checks last).
func Rules() []RuleInfo {
	var out []RuleInfo
	for _, r := range allRules() {
		out = append(out, RuleInfo{r.id, r.severity, r.summary, r.fix})
	}
	return out
}

// Known reports whether id names a rule.
func Known(id string) bool {
	return slices.ContainsFunc(allRules(), func(r rule) bool { return r.id == id })
}

// WriteText writes one line per finding.
func WriteText(w io.Writer, fs []Finding) {
	for _, f := range fs {
		fmt.Fprintln(w, f)
	}
}

// WriteJSON writes the findings as a JSON array.
func WriteJSON(w io.Writer, fs []Finding) error {
	if fs == nil {
		fs = []Finding{}
	}
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(fs)
}

// WriteSARIF writes the findings as a SARIF 2.1.0 log: every rule in the
// tool's driver, each finding a result with its physical location and
// its JSON pointer as the logical location.
func WriteSARIF(w io.Writer, fs []Finding, version string) error {
	level := map[Severity]string{Info: sarif.LevelNote, Warning: sarif.LevelWarning, Error: sarif.LevelError}
	index := map[string]int{}
	driver := sarif.Driver{Name: "rampart spec lint", Version: version, InformationURI: "https://github.com/rampart-gw/rampart/blob/main/docs/api-docs.md"}
	for i, r := range allRules() {
		index[r.id] = i
		driver.Rules = append(driver.Rules, sarif.Rule{ID: r.id, ShortDescription: sarif.Message{Text: r.summary},
			Help: &sarif.Message{Text: r.fix}, DefaultConfiguration: sarif.Configuration{Level: level[r.severity]}})
	}
	var results []sarif.Result
	for _, f := range fs {
		results = append(results, sarif.Result{RuleID: f.Rule, RuleIndex: index[f.Rule], Level: level[f.Severity],
			Message:   sarif.Message{Text: f.Message + " (fix: " + f.Fix + ")"},
			Locations: []sarif.Location{sarif.At(f.File, f.Line, f.Column, f.Pointer, "member")}})
	}
	return sarif.Write(w, sarif.New(driver, results))
}

// Worst is the highest severity among fs (-1 when there is none).
func Worst(fs []Finding) Severity {
	worst := Severity(-1)
	for _, f := range fs {
		worst = max(worst, f.Severity)
	}
	return worst
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func itoa(i int) string { return strconv.Itoa(i) }
