package gateway

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func BenchmarkTmpHeaders(b *testing.B) {
	for _, n := range []int{0, 20} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			_, h := benchGateway(b)
			req := httptest.NewRequest("GET", "http://gw/api/v1/items?x=1", nil)
			req.RemoteAddr = "127.0.0.1:5555"
			for i := 0; i < n; i++ {
				req.Header.Set("X-Extra-Header-"+strconv.Itoa(i), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w := &discardWriter{h: http.Header{}}
				h.ServeHTTP(w, req)
			}
		})
	}
}
