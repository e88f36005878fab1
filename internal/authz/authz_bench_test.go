package authz

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

func benchPolicy(b *testing.B, a *config.Authorize) {
	mw, err := New(a)
	if err != nil {
		b.Fatal(err)
	}
	h := mw(func(w http.ResponseWriter, r *http.Request) error { return nil })
	req := httptest.NewRequest("GET", "http://gw/users/alice/orders", nil)
	req.Header.Set("X-Env", "prod")
	s := &pipeline.Scope{Path: "/users/alice/orders", Params: map[string]string{"userId": "alice"},
		Identity: &pipeline.Identity{Subject: "alice", Method: "jwt", Scopes: []string{"orders:read", "deploy"}, Roles: []string{"user"}}}
	req = req.WithContext(pipeline.WithScope(req.Context(), s))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := h(nil, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScopeCheck(b *testing.B) {
	benchPolicy(b, &config.Authorize{ScopesAll: []string{"orders:read"}, Bind: map[string]string{"userId": "sub"}})
}

func BenchmarkCEL(b *testing.B) {
	benchPolicy(b, &config.Authorize{CEL: `identity.sub == request.params["userId"] && "deploy" in identity.scopes && request.headers["x-env"] == "prod"`, Headers: []string{"X-Env"}})
}
