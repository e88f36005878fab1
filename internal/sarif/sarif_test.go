package sarif_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/sarif"
	"github.com/rampart-gw/rampart/internal/sarif/sariftest"
)

func TestLogIsValidSARIF(t *testing.T) {
	driver := sarif.Driver{Name: "test", Version: "1.0", Rules: []sarif.Rule{{ID: "R1", ShortDescription: sarif.Message{Text: "a rule"},
		DefaultConfiguration: sarif.Configuration{Level: sarif.LevelError}, Properties: map[string]any{"tags": []string{"security"}, "security-severity": "8.0"}}}}
	results := []sarif.Result{{RuleID: "R1", Level: sarif.LevelError, Message: sarif.Message{Text: "found"},
		Locations:    []sarif.Location{sarif.At("rampart.yaml", 0, 0, "routes[0].public", "member")},
		Suppressions: []sarif.Suppression{{Kind: "inSource", Justification: "accepted"}}}}
	for name, l := range map[string]sarif.Log{"results": sarif.New(driver, results), "empty": sarif.New(sarif.Driver{Name: "test"}, nil)} {
		var b bytes.Buffer
		if err := sarif.Write(&b, l); err != nil {
			t.Fatal(err)
		}
		sariftest.Validate(t, b.Bytes())
		if name == "results" && !strings.Contains(b.String(), `"startLine": 1`) {
			t.Errorf("line 0 must be written as 1:\n%s", b.String())
		}
	}
}

// The validator itself must refuse what SARIF forbids, or the tests
// that rely on it could not fail.
func TestValidatorRefusesInvalidLogs(t *testing.T) {
	for name, log := range map[string]string{
		"no runs":        `{"version":"2.1.0"}`,
		"wrong version":  `{"version":"2.0.0","runs":[]}`,
		"level":          `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[{"message":{"text":"m"},"level":"fatal"}]}]}`,
		"line 0":         `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[{"message":{"text":"m"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"a"},"region":{"startLine":0}}}]}]}]}`,
		"unknown member": `{"version":"2.1.0","runs":[],"extra":1}`,
	} {
		if sariftest.Check([]byte(log)) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
