package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpecLint runs `rampart spec lint` on files and on a config's
// attached document (with the cross-check against its route), in each
// output format, and `rampart check`, which reports the same findings as
// warnings without failing.
func TestSpecLint(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "api.yaml")
	os.WriteFile(spec, []byte(`openapi: 3.1.0
info: {title: t, version: "1"}
paths:
  /search:
    get:
      parameters:
        - {name: api_key, in: query, schema: {type: string, maxLength: 64, pattern: "^[a-z]+$"}}
      responses:
        "200": {description: ok}
`), 0o600)
	cfg := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(cfg, []byte(`version: 1
listeners: [{name: l, address: "127.0.0.1:0"}]
upstreams: [{name: u, allow_plaintext: true, targets: [{url: "http://127.0.0.1:9"}]}]
routes: [{id: search, prefix: /other, upstream: u, public: true, openapi: {spec: api.yaml}}]
`), 0o600)
	run := func(args ...string) (int, string, string) { return runRampart(t, nil, args...) }
	code, out, _ := run("spec", "lint", spec)
	if code != 1 || !strings.Contains(out, "api.yaml:7:11: error owasp:api2:2023-no-credentials-in-url") {
		t.Fatalf("spec lint FILE: exit %d\n%s", code, out)
	}
	if code, _, _ := run("spec", "lint", "--fail-on", "none", spec); code != 0 {
		t.Fatalf("--fail-on none: exit %d", code)
	}
	code, out, _ = run("spec", "lint", "--config", cfg, "--format", "json")
	var fs []struct{ Rule, Severity string }
	if err := json.Unmarshal([]byte(out), &fs); err != nil || code != 1 {
		t.Fatalf("spec lint --config --format json: exit %d %v\n%s", code, err, out)
	}
	rules := map[string]bool{}
	for _, f := range fs {
		rules[f.Rule] = true
	}
	if !rules["rampart:config-operation-not-routed"] || !rules["owasp:api2:2023-no-credentials-in-url"] {
		t.Fatalf("the config's document: %v", rules)
	}
	code, out, _ = run("spec", "lint", "--config", cfg, "--format", "sarif")
	var sarif struct {
		Version string
		Runs    []struct{ Results []any }
	}
	if err := json.Unmarshal([]byte(out), &sarif); err != nil || sarif.Version != "2.1.0" || len(sarif.Runs[0].Results) != len(fs) {
		t.Fatalf("SARIF: %v\n%s", err, out)
	}
	code, out, errOut := run("check", "--config", cfg)
	if code != 0 || !strings.Contains(errOut, "warning: spec lint: api.yaml") && !strings.Contains(errOut, "warning: spec lint: "+spec) {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	for _, bad := range [][]string{{"spec", "lint"}, {"spec", "lint", "--disable", "no-such-rule", spec}, {"spec", "lint", "--format", "xml", spec}} {
		if code, _, _ := run(bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	if code, out, _ := run("spec", "rules"); code != 0 || !strings.Contains(out, "owasp:api4:2023-rate-limit") {
		t.Fatalf("spec rules: %d %s", code, out)
	}
	// The published document of the same config: written to a file, JSON
	// by its extension; the route's operation under its public path.
	outFile := filepath.Join(dir, "openapi.json")
	code, _, errOut = run("docs", "--config", cfg, "--out", outFile)
	raw, _ := os.ReadFile(outFile)
	var doc struct{ Paths map[string]any }
	if code != 0 || json.Unmarshal(raw, &doc) != nil || !strings.Contains(errOut, "note: ") {
		t.Fatalf("docs: exit %d %s\n%s", code, errOut, raw)
	}
	if strings.Contains(string(raw), "127.0.0.1:9") {
		t.Fatal("the document names the upstream")
	}
}

// runRampart runs the binary to completion with extra environment
// variables and returns its exit status, stdout and stderr.
func runRampart(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}
