package plan

import (
	"strings"
	"testing"
)

// TestDecisionFieldNames: header names match the reserved list in any
// letter case and with '_' for '-', long names included; others do not.
func TestDecisionFieldNames(t *testing.T) {
	long := strings.Repeat("x-", 40) + "plan"
	f := decisionFields{headers: map[string]bool{"x-plan": true, long: true}}
	for name, want := range map[string]bool{
		"X-Plan": true, "x_PLAN": true, "X-Plans": false, "Plan": false, "": false,
		strings.ToUpper(strings.ReplaceAll(long, "-", "_")): true, long + "s": false,
	} {
		if got := f.reserved(name); got != want {
			t.Errorf("reserved(%q) = %v, want %v", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { f.reserved("X-Forwarded-Proto") }); n != 0 {
		t.Errorf("reserved allocates %v times per header", n)
	}
}
