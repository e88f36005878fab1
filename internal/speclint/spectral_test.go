package speclint

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestSpectralAgreement lints the clean document and every breaking edit
// with Stoplight Spectral and its OWASP ruleset too, and requires the
// same owasp: rule ids from both. It needs Spectral:
//
//	npm install @stoplight/spectral-cli@6.16.3 @stoplight/spectral-owasp-ruleset@2.0.1
//	RAMPART_SPECTRAL=$PWD/node_modules/.bin/spectral go test ./internal/speclint -run TestSpectralAgreement
func TestSpectralAgreement(t *testing.T) {
	bin := os.Getenv("RAMPART_SPECTRAL")
	if bin == "" {
		t.Skip("set RAMPART_SPECTRAL to a spectral binary (with @stoplight/spectral-owasp-ruleset installed beside it)")
	}
	dir := t.TempDir()
	// The ruleset package resolves from the ruleset file's directory.
	if err := os.Symlink(filepath.Dir(filepath.Dir(bin)), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	ruleset := filepath.Join(dir, ".spectral.yaml")
	os.WriteFile(ruleset, []byte("extends: [\"@stoplight/spectral-owasp-ruleset\"]\n"), 0o644)
	clean, _ := os.ReadFile("testdata/clean.yaml")
	cases := map[string][]byte{"clean": clean}
	for id, pairs := range breaks {
		if doc, ok := edit(clean, pairs); ok {
			cases[id] = doc
		}
	}
	for name, doc := range cases {
		file := filepath.Join(dir, strings.NewReplacer(":", "_").Replace(name)+".yaml")
		os.WriteFile(file, doc, 0o644)
		out := file + ".json"
		cmd := exec.Command(bin, "lint", file, "--ruleset", ruleset, "-f", "json", "--fail-severity=hint", "-o", out)
		cmd.Dir = dir
		if msg, err := cmd.CombinedOutput(); err != nil && len(msg) > 0 && !strings.Contains(string(msg), "Results have been written") {
			t.Logf("%s: spectral: %s", name, msg)
		}
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatalf("%s: spectral wrote nothing: %v", name, err)
		}
		var results []struct{ Code string }
		if err := json.Unmarshal(raw, &results); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		theirs := map[string]bool{}
		for _, r := range results {
			if strings.HasPrefix(r.Code, "owasp:") {
				theirs[r.Code] = true
			}
		}
		ours := map[string]bool{}
		for _, f := range lint(t, doc) {
			if strings.HasPrefix(f.Rule, "owasp:") {
				ours[f.Rule] = true
			}
		}
		if a, b := setString(ours), setString(theirs); a != b {
			t.Errorf("%s: ours %s, spectral %s", name, a, b)
		}
	}
}

func setString(m map[string]bool) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}
