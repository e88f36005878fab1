package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestVersionMatchesChangelog: the version the binary prints is the
// latest release heading of CHANGELOG.md ("## v1.2.3 — date"), so a
// release cannot ship with a stale version string.
func TestVersionMatchesChangelog(t *testing.T) {
	b, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^## (v\d+\.\d+\.\d+)\b`).FindSubmatch(b)
	if m == nil {
		t.Fatal("CHANGELOG.md has no release heading (## vX.Y.Z)")
	}
	if string(m[1]) != version {
		t.Errorf("version %s, CHANGELOG's latest release %s", version, m[1])
	}
	if s := versionString(); !strings.HasPrefix(s, "rampart "+version+" (go") {
		t.Errorf("versionString() = %q", s)
	}
}
