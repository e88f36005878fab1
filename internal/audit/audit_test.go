package audit

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/sarif"
	"github.com/rampart-gw/rampart/internal/sarif/sariftest"
)

func finding(rule string, p Practice, s Severity) Finding {
	return Finding{Rule: rule, Practice: p, Severity: s}
}

func TestGrades(t *testing.T) {
	for _, c := range []struct {
		name     string
		findings []Finding
		practice string // the authenticate practice's grade
		score    int
		overall  string
	}{
		{"none", nil, "A", 100, "A"},
		{"one low", []Finding{finding("R1", Authenticate, Low)}, "A", 98, "A"},
		{"one medium", []Finding{finding("R1", Authenticate, Medium)}, "B", 90, "A"},
		{"one high", []Finding{finding("R1", Authenticate, High)}, "C", 75, "B"},
		{"one critical", []Finding{finding("R1", Authenticate, Critical)}, "D", 50, "C"},
		{"critical and high", []Finding{finding("R1", Authenticate, Critical), finding("R2", Authenticate, High)}, "F", 25, "D"},
		// One rule failing on ten routes: 25 + 9 quarters, capped at 50.
		{"a high repeated", repeat(finding("R1", Authenticate, High), 10), "D", 50, "C"},
		{"accepted", []Finding{{Rule: "R1", Practice: Authenticate, Severity: Critical, Accepted: &Acceptance{Reason: "r", Expires: "2030-01-01"}}}, "A", 100, "A"},
	} {
		r := &Report{Findings: c.findings}
		r.grade()
		g := r.Practice(Authenticate)
		if g.Grade != c.practice || g.Score != c.score || r.Grade != c.overall {
			t.Errorf("%s: authenticate %s (%d), overall %s; want %s (%d), %s", c.name, g.Grade, g.Score, r.Grade, c.practice, c.score, c.overall)
		}
	}
}

