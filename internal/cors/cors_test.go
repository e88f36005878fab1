package cors

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

func mustCompile(t *testing.T, c config.CORS) *Policy {
	t.Helper()
	p, err := Compile(&c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMisconfigurationAttacks: the classic CORS mistakes, each tried
// against a policy that lists https://app.example.com and
// https://*.example.com.
func TestMisconfigurationAttacks(t *testing.T) {
	p := mustCompile(t, config.CORS{Origins: []string{"https://app.example.com", "https://*.example.com"}, Credentials: true})
	for _, origin := range []string{
		"https://evil.test",                     // reflection of any origin
		"https://evil-example.com",              // suffix without a label boundary
		"https://example.com.evil.net",          // prefix match
		"https://app.example.com.evil.net",      // exact origin as a prefix
		"https://evilapp.example.com.evil.test", // both
		"https://example.com",                   // the bare domain of a pattern
		"http://app.example.com",                // scheme downgrade
		"https://app.example.com:8443",          // another port
		"null",                                  // sandboxed iframes, file: pages
		"https://app.example.com/",              // not an origin
		"https://app.example.com.",              // trailing dot
		"https://user@app.example.com",          // userinfo
		"https://app.example.com\\@evil.test",   // parser confusion
		"https://app.example.com%2eevil.test",   // escaped dot
		"HTTPS://APP.EXAMPLE.COM.EVIL.TEST",     // case
		"",
		"*",
	} {
		if p.Allowed(origin) {
			t.Errorf("origin %q allowed", origin)
		}
		h := http.Header{}
		p.Decorate(h, origin)
		if v := h.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("origin %q got Access-Control-Allow-Origin %q", origin, v)
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("origin %q got credentials", origin)
		}
		if h.Get("Vary") != "Origin" {
			t.Errorf("origin %q: Vary %q, want Origin", origin, h.Get("Vary"))
		}
	}
	for _, origin := range []string{"https://app.example.com", "https://APP.example.com", "https://app.example.com:443", "https://eu.example.com", "https://a.b.example.com"} {
		if !p.Allowed(origin) {
			t.Errorf("origin %q refused", origin)
		}
	}
}

// TestWildcardWithCredentialsRefused: "*" with credentials is a config
// error, as are patterns too broad and origins that are not origins.
func TestWildcardWithCredentialsRefused(t *testing.T) {
	for _, c := range []config.CORS{
		{Origins: []string{"*"}, Credentials: true},
		{Origins: []string{"https://*.com"}},
		{Origins: []string{"https://*"}},
		{Origins: []string{"https://app.example.com/path"}},
		{Origins: []string{"app.example.com"}},
		{Origins: []string{"ftp://app.example.com"}},
		{Origins: []string{"https://*.*.example.com"}},
		{Origins: []string{"https://app.*.example.com"}},
		{Origins: []string{}},
		{Origins: []string{"https://a.example.com"}, Headers: []string{"Bad Header"}},
	} {
		if _, err := Compile(&c, nil); err == nil {
			t.Errorf("%+v compiled", c)
		}
	}
}

// TestNullOnlyWhenListed: the null origin is allowed only when listed.
func TestNullOnlyWhenListed(t *testing.T) {
	if mustCompile(t, config.CORS{Origins: []string{"*"}}).Allowed("null") {
		t.Error(`"*" allowed the null origin`)
	}
	if !mustCompile(t, config.CORS{Origins: []string{"null"}}).Allowed("null") {
		t.Error("a listed null origin refused")
	}
}

// TestWildcardWithoutCredentials: "*" answers "*", never the origin, and
// no credentials.
func TestWildcardWithoutCredentials(t *testing.T) {
	p := mustCompile(t, config.CORS{Origins: []string{"*"}})
	h := http.Header{"Access-Control-Allow-Origin": {"https://reflected.test"}, "Access-Control-Allow-Credentials": {"true"}}
	p.Decorate(h, "https://any.test")
	if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("headers %v", h)
	}
}

func preflight(origin, method, headers string) *http.Request {
	r := httptest.NewRequest(http.MethodOptions, "/orders", nil)
	r.Header.Set("Origin", origin)
	r.Header.Set("Access-Control-Request-Method", method)
	if headers != "" {
		r.Header.Set("Access-Control-Request-Headers", headers)
	}
	return r
}

// TestPreflight: allowed origin, method and headers get 204 with the
// policy; anything else is a 403 decision without CORS headers.
func TestPreflight(t *testing.T) {
	p := mustCompile(t, config.CORS{Origins: []string{"https://app.example.com"}, Methods: []string{"GET", "POST"},
		Headers: []string{"Authorization", "Content-Type"}, Credentials: true})
	w := httptest.NewRecorder()
	if err := p.Preflight(w, preflight("https://app.example.com", "POST", "content-type, authorization")); err != nil {
		t.Fatal(err)
	}
	h := w.Header()
	if w.Code != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" || h.Get("Access-Control-Allow-Credentials") != "true" ||
		h.Get("Access-Control-Allow-Methods") != "GET, POST" || h.Get("Access-Control-Max-Age") != "600" || h.Get("Vary") != "Origin" {
		t.Errorf("preflight: %d %v", w.Code, h)
	}
	for _, r := range []*http.Request{
		preflight("https://evil.test", "POST", ""),
		preflight("https://app.example.com", "DELETE", ""),
		preflight("https://app.example.com", "POST", "x-admin"),
		preflight("null", "GET", ""),
	} {
		w := httptest.NewRecorder()
		err := p.Preflight(w, r)
		if pe := pipeline.AsError(err); err == nil || pe.Status != 403 || pe.Code != CodePreflightRefused {
			t.Errorf("preflight %v: %v", r.Header, err)
		}
		for k := range w.Header() {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("refused preflight carries %s", k)
			}
		}
	}
}

func FuzzAllowed(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "https://x.example.com", "https://example.com.evil", "null"} {
		f.Add(s)
	}
	p, _ := Compile(&config.CORS{Origins: []string{"https://app.example.com", "https://*.example.com"}}, nil)
	f.Fuzz(func(t *testing.T, origin string) {
		// The fast parse agrees with the careful one.
		if c, ok := simple(origin); ok {
			if s, ok2 := Canonical(origin); !ok2 || s != c.scheme+"://"+c.host+":"+c.port {
				t.Fatalf("simple(%q) = %+v, Canonical = %q %v", origin, c, s, ok2)
			}
		}
		if !p.Allowed(origin) {
			return
		}
		c, ok := Canonical(origin)
		if !ok || !strings.HasPrefix(c, "https://") || !strings.HasSuffix(c, ".example.com:443") {
			t.Fatalf("%q allowed (canonical %q)", origin, c)
		}
	})
}

// BenchmarkDecorate is a CORS route's cost on one response to an allowed
// origin (parse, match, headers).
func BenchmarkDecorate(b *testing.B) {
	p, _ := Compile(&config.CORS{Origins: []string{"https://app.example.com", "https://*.example.org"}, Credentials: true}, nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h := make(http.Header, 8)
		p.Decorate(h, "https://eu.example.org")
	}
}
