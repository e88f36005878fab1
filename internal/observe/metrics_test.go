package observe

import (
	"testing"
	"time"
)

// BenchmarkMetricsRequest: the per-request cost of the metrics (counter,
// two histograms).
func BenchmarkMetricsRequest(b *testing.B) {
	m := NewMetrics(Gauges{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("orders", "GET", 200, "", 3*time.Millisecond, 2*time.Millisecond)
		}
	})
}

func TestLabels(t *testing.T) {
	for m, want := range map[string]string{"GET": "GET", "PATCH": "PATCH", "PROPFIND": "other", "get": "other"} {
		if got := methodLabel(m); got != want {
			t.Errorf("%s: %s", m, got)
		}
	}
	for s, want := range map[int]string{101: "1xx", 200: "2xx", 304: "3xx", 404: "4xx", 499: "4xx", 503: "5xx"} {
		if got := statusClass(s); got != want {
			t.Errorf("%d: %s", s, got)
		}
	}
}
