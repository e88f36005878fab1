package observe

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// TracingOptions configure OpenTelemetry tracing.
type TracingOptions struct {
	// Endpoint is the collector's host:port.
	Endpoint string
	// Protocol is "http" (OTLP/HTTP, protobuf encoding; the only one).
	Protocol string
	// Insecure sends spans without TLS (a collector on loopback).
	Insecure bool
	// Headers are added to every export (authentication).
	Headers map[string]string
	// SampleRatio of new traces, 0 to 1; a trusted parent's decision is
	// kept.
	SampleRatio float64
	// ServiceName is the resource's service.name.
	ServiceName string
	// Version is the resource's service.version.
	Version string
}

// Tracer starts a span per request and propagates W3C trace context and
// baggage to upstreams. Its own state (provider, exporter) is per gateway.
type Tracer struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	// bound is the sampling threshold for new traces, as the SDK's
	// TraceIDRatioBased computes it: sampled when the trace id's lower 63
	// bits are below it.
	bound uint64
}

// NewTracer starts the exporter and the batching span processor.
func NewTracer(ctx context.Context, o TracingOptions) (*Tracer, error) {
	if o.Protocol != "http" && o.Protocol != "" {
		return nil, fmt.Errorf("tracing protocol %q: use http (OTLP/HTTP)", o.Protocol)
	}
	exp := newOTLPExporter(o.Endpoint, o.Insecure, o.Headers)
	res := resource.NewSchemaless(semconv.ServiceName(o.ServiceName), semconv.ServiceVersion(o.Version))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second), sdktrace.WithMaxQueueSize(8192)),
		sdktrace.WithResource(res),
		// New traces are sampled by Start before any span exists (the
		// unsampled majority never reaches the SDK); what reaches the SDK
		// is sampled, or follows its parent's decision.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	return &Tracer{
		tp:     tp,
		tracer: tp.Tracer("github.com/rampart-gw/rampart"),
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		bound:  uint64(max(0, min(1, o.SampleRatio)) * (1 << 63)),
	}, nil
}

// Start begins the request's server span and sets the trace headers the
// upstream receives in h (the request's headers, canonical keys as
// net/http parses them). With trustIncoming (the peer is a trusted proxy)
// the client's traceparent and baggage continue their trace; otherwise
// they are ignored, so that clients cannot force sampling or inject
// baggage. Either way the client's W3C headers are replaced by the
// gateway's own.
//
// A new trace is sampled here, as TraceIDRatioBased would decide, before
// any span exists: an unsampled request gets a not-sampled traceparent
// (so the upstream learns the decision and the trace id) and no span at
// all, and Start returns ctx unchanged and a nil span.
func (t *Tracer) Start(ctx context.Context, h http.Header, trustIncoming bool) (context.Context, trace.Span) {
	extracted := false
	if trustIncoming && (h["Traceparent"] != nil || h["Baggage"] != nil) {
		ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(h))
		extracted = true
	}
	delete(h, "Traceparent")
	delete(h, "Tracestate")
	delete(h, "Baggage")
	if !extracted || !trace.SpanContextFromContext(ctx).IsValid() {
		var tid trace.TraceID
		var sid trace.SpanID
		binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
		binary.BigEndian.PutUint64(tid[8:], rand.Uint64())
		binary.BigEndian.PutUint64(sid[:], rand.Uint64()|1)
		if binary.BigEndian.Uint64(tid[8:])>>1 >= t.bound {
			if !extracted {
				h["Traceparent"] = []string{traceparent(tid, sid, false)}
				return ctx, nil
			}
			// A trusted proxy's baggage without a trace: keep it.
			ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
			t.prop.Inject(ctx, propagation.HeaderCarrier(h))
			return ctx, nil
		}
	}
	// No attributes here: End sets them on recording spans only.
	ctx, span := t.tracer.Start(ctx, "HTTP", trace.WithSpanKind(trace.SpanKindServer))
	if extracted {
		t.prop.Inject(ctx, propagation.HeaderCarrier(h)) // tracestate and baggage too
	} else {
		sc := span.SpanContext()
		h["Traceparent"] = []string{traceparent(sc.TraceID(), sc.SpanID(), sc.IsSampled())}
	}
	return ctx, span
}

// traceparent formats a W3C traceparent header value (version 00).
func traceparent(tid trace.TraceID, sid trace.SpanID, sampled bool) string {
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	copy(b[52:], "-00")
	if sampled {
		b[54] = '1'
	}
	return string(b[:])
}

// SpanOutcome is what a request span records when it ends.
type SpanOutcome struct {
	Method, Route, Path, ClientIP, Upstream string
	Status                                  int
	// Code is the refusal's decision code, "" when served.
	Code string
	// UpstreamTime is the time waiting for the upstream's headers.
	UpstreamTime time.Duration
}

// End completes a request span: route, status, client, and the stage
// events (refused with its stage and code, or the upstream exchange).
func End(span trace.Span, o SpanOutcome) {
	if span == nil {
		return
	}
	if !span.IsRecording() {
		span.End()
		return
	}
	name := "HTTP " + o.Method
	if o.Route != "" {
		name += " " + o.Route
	}
	span.SetName(name)
	span.SetAttributes(
		attribute.String("http.request.method", o.Method),
		attribute.String("http.route", o.Route),
		attribute.String("url.path", o.Path),
		attribute.Int("http.response.status_code", o.Status),
		attribute.String("client.address", o.ClientIP),
	)
	if o.Upstream != "" {
		span.AddEvent("upstream", trace.WithAttributes(attribute.String("server.address", o.Upstream),
			attribute.Float64("rampart.upstream_ms", float64(o.UpstreamTime.Microseconds())/1000)))
	}
	if o.Code != "" {
		stage, _, _ := strings.Cut(o.Code, ".")
		span.SetAttributes(attribute.String("rampart.decision", o.Code))
		span.AddEvent("refused", trace.WithAttributes(attribute.String("rampart.stage", stage), attribute.String("rampart.decision", o.Code)))
	}
	if o.Status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(o.Status))
	}
	span.End()
}

// Shutdown exports the spans still queued.
func (t *Tracer) Shutdown(ctx context.Context) error { return t.tp.Shutdown(ctx) }
