package openapi

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/router"
)

// Set is the compiled OpenAPI documents of a config's routes.
type Set struct {
	byRoute map[string]*Spec   // by route id
	byKey   map[[32]byte]*Spec // by document bytes and options; reused across reloads
}

// CompileRoutes reads and compiles each route's OpenAPI document. A document
// is compiled once per file and options (routes of one API share it) and
// reused from prev (nil: none) while its bytes are unchanged. Errors name
// the route's openapi.spec key and the document's own line.
func CompileRoutes(cfg *config.Config, events pipeline.Events, prev *Set) (*Set, []error) {
	s := &Set{byRoute: map[string]*Spec{}, byKey: map[[32]byte]*Spec{}}
	var errs []error
	for i, r := range cfg.Routes {
		o := r.OpenAPI
		if o == nil {
			continue
		}
		path := o.Spec // resolved against the config file's directory at load
		key := fmt.Sprintf("routes[%d].openapi.spec", i)
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, cfg.Problem(key, "reading the OpenAPI document: %v", err))
			continue
		}
		sum := sha256.Sum256(fmt.Appendf(data, "\x00%+v", *o))
		if sp := s.byKey[sum]; sp != nil {
			s.byRoute[r.ID] = sp
			continue
		}
		if prev != nil && prev.byKey[sum] != nil {
			s.byRoute[r.ID], s.byKey[sum] = prev.byKey[sum], prev.byKey[sum]
			continue
		}
		sp, err := Compile(data, filepath.Dir(path), Options{Monitor: o.Undocumented == "monitor", Strict: o.Strict,
			Response: o.Response, MaxResponseBytes: int64(o.MaxResponseBytes), Events: events})
		if err != nil {
			errs = append(errs, cfg.Problem(key, "%s: %v", path, err))
			continue
		}
		s.byRoute[r.ID], s.byKey[sum] = sp, sp
	}
	return s, errs
}

// Stage validates a route's requests against its document, on the
// normalised path the upstream receives (nil without a document).
func (s *Set) Stage(r config.Route) pipeline.Middleware {
	sp := s.byRoute[r.ID]
	if r.OpenAPI == nil || sp == nil {
		return nil
	}
	validate := sp.Middleware()
	return func(next pipeline.Handler) pipeline.Handler {
		inner := validate(next)
		return func(w http.ResponseWriter, req *http.Request) error {
			sc := pipeline.ScopeOf(req.Context())
			if sc == nil || sc.Path == "" {
				return inner(w, req)
			}
			// The document describes the API as the service sees it: the
			// normalised path, not the client's spelling of it.
			vr := *req
			u := *req.URL
			u.Path, u.RawPath = router.Unescape(sc.Path), sc.Path
			vr.URL = &u
			return inner(w, &vr)
		}
	}
}
