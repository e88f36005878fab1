package observe

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// recordedSpans makes spans that use every part of the OTLP span message:
// every attribute type, events, a link, error and ok statuses, a remote
// parent with trace state, two scopes.
func recordedSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "rampart"), attribute.String("service.version", "1.2.3"))))
	ts, _ := trace.ParseTraceState("vendor=abc,other=x")
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
	_, s1 := tp.Tracer("github.com/rampart-gw/rampart").Start(ctx, "HTTP GET api", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithLinks(trace.Link{SpanContext: remote, Attributes: []attribute.KeyValue{attribute.String("why", "batch")}}))
	s1.SetAttributes(attribute.String("http.route", "api"), attribute.Int("http.response.status_code", 403),
		attribute.Bool("b", true), attribute.Float64("f", 1.5), attribute.Int64Slice("is", []int64{1, -2}),
		attribute.StringSlice("ss", []string{"a", ""}), attribute.BoolSlice("bs", []bool{true, false}),
		attribute.Float64Slice("fs", []float64{0.25}), attribute.String("empty", ""))
	s1.AddEvent("refused", trace.WithAttributes(attribute.String("rampart.decision", "waf.sqli")))
	s1.SetStatus(codes.Error, "Forbidden")
	s1.End()
	_, s2 := tp.Tracer("other", trace.WithInstrumentationVersion("0.1")).Start(context.Background(), "internal")
	s2.SetStatus(codes.Ok, "")
	s2.End()
	_, s3 := tp.Tracer("other", trace.WithInstrumentationVersion("0.1")).Start(context.Background(), "plain")
	s3.End()
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	return spans
}

// TestOTLPEncodingMatchesOfficialExporter: the request body Rampart sends
// decodes to the same ExportTraceServiceRequest as the OpenTelemetry
// project's own OTLP/HTTP exporter sends for the same spans.
func TestOTLPEncodingMatchesOfficialExporter(t *testing.T) {
	spans := recordedSpans(t)
	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || r.Header.Get("Authorization") != "Bearer t" {
			t.Errorf("export to %s, %q, auth %q", r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"))
		}
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	endpoint := strings.TrimPrefix(srv.URL, "http://")
	headers := map[string]string{"Authorization": "Bearer t"}
	official, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(endpoint), otlptracehttp.WithInsecure(),
		otlptracehttp.WithHeaders(headers), otlptracehttp.WithCompression(otlptracehttp.NoCompression))
	if err != nil {
		t.Fatal(err)
	}
	if err := official.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if err := newOTLPExporter(endpoint, true, headers).ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 2 {
		t.Fatalf("%d exports", len(bodies))
	}
	var want, got coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(bodies[0], &want); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(bodies[1], &got); err != nil {
		t.Fatalf("Rampart's export does not decode: %v", err)
	}
	if !proto.Equal(&want, &got) {
		t.Errorf("encodings differ:\n--- official\n%v\n--- rampart\n%v", &want, &got)
	}
	if n := len(got.GetResourceSpans()[0].GetScopeSpans()); n != 2 {
		t.Errorf("%d scopes, want 2", n)
	}
}

// TestOTLPExportRetries: a collector answering 503 is retried; a 400 is
// not (the batch would be refused again).
func TestOTLPExportRetries(t *testing.T) {
	for _, tc := range []struct {
		first    int
		wantErr  bool
		wantHits int
	}{{503, false, 2}, {400, true, 1}} {
		var mu sync.Mutex
		hits := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits++
			n := hits
			mu.Unlock()
			if n == 1 {
				w.WriteHeader(tc.first)
			}
		}))
		err := newOTLPExporter(strings.TrimPrefix(srv.URL, "http://"), true, nil).ExportSpans(context.Background(), recordedSpans(t))
		srv.Close()
		if (err != nil) != tc.wantErr || hits != tc.wantHits {
			t.Errorf("first answer %d: err %v after %d requests", tc.first, err, hits)
		}
	}
}
