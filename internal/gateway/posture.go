package gateway

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/audit"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Posture is the running config's audit and how it changed at the last
// reload: what the admin API's /posture and the dashboard show.
type Posture struct {
	Config     string         `json:"config"` // the config's SHA-256
	LoadedAt   time.Time      `json:"loaded_at"`
	Report     *audit.Report  `json:"report"`
	LastReload *PostureChange `json:"last_reload,omitempty"`
}

// PostureChange compares the audit of a reloaded config with the one it
// replaced.
type PostureChange struct {
	At        time.Time        `json:"at"`
	Trigger   string           `json:"trigger"`
	Before    string           `json:"grade_before"`
	After     string           `json:"grade_after"`
	Lowered   []string         `json:"lowered,omitempty"` // "overall" and the practices whose grade fell
	Practices []PracticeChange `json:"practices,omitempty"`
	Added     []audit.Finding  `json:"added,omitempty"`
	Resolved  []audit.Finding  `json:"resolved,omitempty"`
}

// PracticeChange is one practice whose grade changed.
type PracticeChange struct {
	Practice audit.Practice `json:"practice"`
	Before   string         `json:"before"`
	After    string         `json:"after"`
}

// comparePosture is how the grades and the counted findings changed
// from before to after.
func comparePosture(before, after *audit.Report, trigger string, at time.Time) *PostureChange {
	c := &PostureChange{At: at, Trigger: trigger, Before: before.Grade, After: after.Grade}
	if worse(before.Grade, after.Grade) {
		c.Lowered = append(c.Lowered, "overall")
	}
	for _, p := range audit.Practices {
		b, a := before.Practice(p).Grade, after.Practice(p).Grade
		if b != a {
			c.Practices = append(c.Practices, PracticeChange{Practice: p, Before: b, After: a})
		}
		if worse(b, a) {
			c.Lowered = append(c.Lowered, string(p))
		}
	}
	c.Added = counted(after, before)
	c.Resolved = counted(before, after)
	return c
}

// worse reports whether grade a is lower than b (A is best).
func worse(b, a string) bool { return a > b }

// counted are the counted findings of r that other does not count.
func counted(r, other *audit.Report) []audit.Finding {
	var out []audit.Finding
	for _, f := range r.Findings {
		if f.Counts() && !slices.ContainsFunc(other.Findings, func(o audit.Finding) bool { return o.Counts() && o.Key() == f.Key() }) {
			out = append(out, f)
		}
	}
	return out
}

// postureReloaded records the change a reload made to the posture and
// reports a lowered grade as a security event.
func (g *Gateway) postureReloaded(before, after *audit.Report, trigger string) {
	c := comparePosture(before, after, trigger, g.deps.Now())
	g.posture.Store(c)
	if len(c.Lowered) == 0 {
		return
	}
	var rules []string
	for _, f := range c.Added {
		rules = append(rules, f.Rule)
	}
	g.deps.Events.Emit(pipeline.Event{Time: c.At, Name: "config.audit_lowered", Code: "config.audit_lowered",
		Reason: "a reload lowered the audit grade of " + strings.Join(c.Lowered, ", "), Rules: slices.Compact(slices.Sorted(slices.Values(rules))),
		Attrs: map[string]string{"trigger": trigger, "grade_before": c.Before, "grade_after": c.After, "added": strconv.Itoa(len(c.Added))}})
}

// Posture is the running config's posture.
func (g *Gateway) Posture() Posture {
	p := g.plan.Load()
	return Posture{Config: p.Config.Hash, LoadedAt: time.Unix(g.loadedAt.Load(), 0).UTC(), Report: p.Audit, LastReload: g.posture.Load()}
}
