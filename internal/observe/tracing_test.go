package observe

import (
	"context"
	"net/http/httptest"
	"testing"
)

// BenchmarkTraceUnsampled is the tracing cost of a request the sampler
// drops (the common case at the default 10%): start, inject, end.
func BenchmarkTraceUnsampled(b *testing.B) {
	t, err := NewTracer(context.Background(), TracingOptions{Endpoint: "127.0.0.1:1", Insecure: true, SampleRatio: 0, ServiceName: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer t.Shutdown(context.Background())
	req := httptest.NewRequest("GET", "http://x/items", nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r := req.Clone(req.Context())
		ctx, span := t.Start(r, false)
		t.Inject(ctx, r.Header)
		End(span, SpanOutcome{Method: "GET", Route: "items", Path: "/items", Status: 200})
	}
}
