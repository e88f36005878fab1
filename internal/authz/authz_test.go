package authz

import (
	"net/http/httptest"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

func TestCompileRejectsBadCEL(t *testing.T) {
	for _, expr := range []string{`identity.sub`, `identity.sub ==`, `1 + "a"`, `request.nope.x == 1 && 5`} {
		if _, err := New(&config.Authorize{CEL: expr}); err == nil {
			t.Errorf("%q compiled", expr)
		}
	}
	if _, err := New(&config.Authorize{CEL: `"admin" in identity.roles`}); err != nil {
		t.Errorf("valid expression: %v", err)
	}
}

func TestPolicyRules(t *testing.T) {
	id := &pipeline.Identity{Subject: "alice", Scopes: []string{"a", "b"}, Roles: []string{"r1"},
		Claims: map[string]any{"tenant": "acme", "groups": []any{"x", "y"}, "level": int64(3), "org": map[string]any{"unit": "ops"}}}
	cases := []struct {
		name string
		a    config.Authorize
		want string
	}{
		{"scopes all ok", config.Authorize{ScopesAll: []string{"a", "b"}}, ""},
		{"scopes all missing", config.Authorize{ScopesAll: []string{"a", "c"}}, "scopes_all: missing c"},
		{"scopes any", config.Authorize{ScopesAny: []string{"z", "b"}}, ""},
		{"roles any miss", config.Authorize{RolesAny: []string{"r2"}}, "roles_any"},
		{"claim string", config.Authorize{Claims: map[string][]string{"tenant": {"acme"}}}, ""},
		{"claim list member", config.Authorize{Claims: map[string][]string{"groups": {"y"}}}, ""},
		{"claim number", config.Authorize{Claims: map[string][]string{"level": {"3"}}}, ""},
		{"claim nested", config.Authorize{Claims: map[string][]string{"org.unit": {"ops"}}}, ""},
		{"claim absent", config.Authorize{Claims: map[string][]string{"missing": {"x"}}}, "claims.missing"},
		{"bind sub", config.Authorize{Bind: map[string]string{"userId": "sub"}}, ""},
		{"bind tenant mismatch", config.Authorize{Bind: map[string]string{"t": "tenant"}}, "bind.t"},
		{"bind list claim refused", config.Authorize{Bind: map[string]string{"userId": "groups"}}, "bind.userId"},
	}
	for _, c := range cases {
		p, err := compile(&c.a)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "http://gw/x", nil)
		s := &pipeline.Scope{Identity: id, Params: map[string]string{"userId": "alice", "t": "globex"}}
		if got := p.check(r, s); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
