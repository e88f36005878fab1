package speclint

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/sarif/sariftest"
)

// breaks holds, for every rule, edits of testdata/clean.yaml (which
// passes every rule) that break it: old text, new text, and again.
var breaks = map[string][]string{
	"owasp:api1:2023-no-numeric-ids": {
		`schema: {type: string, format: uuid, maxLength: 36}
    get:`, `schema: {type: integer, format: int64, minimum: 1, maximum: 999999}
    get:`},
	"owasp:api2:2023-no-http-basic":         {"    adminCert:\n      type: mutualTLS", "    adminCert:\n      type: http\n      scheme: basic"},
	"owasp:api2:2023-no-api-keys-in-url":    {"    adminCert:\n      type: mutualTLS", "    adminCert:\n      type: apiKey\n      in: query\n      name: key"},
	"owasp:api2:2023-auth-insecure-schemes": {"    adminCert:\n      type: mutualTLS", "    adminCert:\n      type: http\n      scheme: negotiate"},
	"owasp:api2:2023-no-credentials-in-url": {
		"      - name: order_id\n        in: path", "      - name: access_token\n        in: query\n        schema: {type: string, format: byte, maxLength: 64}\n      - name: order_id\n        in: path"},
	"owasp:api2:2023-jwt-best-practices":        {"following RFC8725, ", ""},
	"owasp:api2:2023-short-lived-access-tokens": {"          refreshUrl: https://login.example.com/token\n", ""},
	"owasp:api2:2023-write-restricted":          {"      security:\n        - oidc: [orders:write]\n", "      security: []\n"},
	"owasp:api2:2023-read-restricted":           {"security:\n  - oidc: [orders:read]\npaths:", "paths:"},
	"owasp:api3:2023-no-additionalProperties": {"openapi: 3.1.0", "openapi: 3.0.3",
		"    Problem:\n      type: object\n      additionalProperties: false", "    Problem:\n      type: object\n      additionalProperties: true"},
	"owasp:api3:2023-constrained-additionalProperties": {"openapi: 3.1.0", "openapi: 3.0.3",
		"    Problem:\n      type: object\n      additionalProperties: false", "    Problem:\n      type: object\n      additionalProperties: {type: string, maxLength: 10, pattern: \"^a$\"}"},
	"owasp:api3:2023-no-unevaluatedProperties": {
		"    Problem:\n      type: object\n      additionalProperties: false", "    Problem:\n      type: object\n      unevaluatedProperties: true"},
	"owasp:api3:2023-constrained-unevaluatedProperties": {
		"    Problem:\n      type: object\n      additionalProperties: false", "    Problem:\n      type: object\n      unevaluatedProperties: {type: string, maxLength: 10, pattern: \"^a$\"}"},
	"owasp:api4:2023-rate-limit": {
		"        \"204\":\n          description: stored\n          headers: *headers", "        \"204\":\n          description: stored"},
	"owasp:api4:2023-rate-limit-retry-after": {
		"        Retry-After: {schema: {type: integer, format: int32, minimum: 0, maximum: 86400}}\n", ""},
	"owasp:api4:2023-rate-limit-responses-429": {
		"        \"429\": {$ref: \"#/components/responses/TooMany\"}\n", ""},
	"owasp:api4:2023-array-limit":           {"                maxItems: 100\n", ""},
	"owasp:api4:2023-string-limit":          {`note: {type: string, maxLength: 200, pattern: "^[^<>]*$"`, `note: {type: string, pattern: "^[^<>]*$"`},
	"owasp:api4:2023-string-restricted":     {`note: {type: string, maxLength: 200, pattern: "^[^<>]*$"`, `note: {type: string, maxLength: 200`},
	"owasp:api4:2023-integer-limit":         {"qty: {type: integer, format: int32, minimum: 1, maximum: 1000}", "qty: {type: integer, format: int32, minimum: 1}"},
	"owasp:api4:2023-integer-format":        {"qty: {type: integer, format: int32, minimum: 1, maximum: 1000}", "qty: {type: integer, minimum: 1, maximum: 1000}"},
	"owasp:api5:2023-admin-security-unique": {"        - adminCert: []", "        - oidc: [orders:write]"},
	"rampart:admin-scheme-shared":           {"        - adminCert: []", "        - oidc: [orders:read]"},
	"owasp:api7:2023-concerning-url-parameter": {
		"      - name: order_id\n        in: path", "      - name: callback\n        in: query\n        schema: {type: string, format: uri, maxLength: 200}\n      - name: order_id\n        in: path"},
	"owasp:api8:2023-define-cors-origin": {
		"        Access-Control-Allow-Origin: {schema: {type: string, format: uri, maxLength: 200}}\n      content:", "      content:"},
	"owasp:api8:2023-define-error-responses-401": {"        \"401\": {$ref: \"#/components/responses/Problem\"}\n", ""},
	"owasp:api8:2023-define-error-responses-500": {"        \"500\": {$ref: \"#/components/responses/Problem\"}\n    put:", "    put:"},
	"owasp:api8:2023-define-error-validation":    {"        \"400\": {$ref: \"#/components/responses/Problem\"}\n", ""},
	"owasp:api8:2023-no-server-http":             {"url: https://api.example.com", "url: http://api.example.com"},
	"owasp:api9:2023-inventory-access":           {"    x-internal: false\n", ""},
	"owasp:api9:2023-inventory-environment":      {"    description: production\n", "    description: the API\n"},
	"rampart:sensitive-response-field": {
		"        qty: {type: integer", "        password: {type: string, format: password, maxLength: 64}\n        qty: {type: integer"},
	"rampart:secret-like-example": {`example: "leave at the door"`, `example: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.MEUCIQDx3k1mZ8a9b7c6d5e4f3g2h1"`},
	"rampart:request-body-open": {
		"            schema: {$ref: \"#/components/schemas/Order\"}\n      responses:\n        \"204\"",
		"            schema: {type: object, properties: {qty: {type: integer, format: int32, minimum: 1, maximum: 9}}}\n      responses:\n        \"204\""},
}

