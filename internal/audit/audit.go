// Package audit grades a configuration against the eight practices of
// API gateway security (authenticate, authorize, encrypt, rate limit,
// validate, monitor, harden, document). Each rule reads the compiled
// config (defaults applied) and reports findings located by file, line
// and key path; accepted findings (audit.accept) are kept but do not
// count. The same report feeds `rampart audit`, `rampart check`, the
// enforcement of audit.fail_on on run and reload, and the admin API's
// posture.
package audit

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

// Practice is one of the eight practices a rule belongs to.
type Practice string

// The practices, in the order reports list them.
const (
	Authenticate Practice = "authenticate"
	Authorize    Practice = "authorize"
	Encrypt      Practice = "encrypt"
	RateLimit    Practice = "rate limit"
	Validate     Practice = "validate"
	Monitor      Practice = "monitor"
	Harden       Practice = "harden"
	Document     Practice = "document"
)

// Practices lists the practices in report order.
var Practices = []Practice{Authenticate, Authorize, Encrypt, RateLimit, Validate, Monitor, Harden, Document}

// Severity ranks a finding.
type Severity int

// Severities, lowest first.
const (
	Low Severity = iota + 1
	Medium
	High
	Critical
)

var severityNames = [...]string{"", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < Low || s > Critical {
		return "none"
	}
	return severityNames[s]
}

// ParseSeverity reads a severity name; "none" is 0 (nothing fails).
func ParseSeverity(s string) (Severity, bool) {
	if s == "" || s == "none" {
		return 0, true
	}
	i := slices.Index(severityNames[:], s)
	return Severity(i), i > 0
}

// MarshalText writes the severity's name (JSON reports).
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, ok := ParseSeverity(string(b))
	if !ok {
		return fmt.Errorf("unknown severity %q", b)
	}
	*s = v
	return nil
}

// Rule is one check. Check reports its findings through the checker.
type Rule struct {
	ID       string // RA-<PRACTICE>-NNN, stable across releases
	Practice Practice
	Severity Severity
	Title    string // what is wrong, as a heading
	Why      string // one sentence: the risk
	Refs     []string
	Fix      string // a config snippet that resolves it
	Check    func(c *config.Config, ck *checker)
	// Documents checks the spec lint's findings on the routes' OpenAPI
	// documents (run only when the caller can read them; the documents
	// are linted once per audit, whichever rules ask).
	Documents func(lint func() []documentFinding, ck *checker)
}

