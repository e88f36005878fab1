package audit

import (
	"fmt"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/speclint"
)

var documentRules = []Rule{
	{
		ID: "RA-DOC-001", Practice: Document, Severity: Low,
		Title: "A route has no OpenAPI document",
		Why:   "Without a document the route cannot be validated, published or compared with live traffic; what it serves is whatever the service does.",
		Refs:  []string{"OWASP API9:2023"},
		Fix:   "openapi: {spec: specs/orders.yaml}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.OpenAPI == nil && !r.Stream {
					ck.route(i, "", "route %q has no openapi document", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-DOC-002", Practice: Document, Severity: Medium,
		Title:     "An OpenAPI document fails the security lint",
		Why:       "Errors of the spec lint are contract gaps an attacker uses: operations without security, unbounded strings and arrays, secrets in examples.",
		Refs:      []string{"OWASP API9:2023", "OWASP API4:2023"},
		Fix:       "rampart spec lint --config rampart.yaml   # and fix the document",
		Documents: func(lint func() []documentFinding, ck *checker) { reportLint(lint(), speclint.Error, ck) },
	},
	{
		ID: "RA-DOC-003", Practice: Document, Severity: Low,
		Title:     "An OpenAPI document has lint warnings",
		Why:       "Warnings of the spec lint weaken validation (missing formats, bounds, examples) or the document's agreement with the routes.",
		Refs:      []string{"OWASP API9:2023"},
		Fix:       "rampart spec lint --config rampart.yaml --fail-on warning",
		Documents: func(lint func() []documentFinding, ck *checker) { reportLint(lint(), speclint.Warning, ck) },
	},
	{
		ID: "RA-DOC-004", Practice: Document, Severity: Low,
		Title: "API discovery is off",
		Why:   "Without discovery nobody learns of shadow endpoints (served, undocumented), zombie ones (documented, retired) or personal data in answers.",
		Refs:  []string{"OWASP API9:2023"},
		Fix:   "discovery: {sample: 0.01}",
		Check: func(c *config.Config, ck *checker) {
			if c.Discovery == nil {
				ck.at("discovery", "the discovery section is not set")
			}
		},
	},
	{
		ID: "RA-DOC-005", Practice: Document, Severity: Low,
		Title: "The API is not published",
		Why:   "Without a published document clients code against guesses, and reviewers cannot see what the gateway enforces.",
		Refs:  []string{"OWASP API9:2023"},
		Fix:   "docs: {title: Example API, listeners: [public]}",
		Check: func(c *config.Config, ck *checker) {
			if c.Docs == nil && len(c.Routes) > 0 {
				ck.at("docs", "the docs section is not set")
			}
		},
	},
}

// documentFinding is a spec lint finding on a document attached to
// route (the first route it is attached to).
type documentFinding struct {
	speclint.Finding
	route string
}

// lintDocuments runs the spec lint and its cross-check with the routes
// on every attached document; one that cannot be read or parsed is the
// plan's to report (openapi compiles it) and is left out here.
func lintDocuments(c *config.Config, read func(string) ([]byte, error)) []documentFinding {
	out := []documentFinding{}
	docs, _ := speclint.LintAttached(c.Routes, read, func(p string) string { return p }, speclint.Options{})
	for _, d := range docs {
		for _, f := range d.Findings {
			out = append(out, documentFinding{f, d.Routes[0].ID})
		}
	}
	return out
}

// reportLint reports the findings of one severity at their place in the
// document.
func reportLint(fs []documentFinding, severity speclint.Severity, ck *checker) {
	for _, x := range fs {
		if x.Severity == severity {
			ck.in(x.File, x.Line, x.Pointer, x.route, fmt.Sprintf("%s: %s (fix: %s)", x.Rule, x.Message, x.Fix))
		}
	}
}
