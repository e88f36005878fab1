package gateway

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/audit"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// TestAuditEnforced: with audit.fail_on, a config with a finding at or
// above it is refused at start and at reload (the old plan keeps
// serving), with the finding's line and rule; an acceptance with a
// reason and an expiry lets it run; an expired one counts again.
func TestAuditEnforced(t *testing.T) {
	up := newUpstream(t, nil)
	base := baseConfig(up.hostPort(), "")
	exposed := base + "  - {id: console, prefix: /actuator, upstream: svc, public: true}\n"
	parse := func(yaml string) *config.Config {
		t.Helper()
		cfg, err := config.Parse([]byte(yaml), "audit.yaml")
		if err != nil {
			t.Fatal(err)
		}
		// Not off: a disabled log is itself a high finding.
		cfg.AccessLog.Output, cfg.SecurityEvents.Output = "/dev/null", "/dev/null"
		return cfg
	}
	clock := func() time.Time { return time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC) }
	_, err := New(parse(exposed+"audit: {fail_on: high}\n"), pipeline.Deps{Now: clock})
	fe := config.FieldErrors(err)
	if len(fe) != 1 || fe[0].Line == 0 || fe[0].Path != "routes[3].public" || !strings.Contains(fe[0].Msg, "RA-AUTHN-001") {
		t.Fatalf("start with a high finding and fail_on: high: %v", err)
	}
	if _, err := New(parse(exposed+"audit: {fail_on: critical}\n"), pipeline.Deps{Now: clock}); err != nil {
		t.Fatalf("below the threshold: %v", err)
	}
	accept := "audit:\n  fail_on: high\n  accept: [{rule: RA-AUTHN-001, route: console, reason: health probes of the old monitoring, expires: %s}]\n"
	g, addr := startConfig(t, parse(base+strings.ReplaceAll(accept, "%s", "2027-01-31")), pipeline.Deps{Now: clock})
	err = g.Reload(parse(exposed + "audit: {fail_on: high}\n"))
	if fe := config.FieldErrors(err); len(fe) != 1 || !strings.Contains(fe[0].Error(), "audit.yaml:") || !strings.Contains(fe[0].Msg, "RA-AUTHN-001") {
		t.Fatalf("reload with a high finding: %v", err)
	}
	if resp, _ := get(t, "http://"+addr+"/actuator/env", nil); resp.StatusCode != 404 {
		t.Fatalf("the refused config serves: %d", resp.StatusCode)
	}
	if err := g.Reload(parse(exposed + strings.ReplaceAll(accept, "%s", "2027-01-31"))); err != nil {
		t.Fatalf("an accepted finding: %v", err)
	}
	if resp, _ := get(t, "http://"+addr+"/actuator/env", nil); resp.StatusCode != 200 {
		t.Fatalf("the accepted config does not serve: %d", resp.StatusCode)
	}
	err = g.Reload(parse(exposed + strings.ReplaceAll(accept, "%s", "2027-01-14")))
	if err == nil || !strings.Contains(err.Error(), "expired after 2027-01-14") {
		t.Fatalf("an expired acceptance: %v", err)
	}
}

// TestPostureChange: a reload that adds a finding records what changed
// and, when a grade falls, emits config.audit_lowered; one that fixes it
// records the finding resolved and emits nothing.
func TestPostureChange(t *testing.T) {
	up := newUpstream(t, nil)
	base := baseConfig(up.hostPort(), "")
	parse := func(yaml string) *config.Config {
		t.Helper()
		cfg, err := config.Parse([]byte(yaml), "posture.yaml")
		if err != nil {
			t.Fatal(err)
		}
		cfg.AccessLog.Output = "/dev/null"
		return cfg
	}
	ev := &pipeline.EventRecorder{}
	g, _ := startConfig(t, parse(base), pipeline.Deps{Now: time.Now, Events: ev})
	before := g.Posture()
	if before.Report == nil || before.LastReload != nil || len(before.Report.Practices) != 8 {
		t.Fatalf("posture at start: %+v", before)
	}
	if err := g.Reload(parse(base + "  - {id: console, prefix: /admin, upstream: svc, public: true}\n")); err != nil {
		t.Fatal(err)
	}
	after := g.Posture()
	c := after.LastReload
	if c == nil || c.Trigger != "api" || !slices.Contains(c.Lowered, "authenticate") {
		t.Fatalf("change: %+v", c)
	}
	if !hasRule(c.Added, "RA-AUTHN-001") || len(c.Resolved) != 0 {
		t.Fatalf("added %v, resolved %v", c.Added, c.Resolved)
	}
	lowered := eventsNamed(ev, "config.audit_lowered")
	if len(lowered) != 1 || lowered[0].Attrs["grade_before"] != before.Report.Grade || !strings.Contains(strings.Join(lowered[0].Rules, ","), "RA-AUTHN-001") {
		t.Fatalf("events %+v", lowered)
	}
	if err := g.Reload(parse(base)); err != nil {
		t.Fatal(err)
	}
	if c := g.Posture().LastReload; len(c.Lowered) != 0 || !hasRule(c.Resolved, "RA-AUTHN-001") || len(c.Added) != 0 {
		t.Fatalf("after the fix: %+v", c)
	}
	if n := len(eventsNamed(ev, "config.audit_lowered")); n != 1 {
		t.Fatalf("%d lowered events, want 1", n)
	}
}

func hasRule(fs []audit.Finding, id string) bool {
	for _, f := range fs {
		if f.Rule == id {
			return true
		}
	}
	return false
}

func eventsNamed(r *pipeline.EventRecorder, name string) []pipeline.Event {
	var out []pipeline.Event
	for _, e := range r.Events() {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}
