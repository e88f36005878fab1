package speclint

import (
	"os"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// TestCrossCheck: the clean document against routes that enforce less
// than it promises, one gap at a time, and against one that enforces
// all of it.
func TestCrossCheck(t *testing.T) {
	src, err := os.ReadFile("testdata/clean.yaml")
	if err != nil {
		t.Fatal(err)
	}
	full := func() config.Route {
		return config.Route{ID: "orders", Prefix: "/", Auth: &config.RouteAuth{JWT: []string{"corp"}},
			Authorize: &config.Authorize{ScopesAny: []string{"orders:read", "orders:write"}, Bind: map[string]string{"order_id": "sub"}},
			OpenAPI:   &config.OpenAPI{Spec: "clean.yaml", Undocumented: "refuse"}}
	}
	covered := map[string]bool{}
	for name, c := range map[string]struct {
		edit func(r *config.Route)
		want string // "" for no finding at all
	}{
		"enforces everything":         {func(r *config.Route) {}, ""},
		"a prefix that is too narrow": {func(r *config.Route) { r.Prefix = "/orders" }, "rampart:config-operation-not-routed"},
		"a method left out":           {func(r *config.Route) { r.Prefix, r.Path, r.Methods = "", "/orders/{id}", []string{"GET"} }, "rampart:config-operation-not-routed"},
		"public":                      {func(r *config.Route) { r.Public, r.Auth, r.Authorize = true, nil, nil }, "rampart:config-public-but-secured"},
		"a scope not enforced":        {func(r *config.Route) { r.Authorize.ScopesAny = []string{"orders:read"} }, "rampart:config-scope-not-enforced"},
		"no binding of order_id":      {func(r *config.Route) { r.Authorize.Bind = nil }, "rampart:config-bola-hint"},
		"a CEL policy on order_id": {func(r *config.Route) {
			r.Authorize.Bind, r.Authorize.CEL = nil, `request.params.order_id == identity.sub`
		}, ""},
		"shadow traffic passed": {func(r *config.Route) { r.OpenAPI.Undocumented = "monitor" }, "rampart:config-shadow-passed"},
	} {
		covered[c.want] = true
		r := full()
		c.edit(&r)
		fs, err := CrossCheck("clean.yaml", src, []config.Route{r}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ids := ruleIDs(fs)
		if c.want == "" && len(fs) != 0 || c.want != "" && !ids[c.want] {
			t.Errorf("%s: %v, want %q", name, fs, c.want)
		}
		for _, f := range fs {
			if f.Line == 0 || f.Fix == "" {
				t.Errorf("%s: incomplete finding %+v", name, f)
			}
		}
	}
	// One document on two routes that serve its operations between them.
	read, write := full(), full()
	read.ID, read.Prefix, read.Methods = "read", "/", []string{"GET"}
	write.ID, write.Prefix, write.Methods = "write", "/orders", []string{"PUT"}
	if fs, _ := CrossCheck("clean.yaml", src, []config.Route{read, write}, Options{}); len(fs) != 0 {
		t.Errorf("two routes serving the operations between them: %v", fs)
	}
	for _, r := range crossRules {
		if !covered[r.id] {
			t.Errorf("cross-check %s has no test", r.id)
		}
	}
}