// Finding is one place a rule found its problem.
type Finding struct {
	Rule     string   `json:"rule"`
	Practice Practice `json:"practice"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Path     string   `json:"path"`
	Route    string   `json:"route,omitempty"`
	Message  string   `json:"message"`
	Why      string   `json:"why"`
	Refs     []string `json:"refs,omitempty"`
	Fix      string   `json:"fix"`
	// Accepted is the acceptance that covers the finding (nil: none).
	Accepted *Acceptance `json:"accepted,omitempty"`
	// Expired is the date of an acceptance that no longer holds.
	Expired string `json:"expired,omitempty"`
}

// Acceptance is an audit.accept entry that covers a finding.
type Acceptance struct {
	Reason  string `json:"reason"`
	Expires string `json:"expires"`
}

// Counts reports whether the finding counts (is not accepted).
func (f Finding) Counts() bool { return f.Accepted == nil }

// Key identifies a finding across reloads: the same rule at the same
// key path, a route named by its id rather than its position (a route
// added before it is no new finding).
func (f Finding) Key() string {
	path := f.Path
	if f.Route != "" && strings.HasPrefix(path, "routes[") {
		if _, rest, ok := strings.Cut(path, "]"); ok {
			path = "routes[" + f.Route + "]" + rest
		}
	}
	return f.Rule + " " + path
}

func (f Finding) String() string {
	loc := f.File
	if f.Line > 0 {
		loc = fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	return fmt.Sprintf("%s: %s %s %s: %s", loc, f.Severity, f.Rule, f.Path, f.Message)
}

// checker collects one rule's findings.
type checker struct {
	c    *config.Config
	rule *Rule
	out  []Finding
}

// at reports a finding at a key path.
func (ck *checker) at(path, format string, args ...any) {
	ck.add(path, "", fmt.Sprintf(format, args...))
}

// route reports a finding on route i, at sub (a key under the route;
// empty: the route itself).
func (ck *checker) route(i int, sub, format string, args ...any) {
	path := fmt.Sprintf("routes[%d]", i)
	if sub != "" {
		path += "." + sub
	}
	ck.add(path, ck.c.Routes[i].ID, fmt.Sprintf(format, args...))
}

// add reports a finding at a key path of the config.
func (ck *checker) add(path, route, msg string) { ck.in(ck.c.File, ck.c.Line(path), path, route, msg) }

// in reports a finding in file at line, named by path (a key path, or a
// JSON pointer in an OpenAPI document), on behalf of route.
func (ck *checker) in(file string, line int, path, route, msg string) {
	r := ck.rule
	ck.out = append(ck.out, Finding{Rule: r.ID, Practice: r.Practice, Severity: r.Severity, Title: r.Title,
		File: file, Line: line, Path: path, Route: route, Message: msg, Why: r.Why, Refs: r.Refs, Fix: r.Fix})
}

// Options change what a run sees.
type Options struct {
	// Now is the clock that expires acceptances (default time.Now).
	Now func() time.Time
	// Documents reads a route's OpenAPI document (its path as in the
	// config); nil: the document rules that need it do not run.
	Documents func(path string) ([]byte, error)
}

// Run audits cfg with every rule.
func Run(cfg *config.Config, o Options) *Report {
	return RunRules(cfg, o, Rules())
}

// RunRules audits cfg with the given rules (tests run one at a time).
func RunRules(cfg *config.Config, o Options, rules []Rule) *Report {
	if o.Now == nil {
		o.Now = time.Now
	}
	var out []Finding
	var linted []documentFinding
	lint := func() []documentFinding {
		if linted == nil {
			linted = lintDocuments(cfg, o.Documents)
		}
		return linted
	}
	for i := range rules {
		ck := &checker{c: cfg, rule: &rules[i]}
		if rules[i].Check != nil {
			rules[i].Check(cfg, ck)
		}
		if rules[i].Documents != nil && o.Documents != nil {
			rules[i].Documents(lint, ck)
		}
		out = append(out, ck.out...)
	}
	r := &Report{File: cfg.File, Findings: out}
	r.accept(cfg, o.Now())
	r.sort()
	r.grade()
	return r
}

// accept marks the findings the config's acceptances cover and lists
// the acceptances that cover nothing.
func (r *Report) accept(cfg *config.Config, now time.Time) {
	if cfg.Audit == nil {
		return
	}
	for i, a := range cfg.Audit.Accept {
		until, _ := a.ExpiresAt()
		used := false
		for j := range r.Findings {
			f := &r.Findings[j]
			if f.Rule != a.Rule || (a.Route != "" && f.Route != a.Route) {
				continue
			}
			used = true
			if now.Before(until) {
				f.Accepted = &Acceptance{Reason: a.Reason, Expires: a.Expires}
			} else {
				f.Expired = a.Expires
			}
		}
		switch _, known := Lookup(a.Rule); {
		case !known:
			r.Unused = append(r.Unused, fmt.Sprintf("audit.accept[%d]: %s is not a rule", i, a.Rule))
		case !used:
			r.Unused = append(r.Unused, fmt.Sprintf("audit.accept[%d]: %s%s matches no finding", i, a.Rule, onRoute(a.Route)))
		}
	}
}

func onRoute(id string) string {
	if id == "" {
		return ""
	}
	return " on route " + id
}

// sort orders findings by line, then rule.
func (r *Report) sort() {
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return strings.Compare(a.Rule, b.Rule)
	})
}

// Failing is the findings that count at or above threshold (0: none).
func (r *Report) Failing(threshold Severity) []Finding {
	if threshold == 0 {
		return nil
	}
	var out []Finding
	for _, f := range r.Findings {
		if f.Counts() && f.Severity >= threshold {
			out = append(out, f)
		}
	}
	return out
}

// Enforce is the error that refuses cfg when audit.fail_on is set and
// findings at or above it are not accepted: one problem per finding,
// at its line, so run and reload report them like any config error.
func Enforce(cfg *config.Config, r *Report) error {
	if cfg.Audit == nil {
		return nil
	}
	threshold, _ := ParseSeverity(cfg.Audit.FailOn)
	var errs []error
	for _, f := range r.Failing(threshold) {
		expired := ""
		if f.Expired != "" {
			expired = fmt.Sprintf("; its acceptance expired after %s", f.Expired)
		}
		// At the finding's own place: a document's findings are in the
		// document, not the config.
		errs = append(errs, &config.FieldError{File: f.File, Line: f.Line, Path: f.Path, Msg: fmt.Sprintf(
			"audit %s (%s, fail_on: %s): %s%s; accept it under audit.accept with a reason and an expiry, or fix: %s",
			f.Rule, f.Severity, cfg.Audit.FailOn, f.Message, expired, oneLine(f.Fix))})
	}
	return errors.Join(errs...)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