func repeat(f Finding, n int) []Finding {
	out := make([]Finding, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// acceptConfig is the clean config with one finding (RA-AUTHN-004 on
// the route create) and the given audit section.
func acceptConfig(t *testing.T, section string) *config.Config {
	return parse(t, strings.Replace(clean, "auth: {jwt: [corp], max_token_lifetime: 15m}", "auth: {jwt: [corp]}", 1)+section)
}

func TestAcceptances(t *testing.T) {
	setEnv(t)
	now := func() time.Time { return time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		name          string
		section       string
		accepted      bool
		expired       string
		unused, fails int
	}{
		{"none", "audit: {fail_on: medium}\n", false, "", 0, 1},
		{"accepted", "audit:\n  fail_on: medium\n  accept: [{rule: RA-AUTHN-004, reason: tokens are checked upstream, expires: 2027-03-01}]\n", true, "", 0, 0},
		{"on its route", "audit:\n  fail_on: medium\n  accept: [{rule: RA-AUTHN-004, route: create, reason: r, expires: 2027-06-01}]\n", true, "", 0, 0},
		{"on another route", "audit:\n  fail_on: medium\n  accept: [{rule: RA-AUTHN-004, route: orders, reason: r, expires: 2027-06-01}]\n", false, "", 1, 1},
		{"expired", "audit:\n  fail_on: medium\n  accept: [{rule: RA-AUTHN-004, reason: r, expires: 2027-02-28}]\n", false, "2027-02-28", 0, 1},
		{"other rule", "audit:\n  fail_on: medium\n  accept: [{rule: RA-AUTHN-005, reason: r, expires: 2027-06-01}]\n", false, "", 1, 1},
		{"below the threshold", "audit: {fail_on: high}\n", false, "", 0, 0},
		{"reports only", "audit: {fail_on: none}\n", false, "", 0, 0},
	} {
		cfg := acceptConfig(t, c.section)
		r := RunRules(cfg, Options{Now: now}, authnRules)
		var f *Finding
		for i := range r.Findings {
			if r.Findings[i].Rule == "RA-AUTHN-004" {
				f = &r.Findings[i]
			}
		}
		if f == nil || f.Route != "create" {
			t.Fatalf("%s: RA-AUTHN-004 on create not found: %v", c.name, r.Findings)
		}
		if (f.Accepted != nil) != c.accepted || f.Expired != c.expired || len(r.Unused) != c.unused {
			t.Errorf("%s: accepted %v, expired %q, unused %v", c.name, f.Accepted, f.Expired, r.Unused)
		}
		err := Enforce(cfg, r)
		if n := len(config.FieldErrors(err)); n != c.fails {
			t.Errorf("%s: %d problems, want %d: %v", c.name, n, c.fails, err)
		}
		if err != nil && (!strings.Contains(err.Error(), "audit-test.yaml:") || !strings.Contains(err.Error(), "RA-AUTHN-004")) {
			t.Errorf("%s: the refusal names no file, line or rule: %v", c.name, err)
		}
	}
}

func TestAcceptanceSectionChecked(t *testing.T) {
	setEnv(t)
	for section, want := range map[string]string{
		"audit:\n  accept: [{rule: AUTHN-4, reason: r, expires: 2027-06-01}]\n":          "audit.accept[0].rule",
		"audit:\n  accept: [{rule: RA-AUTHN-004, reason: \" \", expires: 2027-06-01}]\n": "audit.accept[0].reason",
		"audit:\n  accept: [{rule: RA-AUTHN-004, reason: r, expires: next year}]\n":      "audit.accept[0].expires",
		"audit:\n  accept: [{rule: RA-AUTHN-004, expires: 2027-06-01}]\n":                "audit.accept[0].reason",
		"audit: {fail_on: severe}\n": "audit.fail_on",
	} {
		_, err := config.Parse([]byte(clean+section), "../../examples/audit-test.yaml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want a problem at %s", section, err, want)
		}
	}
}

// A report with findings of every severity, one accepted and one whose
// acceptance expired, in each format.
func sampleReport(t *testing.T) *Report {
	setEnv(t)
	yaml := chain(ruleCases["RA-HARD-005"].bad, ruleCases["RA-TLS-001"].bad, ruleCases["RA-AUTHN-004"].bad, ruleCases["RA-MON-005"].bad, ruleCases["RA-RATE-002"].bad)(clean) +
		"audit:\n  accept:\n    - {rule: RA-MON-005, reason: traces are sampled by the mesh, expires: 2099-01-01}\n    - {rule: RA-RATE-002, reason: r, expires: 2020-01-01}\n"
	r := Run(parse(t, yaml), Options{})
	for _, want := range []string{"RA-HARD-005", "RA-TLS-001", "RA-AUTHN-004", "RA-MON-005", "RA-RATE-002"} {
		if !slices.ContainsFunc(r.Findings, func(f Finding) bool { return f.Rule == want }) {
			t.Fatalf("%s not found: %v", want, r.Findings)
		}
	}
	return r
}

func TestSARIF(t *testing.T) {
	r := sampleReport(t)
	var b bytes.Buffer
	if err := WriteSARIF(&b, r, "test"); err != nil {
		t.Fatal(err)
	}
	sariftest.Validate(t, b.Bytes())
	var log sarif.Log
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if len(run.Tool.Driver.Rules) != len(Rules()) || len(run.Results) != len(r.Findings) {
		t.Fatalf("%d rules, %d results", len(run.Tool.Driver.Rules), len(run.Results))
	}
	levels := map[string]string{}
	for i, res := range run.Results {
		f := r.Findings[i]
		rule := run.Tool.Driver.Rules[res.RuleIndex]
		loc := res.Locations[0]
		if rule.ID != f.Rule || loc.PhysicalLocation.Region.StartLine != f.Line || loc.PhysicalLocation.ArtifactLocation.URI != f.File ||
			loc.LogicalLocations[0].FullyQualifiedName != f.Path {
			t.Errorf("result %d does not match %s: %+v", i, f, res)
		}
		if (len(res.Suppressions) > 0) != (f.Accepted != nil) {
			t.Errorf("%s: suppressions %v, accepted %v", f.Rule, res.Suppressions, f.Accepted)
		}
		levels[f.Rule] = res.Level
	}
	if levels["RA-HARD-005"] != "error" || levels["RA-AUTHN-004"] != "warning" || levels["RA-MON-005"] != "note" {
		t.Errorf("levels %v", levels)
	}
}

func TestTextAndJSON(t *testing.T) {
	r := sampleReport(t)
	var b bytes.Buffer
	WriteText(&b, r)
	out := b.String()
	for _, want := range []string{"grade ", "authenticate", "CRITICAL RA-HARD-005", "why: ", "fix:\n", "accepted (not counted):", "traces are sampled by the mesh", "expired after 2020-01-01"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Grade != r.Grade || len(back.Findings) != len(r.Findings) || len(back.Practices) != 8 {
		t.Errorf("JSON: %v %s", err, b.String())
	}
	if s := r.Summary(); !strings.Contains(s, "1 critical") || !strings.Contains(s, "1 accepted") {
		t.Errorf("summary %q", s)
	}
}

func TestFindingKeyNamesRoutesByID(t *testing.T) {
	a := Finding{Rule: "RA-AUTHN-004", Path: "routes[0].auth", Route: "orders"}
	b := Finding{Rule: "RA-AUTHN-004", Path: "routes[3].auth", Route: "orders"}
	c := Finding{Rule: "RA-AUTHN-004", Path: "routes[3].auth", Route: "create"}
	if a.Key() != b.Key() || b.Key() == c.Key() || a.Key() != "RA-AUTHN-004 routes[orders].auth" {
		t.Errorf("keys %q %q %q", a.Key(), b.Key(), c.Key())
	}
}

// A document's finding is refused at its place in the document.
func TestEnforceLocatesDocumentFindings(t *testing.T) {
	setEnv(t)
	cfg := parse(t, clean+"audit: {fail_on: medium}\n")
	r := RunRules(cfg, Options{Documents: documentsFor("RA-DOC-002")}, documentRules)
	fe := config.FieldErrors(Enforce(cfg, r))
	if len(fe) == 0 {
		t.Fatal("no refusal")
	}
	for _, e := range fe {
		if !strings.HasSuffix(e.File, "orders.yaml") || e.Line < 2 || !strings.HasPrefix(e.Path, "/paths/") {
			t.Errorf("located at %s:%d %s", e.File, e.Line, e.Path)
		}
	}
}
