package openapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var benchDoc = "testdata/users-3.1.yaml"

// benchCheck measures the OpenAPI stage alone on one valid request.
func benchCheck(b *testing.B, method, target, body string) {
	s := compile(b, benchDoc, Options{})
	h := s.Middleware()(func(w http.ResponseWriter, r *http.Request) error { return nil })
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(method, "http://api.example.com"+target, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("X-Tenant", "acme")
		if err := h(nil, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStageGET: path match, a typed query parameter and a header.
func BenchmarkStageGET(b *testing.B) { benchCheck(b, "GET", "/api/users?limit=20", "") }

// BenchmarkStagePathParam: a templated path with a typed parameter.
func BenchmarkStagePathParam(b *testing.B) { benchCheck(b, "GET", "/api/users/42", "") }

// BenchmarkStageJSON: a small JSON body against an object schema.
func BenchmarkStageJSON(b *testing.B) {
	benchCheck(b, "POST", "/api/users", `{"name":"Ada","email":"ada@example.com","age":36,"tags":["a","b"]}`)
}
