package overload

import (
	"reflect"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Set is the limiters of a config, one per route that sheds. A reload
// keeps a route's limiter (its limit, its learned latency, its pauses)
// while the route's overload section is unchanged, so that a reload in
// the middle of an overload does not open every route to max_limit.
type Set struct {
	byRoute map[string]*Limiter
	config  map[string]config.Overload // route id -> its section
	report  func(route string, limit int)
	gone    []string // routes of the previous set that no longer shed
}

// Compile builds the limiters of cfg's routes, reusing prev's (nil:
// none) where the route's section is the same. Nothing is reported
// until Start: a plan that is not accepted leaves the metrics alone.
func Compile(cfg *config.Config, deps pipeline.Deps, prev *Set) *Set {
	s := &Set{byRoute: map[string]*Limiter{}, config: map[string]config.Overload{}, report: deps.OverloadLimit}
	for _, r := range cfg.Routes {
		if r.Overload == nil || r.Overload.Off {
			continue
		}
		s.config[r.ID] = *r.Overload
		if prev != nil && prev.byRoute[r.ID] != nil && reflect.DeepEqual(prev.config[r.ID], *r.Overload) {
			s.byRoute[r.ID] = prev.byRoute[r.ID]
			continue
		}
		l := New(r.ID, *r.Overload, deps.Events, deps.Now)
		l.report = deps.OverloadLimit // used once requests reach it: the plan was accepted
		s.byRoute[r.ID] = l
	}
	if prev != nil {
		for id := range prev.byRoute {
			if s.byRoute[id] == nil {
				s.gone = append(s.gone, id)
			}
		}
	}
	return s
}

// Start reports the limits of the accepted plan's routes, and that the
// routes gone from it no longer shed.
func (s *Set) Start() {
	if s == nil || s.report == nil {
		return
	}
	for _, id := range s.gone {
		s.report(id, -1)
	}
	for id, l := range s.byRoute {
		s.report(id, l.Limit())
	}
}

// Stage is a route's shedding stage (nil when it does not shed).
func (s *Set) Stage(r config.Route) pipeline.Middleware {
	l := s.byRoute[r.ID]
	if l == nil {
		return nil
	}
	return l.Middleware
}
