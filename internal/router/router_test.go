package router

import (
	"reflect"
	"testing"
)

func specs() []Spec[string] {
	return []Spec[string]{
		{ID: "catchall", Prefix: "/"},
		{ID: "api", Prefix: "/api"},
		{ID: "api-v1", Prefix: "/api/v1"},
		{ID: "users-tpl", Path: "/api/v1/users/{id}"},
		{ID: "users-me", Path: "/api/v1/users/me"},
		{ID: "orders-tpl", Path: "/api/v1/users/{id}/orders"},
		{ID: "any-tpl", Path: "/api/v1/{kind}/{id}/orders"},
		{ID: "left-lit", Path: "/x/{a}"},
		{ID: "right-lit", Path: "/{a}/y"},
		{ID: "post-only", Path: "/submit", Methods: []string{"POST"}},
		{ID: "put-only", Path: "/submit", Methods: []string{"PUT"}},
		{ID: "write", Path: "/write", Methods: []string{"POST"}},
		{ID: "host-exact", Hosts: []string{"admin.example.com"}, Prefix: "/"},
		{ID: "host-wild", Hosts: []string{"*.example.com"}, Prefix: "/"},
		{ID: "host-wild-exact", Hosts: []string{"*.example.com"}, Path: "/health"},
		{ID: "methods-first", Path: "/dual", Methods: []string{"GET"}},
		{ID: "methods-later", Path: "/dual"},
	}
}

// TestPrecedence is the precedence table: the most specific route wins,
// whatever order the config lists routes in.
func TestPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host, method, path string
		want               string
		result             Result
		params             map[string]string
	}{
		{"gw", "GET", "/", "catchall", Found, nil},
		{"gw", "GET", "/other", "catchall", Found, nil},
		{"gw", "GET", "/api", "api", Found, nil},
		{"gw", "GET", "/api/", "api", Found, nil},
		{"gw", "GET", "/apiary", "catchall", Found, nil},
		{"gw", "GET", "/api/v1", "api-v1", Found, nil},
		{"gw", "GET", "/api/v10", "api", Found, nil},
		{"gw", "GET", "/api/v1/users", "api-v1", Found, nil},
		{"gw", "GET", "/api/v1/users/me", "users-me", Found, nil},
		{"gw", "GET", "/api/v1/users/42", "users-tpl", Found, map[string]string{"id": "42"}},
		{"gw", "GET", "/api/v1/users/a%20b", "users-tpl", Found, map[string]string{"id": "a b"}},
		{"gw", "GET", "/api/v1/users/42/", "api-v1", Found, nil},
		{"gw", "GET", "/api/v1/users/42/orders", "orders-tpl", Found, map[string]string{"id": "42"}},
		{"gw", "GET", "/api/v1/items/42/orders", "any-tpl", Found, map[string]string{"kind": "items", "id": "42"}},
		{"gw", "GET", "/x/y", "left-lit", Found, map[string]string{"a": "y"}},
		{"gw", "GET", "/z/y", "right-lit", Found, map[string]string{"a": "z"}},
		{"gw", "POST", "/submit", "post-only", Found, nil},
		{"gw", "PUT", "/submit", "put-only", Found, nil},
		// Falls through to the catch-all prefix, which allows any method.
		{"gw", "GET", "/submit", "catchall", Found, nil},
		{"gw", "GET", "/dual", "methods-first", Found, nil},
		{"gw", "DELETE", "/dual", "methods-later", Found, nil},
		{"admin.example.com", "GET", "/health", "host-exact", Found, nil},
		{"shop.example.com", "GET", "/health", "host-wild-exact", Found, nil},
		{"shop.example.com", "GET", "/x", "host-wild", Found, nil},
		{"a.b.example.com", "GET", "/x", "catchall", Found, nil},
		{"example.com", "GET", "/x", "catchall", Found, nil},
	}
	for _, order := range []string{"forward", "reverse"} {
		s := specs()
		if order == "reverse" {
			for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
				s[i], s[j] = s[j], s[i]
			}
		}
		rt, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range tests {
			m := rt.Match(tc.host, tc.method, tc.path)
			if m.Result != tc.result || m.ID != tc.want {
				t.Errorf("%s: %s %s%s = %v %q, want %v %q", order, tc.method, tc.host, tc.path, m.Result, m.ID, tc.result, tc.want)
			}
			if !reflect.DeepEqual(m.Params, tc.params) {
				t.Errorf("%s: %s%s params = %v, want %v", order, tc.host, tc.path, m.Params, tc.params)
			}
		}
	}
}

func TestMethodNotAllowedAndUnknownHost(t *testing.T) {
	t.Parallel()
	rt, err := New([]Spec[string]{
		{ID: "w", Hosts: []string{"api.example.com"}, Path: "/w", Methods: []string{"POST", "PUT"}},
		{ID: "w2", Hosts: []string{"api.example.com"}, Path: "/w", Methods: []string{"PATCH", "PUT"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := rt.Match("api.example.com", "GET", "/w")
	if m.Result != MethodNotAllowed || !reflect.DeepEqual(m.Allow, []string{"POST", "PUT", "PATCH"}) {
		t.Errorf("GET /w = %v allow %v, want 405 with POST, PUT, PATCH", m.Result, m.Allow)
	}
	// Methods are case-sensitive: "post" is not POST.
	if m := rt.Match("api.example.com", "post", "/w"); m.Result != MethodNotAllowed {
		t.Errorf("lower-case post = %v, want MethodNotAllowed", m.Result)
	}
	if m := rt.Match("api.example.com", "GET", "/x"); m.Result != NotFound {
		t.Errorf("/x = %v, want NotFound", m.Result)
	}
	if m := rt.Match("evil.example.com", "POST", "/w"); m.Result != UnknownHost {
		t.Errorf("unknown host = %v, want UnknownHost", m.Result)
	}
}

func TestCanonicalHost(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"Example.COM":       "example.com",
		"example.com:8080":  "example.com",
		"example.com.":      "example.com",
		"127.0.0.1:80":      "127.0.0.1",
		"[::1]:8080":        "[::1]",
		"[2001:DB8::1]":     "[2001:db8::1]",
		"under_score.local": "under_score.local",
	}
	for in, want := range good {
		if got, err := CanonicalHost(in); err != nil || got != want {
			t.Errorf("CanonicalHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a b", "a/b", "a@b", "a:b:c", "a:", "a:x", "[::1", "[::1]x", "[zz::1]", "exa\x00mple.com", ":80"} {
		if got, err := CanonicalHost(in); err == nil {
			t.Errorf("CanonicalHost(%q) = %q, want error", in, got)
		}
	}
}
