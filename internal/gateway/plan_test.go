package gateway

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/abuse"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/plan"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGoldenPlan pins the compiled plan: for each listener, the routes in
// precedence order and each route's stages in order, as they run (the
// admission table, then the route's chain). The config turns every stage
// on for one route. A change of security
// ordering shows up here as a reviewable diff. Regenerate with -update.
func TestGoldenPlan(t *testing.T) {
	t.Setenv("RAMPART_PLAN_TEST_SECRET", "plan-test-secret-0123456789abcdef!")
	raw, err := os.ReadFile("testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := filepath.Abs("testdata/assertion-test-key.pem")
	cfg, err := config.Parse([]byte(strings.Replace(string(raw), "key_file: assertion-test-key.pem", "key_file: "+key, 1)), "testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Compile(cfg, pipeline.Deps{Log: slog.New(slog.DiscardHandler), Now: time.Now}, nil, plan.NewState(cfg, pipeline.Deps{Now: time.Now}, func() *abuse.Guard { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseUnshared(nil)
	// The golden config turns every stage on for one route, so that a
	// stage added to either table shows up in the golden file.
	every := append(append([]string{"cors"}, plan.RouteStageNames()...), "sign_assertion", "proxy")
	found := false
	for _, rt := range p.Listener("public").Routes() {
		if rt.ID() == "everything" {
			found = true
			if got := strings.Join(rt.Stages(), " > "); got != strings.Join(every, " > ") {
				t.Errorf("route everything: %s\nwant every stage: %s", got, strings.Join(every, " > "))
			}
		}
	}
	if !found {
		t.Error("the golden config has no route with every stage")
	}
	var b strings.Builder
	for _, n := range p.Listeners() {
		fmt.Fprintf(&b, "listener %s\n", n)
		for _, rt := range p.Listener(n).Routes() {
			fmt.Fprintf(&b, "  route %-10s %s\n", rt.ID(), strings.Join(Stages(rt), " > "))
		}
	}
	got := b.String()
	if *update {
		if err := os.WriteFile("testdata/plan.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/plan.golden")
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("compiled plan changed:\n--- got\n%s--- want\n%s", got, want)
	}
}
