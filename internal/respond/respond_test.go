package respond

import (
	"net/http"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// TestApply: defaults only where the service said nothing, then the
// merged policy (route entries win, removals add up), in that order.
func TestApply(t *testing.T) {
	p, err := Compile(
		&config.ResponseHeaders{Set: map[string]string{"X-Env": "top", "Permissions-Policy": "camera=()"}, Add: map[string]string{"Link": "</a>"}, Remove: []string{"x-internal"}},
		&config.ResponseHeaders{Set: map[string]string{"x-env": "route"}, Remove: []string{"X-Frame-Options"}})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"X-Internal": {"1"}, "Link": {"</b>"}, "Content-Security-Policy": {"default-src 'self'"}}
	p.Apply(h, true)
	want := map[string][]string{
		"X-Content-Type-Options": {"nosniff"}, "Referrer-Policy": {"no-referrer"}, "Cache-Control": {"no-store"},
		"Content-Security-Policy": {"default-src 'self'"}, "X-Env": {"route"}, "Permissions-Policy": {"camera=()"}, "Link": {"</b>", "</a>"},
	}
	for k, v := range want {
		if got := h[k]; len(got) != len(v) || (len(v) > 0 && got[len(got)-1] != v[len(v)-1]) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"X-Internal", "X-Frame-Options"} {
		if _, ok := h[k]; ok {
			t.Errorf("%s present", k)
		}
	}
	// A second response does not see the first's added values (shared
	// slices are never appended to in place).
	h2 := http.Header{}
	p.Apply(h2, false)
	if got := h2["Link"]; len(got) != 1 || h2.Get("Cache-Control") != "" || h2.Get("X-Frame-Options") != "" {
		t.Errorf("second response: %v", h2)
	}
	var none *Policy
	h3 := http.Header{}
	none.Apply(h3, false)
	if h3.Get("X-Frame-Options") != "DENY" || h3.Get("Content-Security-Policy") != "frame-ancestors 'none'" {
		t.Errorf("defaults: %v", h3)
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, rh := range []config.ResponseHeaders{
		{Set: map[string]string{"Bad Name": "x"}},
		{Set: map[string]string{"X-A": "a\r\nX-B: b"}},
		{Add: map[string]string{"Transfer-Encoding": "chunked"}},
		{Set: map[string]string{"access-control-allow-origin": "*"}},
		{Remove: []string{"Content-Length"}},
	} {
		if _, err := Compile(&rh, nil); err == nil {
			t.Errorf("%+v compiled", rh)
		}
	}
}
