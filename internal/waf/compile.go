package waf

import (
	"fmt"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Set is the compiled WAFs of a config: one per distinct route waf
// section, shared by the routes that spell it alike.
type Set struct {
	byKey map[string]*WAF
}

// key identifies a waf section by its values.
func key(c *config.WAF) string { return fmt.Sprintf("%+v", *c) }

// Compile builds one WAF per distinct route waf section, reusing prev's
// (nil: none) when unchanged: compiling the CRS takes a moment.
func Compile(cfg *config.Config, events pipeline.Events, prev *Set) (*Set, []error) {
	s := &Set{byKey: map[string]*WAF{}}
	var errs []error
	for i, r := range cfg.Routes {
		c := r.WAF
		if c == nil {
			continue
		}
		k := key(c)
		if _, done := s.byKey[k]; done {
			continue
		}
		if prev != nil && prev.byKey[k] != nil {
			s.byKey[k] = prev.byKey[k]
			continue
		}
		w, err := New(Options{Paranoia: c.Paranoia, AnomalyThreshold: c.AnomalyThreshold, DetectionOnly: c.DetectionOnly,
			ExcludeRules: c.ExcludeRules, ExcludeTags: c.ExcludeTags, BodyLimit: int64(c.BodyLimit), MaxArgs: c.MaxArgs, Events: events})
		if err != nil {
			errs = append(errs, cfg.Problem(fmt.Sprintf("routes[%d].waf", i), "%v", err))
			continue
		}
		s.byKey[k] = w
	}
	return s, errs
}

// Stage is a route's WAF stage (nil without a waf section, or when its
// WAF did not compile: that error is reported with the route).
func (s *Set) Stage(c *config.WAF) pipeline.Middleware {
	if c == nil {
		return nil
	}
	w := s.byKey[key(c)]
	if w == nil {
		return nil
	}
	return w.Middleware()
}
