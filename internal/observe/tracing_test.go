package observe

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkTraceUnsampled is the tracing cost of a request the sampler
// drops (the common case): start, traceparent, end.
func BenchmarkTraceUnsampled(b *testing.B) {
	t, err := NewTracer(context.Background(), TracingOptions{Endpoint: "127.0.0.1:1", Insecure: true, SampleRatio: 0, ServiceName: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer t.Shutdown(context.Background())
	ctx := context.Background()
	h := http.Header{"Accept": {"*/*"}, "Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, span := t.Start(ctx, h, false)
		End(span, SpanOutcome{Method: "GET", Route: "items", Path: "/items", Status: 200})
	}
}

// TestRootSampling: new traces are sampled at the configured ratio before
// any span exists; unsampled ones still carry a (not-sampled) traceparent
// with a fresh trace id, and a trusted parent's decision is followed.
func TestRootSampling(t *testing.T) {
	for _, c := range []struct {
		ratio    float64
		min, max int
	}{{0, 0, 0}, {1, 1000, 1000}, {0.1, 50, 160}} {
		tr, err := NewTracer(context.Background(), TracingOptions{Endpoint: "127.0.0.1:1", Insecure: true, SampleRatio: c.ratio, ServiceName: "t"})
		if err != nil {
			t.Fatal(err)
		}
		sampled, ids := 0, map[string]bool{}
		for i := 0; i < 1000; i++ {
			r := httptest.NewRequest("GET", "http://x/", nil)
			_, span := tr.Start(r.Context(), r.Header, false)
			tp := r.Header.Get("Traceparent")
			if len(tp) != 55 {
				t.Fatalf("traceparent %q", tp)
			}
			ids[tp[3:35]] = true
			if span != nil && span.IsRecording() {
				sampled++
				if !strings.HasSuffix(tp, "-01") {
					t.Fatalf("sampled span, traceparent %q", tp)
				}
			} else if !strings.HasSuffix(tp, "-00") {
				t.Fatalf("unsampled span, traceparent %q", tp)
			}
			End(span, SpanOutcome{})
		}
		tr.Shutdown(context.Background())
		if sampled < c.min || sampled > c.max || len(ids) != 1000 {
			t.Errorf("ratio %v: %d of 1000 sampled (want %d..%d), %d distinct trace ids", c.ratio, sampled, c.min, c.max, len(ids))
		}
	}
	// A trusted, sampled parent is continued even at ratio 0.
	tr, _ := NewTracer(context.Background(), TracingOptions{Endpoint: "127.0.0.1:1", Insecure: true, SampleRatio: 0, ServiceName: "t"})
	defer tr.Shutdown(context.Background())
	r := httptest.NewRequest("GET", "http://x/", nil)
	r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if _, span := tr.Start(r.Context(), r.Header, true); span == nil || !span.IsRecording() || span.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("trusted sampled parent not continued: %v", span.SpanContext())
	}
}

// BenchmarkTraceSampled is a recorded span's cost on the request path
// (start, traceparent, attributes, end); its export runs in the batch
// processor's goroutine.
func BenchmarkTraceSampled(b *testing.B) {
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer recv.Close()
	t, err := NewTracer(context.Background(), TracingOptions{Endpoint: strings.TrimPrefix(recv.URL, "http://"), Insecure: true, SampleRatio: 1, ServiceName: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer t.Shutdown(context.Background())
	ctx := context.Background()
	h := http.Header{"Accept": {"*/*"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, span := t.Start(ctx, h, false)
		End(span, SpanOutcome{Method: "GET", Route: "items", Path: "/items", Status: 200, ClientIP: "127.0.0.1", Upstream: "127.0.0.1:8080", UpstreamTime: time.Millisecond})
	}
}