func lint(t *testing.T, src []byte) []Finding {
	t.Helper()
	fs, err := Lint("api.yaml", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func ruleIDs(fs []Finding) map[string]bool {
	out := map[string]bool{}
	for _, f := range fs {
		out[f.Rule] = true
	}
	return out
}

// TestEveryRule: the clean document passes every rule; for each rule, an
// edit that breaks it is reported by that rule, at a line of the
// document. No rule goes untested.
func TestEveryRule(t *testing.T) {
	clean, err := os.ReadFile("testdata/clean.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if fs := lint(t, clean); len(fs) != 0 {
		var b bytes.Buffer
		WriteText(&b, fs)
		t.Fatalf("the clean document has findings:\n%s", b.String())
	}
	for _, r := range rules {
		edits, ok := breaks[r.id]
		if !ok {
			t.Errorf("rule %s has no test", r.id)
			continue
		}
		doc, ok := edit(clean, edits)
		if !ok {
			t.Errorf("%s: the edit's text is not in the clean document", r.id)
			continue
		}
		fs := lint(t, doc)
		found := false
		for _, f := range fs {
			if f.Rule == r.id {
				found = true
				if f.Line == 0 || f.Fix == "" || f.Message == "" || f.Severity != r.severity {
					t.Errorf("%s: incomplete finding %+v", r.id, f)
				}
			}
		}
		if !found {
			t.Errorf("%s: the edit was not reported; findings: %v", r.id, ruleIDs(fs))
		}
	}
	if len(breaks) != len(rules) {
		t.Errorf("%d edits for %d rules", len(breaks), len(rules))
	}
}

// edit applies old/new pairs to doc (false when an old text is missing).
func edit(doc []byte, pairs []string) ([]byte, bool) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !bytes.Contains(doc, []byte(pairs[i])) {
			return nil, false
		}
		doc = bytes.Replace(doc, []byte(pairs[i]), []byte(pairs[i+1]), 1)
	}
	return doc, true
}

