// Package deploy tests the deployment artefacts under deploy/.
package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// maxExposure is the systemd exposure score the unit must not exceed
// (docs/deploy.md records the score it has).
const maxExposure = 2.0

// TestSystemdUnitExposure grades deploy/systemd/rampart.service with
// `systemd-analyze security --offline=true` and requires an overall
// exposure of at most 2.0, and checks the unit with `systemd-analyze
// verify` (the binary it names need not be installed).
func TestSystemdUnitExposure(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("RAMPART_REQUIRE_SYSTEMD_ANALYZE") != "" {
			t.Fatal("systemd-analyze not installed (scripts/test.sh installs it)")
		}
		t.Skip("systemd-analyze not installed")
	}
	out, err := exec.Command(bin, "security", "--offline=true", "../../deploy/systemd/rampart.service").CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for rampart.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure score (%v):\n%s", err, out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("exposure %.1f", score)
	if score > maxExposure {
		t.Fatalf("exposure %.1f > %.1f:\n%s", score, maxExposure, out)
	}
	out, _ = exec.Command(bin, "verify", "--man=no", "../../deploy/systemd/rampart.service").CombinedOutput()
	for _, line := range regexp.MustCompile(`(?m)^.*$`).FindAll(out, -1) {
		if len(line) > 0 && !regexp.MustCompile(`is not executable: No such file or directory|Failed to prepare filename`).Match(line) {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}
