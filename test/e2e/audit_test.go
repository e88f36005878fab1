package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/sarif/sariftest"
)

// TestAuditCommand runs `rampart audit` as a pipeline would: without the
// config's secrets in the environment, on every example (the production
// example has nothing above low), in each format (SARIF validated
// against the 2.1.0 schema), with exit codes by threshold; a broken
// config is exit 2 with its line.
func TestAuditCommand(t *testing.T) {
	run := func(args ...string) (int, string, string) { return runRampart(t, nil, args...) }
	files, _ := filepath.Glob("../../examples/*.yaml")
	for _, f := range files {
		code, out, errOut := run("audit", "--config", f, "--fail-on", "none", "--format", "sarif")
		if code != 0 {
			t.Errorf("audit %s: exit %d\n%s", f, code, errOut)
			continue
		}
		sariftest.Validate(t, []byte(out))
	}
	prod := "../../examples/production.yaml"
	if code, out, _ := run("audit", "--config", prod); code != 0 || !strings.Contains(out, "grade ") {
		t.Errorf("production example, default threshold (high): exit %d\n%s", code, out)
	}
	if code, _, _ := run("audit", "--config", prod, "--fail-on", "medium"); code != 0 {
		t.Errorf("production example, --fail-on medium: exit %d", code)
	}
	if code, _, errOut := run("audit", "--config", prod, "--fail-on", "low"); code != 1 || !strings.Contains(errOut, "at or above low") {
		t.Errorf("production example, --fail-on low: exit %d %s", code, errOut)
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(cfg, []byte(`version: 1
listeners: [{name: l, address: "0.0.0.0:8080"}]
upstreams: [{name: u, allow_plaintext: true, targets: [{url: "http://127.0.0.1:9"}]}]
routes: [{id: r, prefix: /, upstream: u, public: true}]
admin: {token: "a-literal-admin-token-0123456789abcdef"}
`), 0o600)
	code, out, _ := run("audit", "--config", cfg, "--format", "json")
	var report struct {
		Grade    string
		Findings []struct {
			Rule, Severity, File, Path string
			Line                       int
		}
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || code != 1 {
		t.Fatalf("a literal secret: exit %d %v\n%s", code, err, out)
	}
	found := map[string]int{}
	for _, f := range report.Findings {
		found[f.Rule] = f.Line
	}
	if found["RA-HARD-005"] != 5 || found["RA-TLS-001"] != 2 || report.Grade == "A" {
		t.Errorf("findings %v, grade %s", found, report.Grade)
	}
	os.WriteFile(cfg, []byte("version: 1\nlisteners: [{name: l, address: \"127.0.0.1:0\"}]\nroutes: [{id: r, prefix: /, upstream: nowhere, public: true}]\n"), 0o600)
	if code, _, errOut := run("audit", "--config", cfg); code != 2 || !strings.Contains(errOut, "rampart.yaml:3") {
		t.Errorf("a broken config: exit %d\n%s", code, errOut)
	}
	if code, out, _ := run("audit", "--rules"); code != 0 || strings.Count(out, "RA-") < 50 {
		t.Errorf("--rules: exit %d\n%s", code, out)
	}
}
