package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/openapi"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Operations of the admin API (see the permissions table).
const (
	OpPlanRead   = "plan.read"
	OpBansRead   = "bans.read"
	OpBansAdd    = "bans.add"
	OpEventsRead = "events.read"
	OpReload     = "config.reload"
	OpAPIDoc     = "api.describe"
	OpRevokeRead = "revocations.read"
	OpRevoke     = "tokens.revoke"
	OpDrain      = "targets.drain"
	OpRotateKey  = "assertion.rotate"
	OpDiscovery  = "discovery.read"
	OpPosture    = "posture.read"
)

// apiRoutes are the admin API's operations: the one list that registers
// them and that the test compares with the API's OpenAPI document.
var apiRoutes = []struct {
	method, path, op string
	handler          func(*api) pipeline.Handler
}{
	{"GET", "/plan", OpPlanRead, (*api).plan},
	{"GET", "/bans", OpBansRead, (*api).bans},
	{"POST", "/bans", OpBansAdd, (*api).addBan},
	{"DELETE", "/bans/{client}", OpBansLift, (*api).liftBan},
	{"GET", "/events", OpEventsRead, (*api).events},
	{"POST", "/reload", OpReload, (*api).reload},
	{"GET", "/revocations", OpRevokeRead, (*api).revocations},
	{"POST", "/revocations", OpRevoke, (*api).revoke},
	{"DELETE", "/revocations", OpRevoke, (*api).unrevoke},
	{"PATCH", "/upstreams/{upstream}/targets/{target}", OpDrain, (*api).drain},
	{"GET", "/apikeys", OpKeysRead, (*api).listKeys},
	{"POST", "/apikeys", OpKeysManage, (*api).createKey},
	{"PATCH", "/apikeys/{prefix}", OpKeysManage, (*api).patchKey},
	{"DELETE", "/apikeys/{prefix}", OpKeysManage, (*api).deleteKey},
	{"POST", "/assertion/rotate", OpRotateKey, (*api).rotateKey},
	{"GET", "/discovery/openapi", OpDiscovery, (*api).discoveryDraft},
	{"GET", "/discovery/report", OpDiscovery, (*api).discoveryReport},
	{"GET", "/posture", OpPosture, (*api).posture},
	{"GET", "/openapi.json", OpAPIDoc, (*api).document},
}

// api serves /api/v1/: every request is authenticated, authorized by the
// permissions table and validated against the API's own OpenAPI document
// before its handler runs; refusals are problem+json.
type api struct {
	o    Options
	spec *openapi.Spec
	doc  []byte // the document as JSON
}

// newAPI compiles the API's document.
func newAPI(o Options) (*api, error) {
	src, err := assets.ReadFile("assets/api.yaml")
	if err != nil {
		return nil, err
	}
	spec, err := openapi.Compile(src, "", openapi.Options{})
	if err != nil {
		return nil, err
	}
	var doc any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return &api{o: o, spec: spec, doc: b}, nil
}

// routes registers the operations.
func (a *api) routes(mux *http.ServeMux, g *gate) {
	validate := a.spec.Middleware()
	for _, rt := range apiRoutes {
		h := pipeline.Chain(rt.handler(a), limitBody, validate)
		served := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r = r.WithContext(pipeline.WithScope(r.Context(), &pipeline.Scope{RequestID: w.Header().Get("X-Request-Id")}))
			if err := h(w, r); err != nil {
				pipeline.Render(w, r, pipeline.AsError(err))
			}
		})
		mux.Handle(rt.method+" /api/v1"+rt.path, g.protect(rt.op, served))
	}
	mux.Handle("/api/v1/", g.protect(OpAPIDoc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "admin.not_found", "no such admin API operation")
	})))
}

// limitBody bounds request bodies (413 beyond 64 KiB).
func limitBody(next pipeline.Handler) pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.ContentLength > 64<<10 {
			return pipeline.BodyTooLarge(nil)
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		}
		return next(w, r)
	}
}

func (a *api) plan() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		st := a.o.State()
		writeJSON(w, http.StatusOK, map[string]any{"config": st.Config, "routes": st.Routes, "upstreams": st.Upstreams})
		return nil
	}
}

func (a *api) bans() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]any{"bans": a.o.State().Bans})
		return nil
	}
}

