package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/rampart-gw/rampart/internal/sarif"
)

// docsURL is the rule catalogue; each rule has an anchor named by its
// id in lower case.
const docsURL = "https://github.com/rampart-gw/rampart/blob/main/docs/audit.md"

// WriteText writes the grades and every finding, counted ones first,
// each with why it matters and the fix.
func WriteText(w io.Writer, r *Report) {
	fmt.Fprintf(w, "%s: grade %s (%d/100)\n\n", r.File, r.Grade, r.Score)
	fmt.Fprintf(w, "  %-14s %-5s %5s  %s\n", "practice", "grade", "score", "findings")
	for _, g := range r.Practices {
		fmt.Fprintf(w, "  %-14s %-5s %5d  %s\n", g.Practice, g.Grade, g.Score, countsText(g.Findings))
	}
	var accepted []Finding
	for _, f := range r.Findings {
		if !f.Counts() {
			accepted = append(accepted, f)
			continue
		}
		fmt.Fprintf(w, "\n%s:%d: %s %s %s\n", f.File, f.Line, strings.ToUpper(f.Severity.String()), f.Rule, f.Path)
		fmt.Fprintf(w, "  %s\n  why: %s", f.Message, f.Why)
		if len(f.Refs) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(f.Refs, ", "))
		}
		if f.Expired != "" {
			fmt.Fprintf(w, "\n  its acceptance expired after %s", f.Expired)
		}
		fmt.Fprintf(w, "\n  fix:\n    %s\n", strings.ReplaceAll(f.Fix, "\n", "\n    "))
	}
	if len(accepted) > 0 {
		fmt.Fprintf(w, "\naccepted (not counted):\n")
		for _, f := range accepted {
			fmt.Fprintf(w, "  %s:%d: %s %s %s: %s (until %s)\n", f.File, f.Line, f.Severity, f.Rule, f.Path, f.Accepted.Reason, f.Accepted.Expires)
		}
	}
	for _, u := range r.Unused {
		fmt.Fprintf(w, "\nwarning: %s\n", u)
	}
}

// Summary is one line: the grade and the counted findings by severity.
func (r *Report) Summary() string {
	counts := map[string]int{}
	accepted := 0
	for _, f := range r.Findings {
		if f.Counts() {
			counts[f.Severity.String()]++
		} else {
			accepted++
		}
	}
	s := fmt.Sprintf("grade %s (%d/100)", r.Grade, r.Score)
	if c := countsText(counts); c != "" {
		s += ", " + c
	} else {
		s += ", no findings"
	}
	if accepted > 0 {
		s += fmt.Sprintf(", %d accepted", accepted)
	}
	return s
}

// countsText is "1 critical, 2 high, ..." (highest first).
func countsText(m map[string]int) string {
	var parts []string
	for s := Critical; s >= Low; s-- {
		if n := m[s.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return strings.Join(parts, ", ")
}

// WriteJSON writes the report as JSON.
func WriteJSON(w io.Writer, r *Report) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// level is a severity's SARIF level; securitySeverity the score GitHub
// code scanning ranks security results by (critical ≥ 9, high ≥ 7,
// medium ≥ 4).
func level(s Severity) string {
	switch s {
	case Critical, High:
		return sarif.LevelError
	case Medium:
		return sarif.LevelWarning
	}
	return sarif.LevelNote
}

var securitySeverity = map[Severity]string{Low: "3.0", Medium: "5.5", High: "8.0", Critical: "9.5"}

// WriteSARIF writes the report as a SARIF 2.1.0 log: every rule in the
// driver (with its why, references and fix), every finding a result at
// its file and line, with its key path as the logical location;
// accepted findings are results suppressed in source, with the reason.
func WriteSARIF(w io.Writer, r *Report, version string) error {
	driver := sarif.Driver{Name: "rampart audit", Version: version, InformationURI: docsURL}
	index := map[string]int{}
	for i, rule := range Rules() {
		index[rule.ID] = i
		driver.Rules = append(driver.Rules, sarif.Rule{
			ID: rule.ID, Name: ruleName(rule.Title),
			ShortDescription: sarif.Message{Text: rule.Title},
			FullDescription:  &sarif.Message{Text: rule.Why},
			Help: &sarif.Message{Text: rule.Why + " Fix: " + oneLine(rule.Fix),
				Markdown: fmt.Sprintf("%s\n\nReferences: %s\n\nFix:\n\n```yaml\n%s\n```", rule.Why, strings.Join(rule.Refs, ", "), rule.Fix)},
			HelpURI:              docsURL + "#" + strings.ToLower(rule.ID),
			DefaultConfiguration: sarif.Configuration{Level: level(rule.Severity)},
			Properties: map[string]any{"tags": []string{"security", string(rule.Practice)}, "security-severity": securitySeverity[rule.Severity],
				"precision": "high", "problem.severity": level(rule.Severity)},
		})
	}
	var results []sarif.Result
	for _, f := range r.Findings {
		res := sarif.Result{RuleID: f.Rule, RuleIndex: index[f.Rule], Level: level(f.Severity),
			Message:             sarif.Message{Text: f.Message + ". " + f.Why},
			Locations:           []sarif.Location{sarif.At(f.File, f.Line, 0, f.Path, "member")},
			PartialFingerprints: map[string]string{"rampartFinding/v1": f.Key()}}
		if f.Accepted != nil {
			res.Suppressions = []sarif.Suppression{{Kind: "inSource", Justification: fmt.Sprintf("%s (accepted until %s)", f.Accepted.Reason, f.Accepted.Expires)}}
		}
		results = append(results, res)
	}
	return sarif.Write(w, sarif.New(driver, results))
}

// ruleName is a title in CamelCase, SARIF's convention for rule names.
func ruleName(title string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(title, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// WriteCatalogue writes the rule catalogue as Markdown: a table of every
// rule, then each rule with why it matters, its references and the fix
// (docs/audit.md holds it between markers, and a test keeps it current).
func WriteCatalogue(w io.Writer) {
	fmt.Fprintf(w, "| rule | severity | practice | finding |\n|---|---|---|---|\n")
	for _, r := range Rules() {
		fmt.Fprintf(w, "| [%s](#%s) | %s | %s | %s |\n", r.ID, strings.ToLower(r.ID), r.Severity, r.Practice, r.Title)
	}
	for _, p := range Practices {
		fmt.Fprintf(w, "\n### %s\n", strings.ToUpper(string(p[:1]))+string(p[1:]))
		for _, r := range Rules() {
			if r.Practice != p {
				continue
			}
			fmt.Fprintf(w, "\n<a id=\"%s\"></a>\n#### %s: %s\n\n", strings.ToLower(r.ID), r.ID, r.Title)
			fmt.Fprintf(w, "Severity **%s**", r.Severity)
			if len(r.Refs) > 0 {
				fmt.Fprintf(w, " · %s", strings.Join(r.Refs, ", "))
			}
			fmt.Fprintf(w, "\n\n%s\n\nFix:\n\n```yaml\n%s\n```\n", r.Why, r.Fix)
		}
	}
}
