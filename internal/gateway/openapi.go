package gateway

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/openapi"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/router"
)

// compileSpecs reads and compiles each route's OpenAPI document. A
// document is compiled once per file and options (routes of one API share
// it) and reused from prev while its bytes are unchanged. Errors name the
// route's openapi.spec key and the document's own line.
func compileSpecs(cfg *config.Config, deps pipeline.Deps, prev *Plan, errs []error) (specs map[string]*openapi.Spec, byKey map[[32]byte]*openapi.Spec, _ []error) {
	specs, byKey = map[string]*openapi.Spec{}, map[[32]byte]*openapi.Spec{}
	for i, r := range cfg.Routes {
		o := r.OpenAPI
		if o == nil {
			continue
		}
		path := o.Spec
		if !filepath.IsAbs(path) && cfg.File != "" {
			path = filepath.Join(filepath.Dir(cfg.File), path)
		}
		key := fmt.Sprintf("routes[%d].openapi.spec", i)
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, cfg.Problem(key, "reading the OpenAPI document: %v", err))
			continue
		}
		opts := openapi.Options{Monitor: o.Undocumented == "monitor", Strict: o.Strict, Response: o.Response,
			MaxResponseBytes: int64(o.MaxResponseBytes), Events: deps.Events}
		sum := sha256.Sum256(fmt.Appendf(data, "\x00%+v", *o))
		if s := byKey[sum]; s != nil {
			specs[r.ID] = s
			continue
		}
		if prev != nil {
			if s := prev.specKeys[sum]; s != nil {
				specs[r.ID], byKey[sum] = s, s
				continue
			}
		}
		s, err := openapi.Compile(data, filepath.Dir(path), opts)
		if err != nil {
			errs = append(errs, cfg.Problem(key, "%s: %v", path, err))
			continue
		}
		specs[r.ID], byKey[sum] = s, s
	}
	return specs, byKey, errs
}

// openapiStage validates the route's requests against its document, on the
// normalised path the upstream receives.
func openapiStage(r config.Route, specs map[string]*openapi.Spec) pipeline.Middleware {
	s := specs[r.ID]
	if r.OpenAPI == nil || s == nil {
		return nil
	}
	validate := s.Middleware()
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
