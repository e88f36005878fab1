package respond

import (
	"net/http"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// BenchmarkApply is the response policy's cost on one proxied response:
// the secure defaults and a top-level response_headers with one set and
// one remove, on the headers a service typically sends. Compare with
// BenchmarkPassThrough (internal/gateway) in the same run.
func BenchmarkApply(b *testing.B) {
	p, err := Compile(&config.ResponseHeaders{Set: map[string]string{"Permissions-Policy": "geolocation=()"}, Remove: []string{"X-Internal-Version"}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ct, cl, date := []string{"application/json"}, []string{"1024"}, []string{"Sun, 06 Dec 2026 02:00:00 GMT"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h := make(http.Header, 12)
		h["Content-Type"], h["Content-Length"], h["Date"] = ct, cl, date
		p.Apply(h, i&1 == 0)
	}
}

// BenchmarkNewHeader is BenchmarkApply's map and service headers alone,
// to subtract.
func BenchmarkNewHeader(b *testing.B) {
	ct, cl, date := []string{"application/json"}, []string{"1024"}, []string{"Sun, 06 Dec 2026 02:00:00 GMT"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h := make(http.Header, 12)
		h["Content-Type"], h["Content-Length"], h["Date"] = ct, cl, date
	}
}