func (a *api) addBan() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			IP  string `json:"ip"`
			For string `json:"for"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			return pipeline.Deny(http.StatusBadRequest, "admin.bad_request", "send {\"ip\": \"...\", \"for\": \"15m\"}")
		}
		d := 15 * time.Minute
		if req.For != "" {
			var err error
			if d, err = time.ParseDuration(req.For); err != nil || d <= 0 || d > 24*time.Hour {
				return pipeline.Deny(http.StatusBadRequest, "admin.bad_request", "for: between 1s and 24h")
			}
		}
		if a.o.Ban == nil {
			return pipeline.Deny(http.StatusConflict, "admin.unavailable", "abuse detection is off")
		}
		if err := a.o.Ban(req.IP, d, principalOf(r)); err != nil {
			if e := unsaved(err); e != nil {
				return e
			}
			return pipeline.Deny(http.StatusBadRequest, "admin.bad_request", err.Error())
		}
		writeJSON(w, http.StatusCreated, map[string]any{"banned": req.IP, "for": d.String()})
		return nil
	}
}

func (a *api) liftBan() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := a.o.LiftBan(r.PathValue("client"), principalOf(r)); err != nil {
			if e := unsaved(err); e != nil {
				return e
			}
			return pipeline.Deny(http.StatusBadRequest, "admin.bad_request", err.Error())
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (a *api) events() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]any{"events": a.o.State().Live.Events})
		return nil
	}
}

func (a *api) reload() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if a.o.Reload == nil {
			return pipeline.Deny(http.StatusConflict, "admin.unavailable", "no config file to reload")
		}
		if err := a.o.Reload(principalOf(r)); err != nil {
			return pipeline.Deny(http.StatusUnprocessableEntity, "admin.reload_rejected", firstLine(err))
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (a *api) revocations() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]any{"revocations": a.o.Revocations()})
		return nil
	}
}

// revoke refuses a token (by jti) or every token of a subject (issuer
// and subject) until a time, at once, on this instance.
func (a *api) revoke() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			JTI     string `json:"jti"`
			Issuer  string `json:"issuer"`
			Subject string `json:"subject"`
			For     string `json:"for"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || (req.JTI == "") == (req.Subject == "") || (req.Subject != "") != (req.Issuer != "") {
			return pipeline.Deny(http.StatusBadRequest, "admin.bad_request", "send {\"jti\": ...} or {\"issuer\": ..., \"subject\": ...}, and \"for\"")
		}
		d, err := time.ParseDuration(req.For)
		if err != nil || d <= 0 || d > 30*24*time.Hour {
			return pipeline.Deny(http.StatusBadRequest, "admin.bad_request", "for: between 1s and 720h")
		}
		until := a.o.Now().Add(d)
		if err := a.o.Revoke(RevokeRequest{JTI: req.JTI, Issuer: req.Issuer, Subject: req.Subject, Until: until}, principalOf(r)); err != nil {
			return unsaved(err)
		}
		writeJSON(w, http.StatusCreated, map[string]any{"until": until.UTC().Format(time.RFC3339)})
		return nil
	}
}

// drain stops or resumes new requests to an upstream target.
func (a *api) drain() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Drained *bool `json:"drained"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Drained == nil {
			return pipeline.Deny(http.StatusBadRequest, "admin.bad_request", "send {\"drained\": true|false}")
		}
		if err := a.o.Drain(r.PathValue("upstream"), r.PathValue("target"), *req.Drained, principalOf(r)); err != nil {
			if e := unsaved(err); e != nil {
				return e
			}
			return pipeline.Deny(http.StatusNotFound, "admin.not_found", err.Error())
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// unrevoke lifts a runtime revocation: ?jti=... or ?issuer=...&subject=...
func (a *api) unrevoke() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		req := RevokeRequest{JTI: q.Get("jti"), Issuer: q.Get("issuer"), Subject: q.Get("subject")}
		if (req.JTI == "") == (req.Subject == "") || (req.Subject != "") != (req.Issuer != "") {
			return pipeline.Deny(http.StatusBadRequest, "admin.bad_request", "name ?jti=... or ?issuer=...&subject=...")
		}
		if err := a.o.Unrevoke(req, principalOf(r)); err != nil {
			return unsaved(err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// rotateKey retires the assertion signing key and signs with a new one;
// the retired key stays published for its overlap.
func (a *api) rotateKey() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if a.o.RotateKey == nil {
			return pipeline.Deny(http.StatusConflict, "admin.unavailable", "no assertion section")
		}
		res, err := a.o.RotateKey(principalOf(r))
		if errors.Is(err, ErrTooSoon) {
			return pipeline.Deny(http.StatusConflict, "admin.too_soon", firstLine(err))
		}
		if err != nil {
			return pipeline.Deny(http.StatusUnprocessableEntity, "admin.rotation_failed", firstLine(err))
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}
}

// discoveryDraft answers the OpenAPI document learned from traffic.
func (a *api) discoveryDraft() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if a.o.Discovery == nil {
			return pipeline.Deny(http.StatusConflict, "admin.unavailable", "discovery is off")
		}
		draft, _, err := a.o.Discovery()
		if err != nil {
			return pipeline.Deny(http.StatusConflict, "admin.unavailable", err.Error())
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(draft)
		return nil
	}
}

// discoveryReport answers shadow, zombie and drifting operations and
// sensitive data seen.
func (a *api) discoveryReport() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if a.o.Discovery == nil {
			return pipeline.Deny(http.StatusConflict, "admin.unavailable", "discovery is off")
		}
		_, report, err := a.o.Discovery()
		if err != nil {
			return pipeline.Deny(http.StatusConflict, "admin.unavailable", err.Error())
		}
		writeJSON(w, http.StatusOK, report)
		return nil
	}
}

// posture answers the running config's audit: grades per practice,
// findings, and how they changed at the last reload.
func (a *api) posture() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if a.o.Posture == nil {
			return pipeline.Deny(http.StatusConflict, "admin.unavailable", "no posture")
		}
		writeJSON(w, http.StatusOK, a.o.Posture())
		return nil
	}
}

func (a *api) document() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(a.doc)
		return nil
	}
}

// firstLine is the first problem of a rejected reload (config errors
// name file:line and key; nothing secret).
func firstLine(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	var pe *pipeline.Error
	if errors.As(err, &pe) {
		msg = pe.Detail
	}
	return msg
}
