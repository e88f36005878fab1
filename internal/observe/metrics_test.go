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

// A route's shedding limit is a series while it sheds; -1 removes it (a
// reload left the route without shedding, or removed it).
func TestOverloadLimitSeries(t *testing.T) {
	m := NewMetrics(Gauges{})
	series := func() map[string]float64 {
		out := map[string]float64{}
		fams, err := m.Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != "rampart_overload_limit" {
				continue
			}
			for _, s := range f.GetMetric() {
				out[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
			}
		}
		return out
	}
	m.OverloadLimit("search", 1000)
	m.OverloadLimit("orders", 40)
	m.OverloadLimit("search", 12)
	if got := series(); got["search"] != 12 || got["orders"] != 40 || len(got) != 2 {
		t.Fatalf("series %v", got)
	}
	m.OverloadLimit("search", -1)
	if got := series(); len(got) != 1 || got["orders"] != 40 {
		t.Fatalf("after removal: %v", got)
	}
}