// TestNegatives: shapes that must not be reported.
func TestNegatives(t *testing.T) {
	clean, _ := os.ReadFile("testdata/clean.yaml")
	for name, c := range map[string]struct {
		old, new, rule string
	}{
		"a fake JWT example":            {`example: "leave at the door"`, `example: "eyJhbGciOi...example"`, "rampart:secret-like-example"},
		"a short token example":         {`example: "leave at the door"`, `example: "abc"`, "rampart:secret-like-example"},
		"a write-only password":         {"        qty: {type: integer", "        password: {type: string, format: password, maxLength: 64, writeOnly: true}\n        qty: {type: integer", "rampart:sensitive-response-field"},
		"client credentials only":       {"        authorizationCode:\n          authorizationUrl: https://login.example.com/auth\n          tokenUrl: https://login.example.com/token\n          refreshUrl: https://login.example.com/token", "        clientCredentials:\n          tokenUrl: https://login.example.com/token", "owasp:api2:2023-short-lived-access-tokens"},
		"a relative server url":         {"url: https://api.example.com", "url: /v1", ""},
		"exclusive bounds in 3.1":       {"qty: {type: integer, format: int32, minimum: 1, maximum: 1000}", "qty: {type: integer, format: int32, exclusiveMinimum: 0, exclusiveMaximum: 1001}", "owasp:api4:2023-integer-limit"},
		"a bounded unevaluatedProperty": {"    Problem:\n      type: object\n      additionalProperties: false", "    Problem:\n      type: object\n      maxProperties: 8\n      unevaluatedProperties: {type: string, maxLength: 10, pattern: \"^a$\"}", "owasp:api3:2023-constrained-unevaluatedProperties"},
		"additionalProperties in 3.1":   {"    Problem:\n      type: object\n      additionalProperties: false", "    Problem:\n      type: object\n      additionalProperties: true", "owasp:api3:2023-no-additionalProperties"},
		"a response without headers":    {"        \"204\":\n          description: stored\n          headers: *headers", "        \"204\":\n          description: stored", "owasp:api8:2023-define-cors-origin"},
		"other scopes on an admin path": {"        - adminCert: []", "        - oidc: [orders:read]", "owasp:api5:2023-admin-security-unique"},
	} {
		if c.rule == "" {
			c.rule = "owasp:api8:2023-no-server-http"
		}
		if !bytes.Contains(clean, []byte(c.old)) {
			t.Fatalf("%s: text not in the clean document", name)
		}
		if ids := ruleIDs(lint(t, bytes.Replace(clean, []byte(c.old), []byte(c.new), 1))); ids[c.rule] {
			t.Errorf("%s: reported by %s", name, c.rule)
		}
	}
}

// TestLocationsAndFormats: a finding names the file, line and column of
// the node; JSON and SARIF 2.1.0 carry the same findings; JSON documents
// are read too.
func TestLocationsAndFormats(t *testing.T) {
	src := []byte(`openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /login:
    post:
      parameters:
        - {name: password, in: query, schema: {type: string, maxLength: 10, pattern: "^.*$"}}
      responses: {}
`)
	fs := lint(t, src)
	var cred *Finding
	for i := range fs {
		if fs[i].Rule == "owasp:api2:2023-no-credentials-in-url" {
			cred = &fs[i]
		}
	}
	if cred == nil || cred.Line != 7 || cred.Column != 11 || cred.File != "api.yaml" || !strings.Contains(cred.String(), "api.yaml:7:11: error owasp:api2:2023-no-credentials-in-url") {
		t.Fatalf("credential finding: %+v", cred)
	}
	var js []map[string]any
	var b bytes.Buffer
	if err := WriteJSON(&b, fs); err != nil || json.Unmarshal(b.Bytes(), &js) != nil || len(js) != len(fs) || js[0]["severity"] == nil {
		t.Fatalf("JSON: %v %s", err, b.String())
	}
	b.Reset()
	if err := WriteSARIF(&b, fs, "test"); err != nil {
		t.Fatal(err)
	}
	sariftest.Validate(t, b.Bytes())
	var sarif struct {
		Version string
		Runs    []struct {
			Tool struct {
				Driver struct{ Rules []struct{ ID string } }
			}
			Results []struct {
				RuleID    string
				Level     string
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine int }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(b.Bytes(), &sarif); err != nil || sarif.Version != "2.1.0" || len(sarif.Runs[0].Results) != len(fs) ||
		len(sarif.Runs[0].Tool.Driver.Rules) != len(rules)+len(crossRules) || sarif.Runs[0].Results[0].Locations[0].PhysicalLocation.Region.StartLine == 0 {
		t.Fatalf("SARIF: %v %s", err, b.String())
	}
	asJSON := []byte(`{"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
 "servers": [{"url": "http://api.internal"}], "paths": {}}`)
	if ids := ruleIDs(lint(t, asJSON)); !ids["owasp:api8:2023-no-server-http"] {
		t.Fatalf("JSON document: %v", ids)
	}
	for _, bad := range []string{"swagger: '2.0'\n", "- a list\n", "openapi: 4.0.0\n", "{"} {
		if _, err := Lint("x.yaml", []byte(bad), Options{}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestAliasBomb: a document of nested aliases is linted in bounded time
// (each anchored node is walked once).
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\ncomponents:\n  schemas:\n    a0: &a0 {type: string}\n")
	for i := 1; i < 30; i++ {
		b.WriteString("    a" + itoa(i) + ": &a" + itoa(i) + " [*a" + itoa(i-1) + ", *a" + itoa(i-1) + "]\n")
	}
	fs := lint(t, []byte(b.String()))
	if len(fs) > 10 {
		t.Fatalf("%d findings for one string schema", len(fs))
	}
}
