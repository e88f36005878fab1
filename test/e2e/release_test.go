package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReproducibleBuild builds the binary twice, as a release is built
// (-trimpath, into different directories), and requires the same bytes.
func TestReproducibleBuild(t *testing.T) {
	var sums []string
	for _, dir := range []string{t.TempDir(), t.TempDir()} {
		out := filepath.Join(dir, "rampart")
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, "../../cmd/rampart")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build: %v\n%s", err, msg)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, fmt.Sprintf("%x", sha256.Sum256(b)))
	}
	if sums[0] != sums[1] {
		t.Fatalf("two builds differ: %s %s", sums[0], sums[1])
	}
}

// TestSBOM: `rampart version --sbom` is a CycloneDX document naming the
// binary and every module of go.mod's require blocks that is compiled in,
// with its version and package URL.
func TestSBOM(t *testing.T) {
	code, out, errOut := runRampart(t, nil, "version", "--sbom")
	var bom struct {
		BOMFormat, SpecVersion string
		Metadata               struct {
			Component struct{ Name, Version, Purl string }
		}
		Components []struct{ Name, Version, Purl string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &bom) != nil || bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.5" {
		t.Fatalf("sbom: %d %s %.300s", code, errOut, out)
	}
	if bom.Metadata.Component.Name != "rampart" || !strings.HasPrefix(bom.Metadata.Component.Purl, "pkg:golang/github.com/rampart-gw/rampart@") {
		t.Fatalf("subject %+v", bom.Metadata.Component)
	}
	mod, _ := os.ReadFile("../../go.mod")
	found := map[string]string{}
	for _, c := range bom.Components {
		found[c.Name] = c.Version
		if c.Purl != "pkg:golang/"+c.Name+"@"+c.Version {
			t.Errorf("purl %s for %s %s", c.Purl, c.Name, c.Version)
		}
	}
	for _, want := range []string{"github.com/redis/go-redis/v9", "github.com/corazawaf/coraza/v3", "github.com/getkin/kin-openapi"} {
		v, ok := found[want]
		if !ok || !strings.Contains(string(mod), want+" "+v) {
			t.Errorf("%s: %q in the SBOM, go.mod says otherwise or lacks it", want, v)
		}
	}
}

// TestHealthCommand: `rampart health` exits 0 on a 200 from /healthz and
// 1 otherwise (a refused connection, another status).
func TestHealthCommand(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":"ok"}`) }))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer bad.Close()
	for url, want := range map[string]int{ok.URL + "/healthz": 0, bad.URL + "/healthz": 1, "http://" + freePort(t) + "/healthz": 1} {
		if code, _, _ := runRampart(t, nil, "health", "--url", url); code != want {
			t.Errorf("%s: exit %d, want %d", url, code, want)
		}
	}
}
