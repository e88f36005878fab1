package observe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// otlpExporter sends spans to an OpenTelemetry collector over OTLP/HTTP
// with the binary protobuf encoding (POST /v1/traces,
// application/x-protobuf), which every collector accepts. It encodes the
// few OTLP messages a span needs itself: the protobuf and gRPC runtimes
// that the SDK's exporters bring would be most of the gateway's build
// time for one message type.
type otlpExporter struct {
	url     string
	headers map[string]string
	client  *http.Client
}

func newOTLPExporter(endpoint string, insecure bool, headers map[string]string) *otlpExporter {
	scheme := "https://"
	if insecure {
		scheme = "http://"
	}
	return &otlpExporter{url: scheme + endpoint + "/v1/traces", headers: headers, client: &http.Client{Timeout: 10 * time.Second}}
}

// ExportSpans sends one batch, retrying a busy or failing collector
// (429, 502, 503, 504, connection errors) with backoff while ctx allows.
func (e *otlpExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	body := encodeExportRequest(spans)
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		retry, err := e.post(ctx, body)
		if err == nil || !retry || attempt == 4 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// post sends one request; retry says whether a failure is worth retrying.
func (e *otlpExporter) post(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("OTLP export: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == 429 || resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504:
		return true, errors.New("OTLP export: collector answered " + strconv.Itoa(resp.StatusCode))
	}
	return false, errors.New("OTLP export: collector refused the batch with " + strconv.Itoa(resp.StatusCode))
}

// Shutdown releases the client's idle connections.
func (e *otlpExporter) Shutdown(context.Context) error {
	e.client.CloseIdleConnections()
	return nil
}

// encodeExportRequest encodes an ExportTraceServiceRequest
// (opentelemetry/proto/collector/trace/v1): one ResourceSpans per
// resource, one ScopeSpans per instrumentation scope, in batch order.
func encodeExportRequest(spans []sdktrace.ReadOnlySpan) []byte {
	var out pb
	for i := 0; i < len(spans); {
		res := spans[i].Resource()
		j := i
		for j < len(spans) && spans[j].Resource() == res {
			j++
		}
		out.message(1, func(rs *pb) { // ResourceSpans
			rs.message(1, func(r *pb) { // Resource
				for _, kv := range res.Attributes() {
					r.message(1, func(m *pb) { m.keyValue(kv) })
				}
			})
			for k := i; k < j; {
				scope := spans[k].InstrumentationScope()
				l := k
				for l < j && spans[l].InstrumentationScope() == scope {
					l++
				}
				rs.message(2, func(ss *pb) { // ScopeSpans
					ss.message(1, func(s *pb) { s.str(1, scope.Name); s.str(2, scope.Version) })
					for _, sp := range spans[k:l] {
						ss.message(2, func(m *pb) { m.span(sp) })
					}
					ss.str(3, scope.SchemaURL)
				})
				k = l
			}
			rs.str(3, res.SchemaURL())
		})
		i = j
	}
	return out.b
}

// span encodes a Span (opentelemetry/proto/trace/v1).
func (p *pb) span(s sdktrace.ReadOnlySpan) {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	p.bytes(1, tid[:])
	p.bytes(2, sid[:])
	p.str(3, sc.TraceState().String())
	if psid := s.Parent().SpanID(); psid.IsValid() {
		p.bytes(4, psid[:])
	}
	p.str(5, s.Name())
	p.varintField(6, uint64(spanKind(s.SpanKind())))
	p.fixed64(7, uint64(s.StartTime().UnixNano()))
	p.fixed64(8, uint64(s.EndTime().UnixNano()))
	for _, kv := range s.Attributes() {
		p.message(9, func(m *pb) { m.keyValue(kv) })
	}
	p.varintField(10, uint64(s.DroppedAttributes()))
	for _, ev := range s.Events() {
		p.message(11, func(m *pb) {
			m.fixed64(1, uint64(ev.Time.UnixNano()))
			m.str(2, ev.Name)
			for _, kv := range ev.Attributes {
				m.message(3, func(a *pb) { a.keyValue(kv) })
			}
			m.varintField(4, uint64(ev.DroppedAttributeCount))
		})
	}
	p.varintField(12, uint64(s.DroppedEvents()))
	for _, ln := range s.Links() {
		p.message(13, func(m *pb) {
			ltid, lsid := ln.SpanContext.TraceID(), ln.SpanContext.SpanID()
			m.bytes(1, ltid[:])
			m.bytes(2, lsid[:])
			for _, kv := range ln.Attributes {
				m.message(4, func(a *pb) { a.keyValue(kv) })
			}
			m.varintField(5, uint64(ln.DroppedAttributeCount))
			m.fixed32(6, spanFlags(ln.SpanContext.TraceFlags(), ln.SpanContext))
		})
	}
	p.varintField(14, uint64(s.DroppedLinks()))
	st := s.Status()
	p.message(15, func(m *pb) {
		m.str(2, st.Description)
		m.varintField(3, uint64(statusCode(st.Code)))
	})
	p.fixed32(16, spanFlags(sc.TraceFlags(), s.Parent()))
}

// spanFlags are the W3C trace flags and whether the parent is remote
// (SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK).
func spanFlags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	flags := uint32(tf) | 0x100
	if parent.IsRemote() {
		flags |= 0x200
	}
	return flags
}

// spanKind maps the API's span kind to OTLP's (SPAN_KIND_*).
func spanKind(k trace.SpanKind) int {
	if k >= trace.SpanKindInternal && k <= trace.SpanKindConsumer {
		return int(k)
	}
	return 0 // unspecified
}

// statusCode maps a status to OTLP's STATUS_CODE_* (0 unset, 1 ok, 2 error).
func statusCode(c codes.Code) int {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	}
	return 0
}

// keyValue encodes a KeyValue (opentelemetry/proto/common/v1).
func (p *pb) keyValue(kv attribute.KeyValue) {
	p.str(1, string(kv.Key))
	p.message(2, func(v *pb) { v.anyValue(kv.Value) })
}

// anyValue encodes an AnyValue; slices become an ArrayValue.
func (p *pb) anyValue(v attribute.Value) {
	switch v.Type() {
	case attribute.BOOL:
		p.tag(2, 0)
		p.varint(boolInt(v.AsBool()))
	case attribute.INT64:
		p.tag(3, 0)
		p.varint(uint64(v.AsInt64()))
	case attribute.FLOAT64:
		p.tag(4, 1)
		p.b = binary.LittleEndian.AppendUint64(p.b, math.Float64bits(v.AsFloat64()))
	case attribute.BOOLSLICE, attribute.INT64SLICE, attribute.FLOAT64SLICE, attribute.STRINGSLICE:
		p.message(5, func(a *pb) { a.array(v) })
	default:
		p.tag(1, 2)
		p.varint(uint64(len(v.Emit())))
		p.b = append(p.b, v.Emit()...)
	}
}

// array encodes an ArrayValue's values.
func (p *pb) array(v attribute.Value) {
	add := func(x attribute.Value) { p.message(1, func(m *pb) { m.anyValue(x) }) }
	switch v.Type() {
	case attribute.BOOLSLICE:
		for _, x := range v.AsBoolSlice() {
			add(attribute.BoolValue(x))
		}
	case attribute.INT64SLICE:
		for _, x := range v.AsInt64Slice() {
			add(attribute.Int64Value(x))
		}
	case attribute.FLOAT64SLICE:
		for _, x := range v.AsFloat64Slice() {
			add(attribute.Float64Value(x))
		}
	case attribute.STRINGSLICE:
		for _, x := range v.AsStringSlice() {
			add(attribute.StringValue(x))
		}
	}
}

func boolInt(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// pb is a protobuf wire-format writer (proto3: zero values are omitted).
type pb struct{ b []byte }

func (p *pb) tag(field, wire int) { p.varint(uint64(field<<3 | wire)) }

func (p *pb) varint(v uint64) { p.b = binary.AppendUvarint(p.b, v) }

func (p *pb) varintField(field int, v uint64) {
	if v != 0 {
		p.tag(field, 0)
		p.varint(v)
	}
}

func (p *pb) fixed64(field int, v uint64) {
	if v != 0 {
		p.tag(field, 1)
		p.b = binary.LittleEndian.AppendUint64(p.b, v)
	}
}

func (p *pb) fixed32(field int, v uint32) {
	if v != 0 {
		p.tag(field, 5)
		p.b = binary.LittleEndian.AppendUint32(p.b, v)
	}
}

func (p *pb) bytes(field int, v []byte) {
	if len(v) != 0 {
		p.tag(field, 2)
		p.varint(uint64(len(v)))
		p.b = append(p.b, v...)
	}
}

func (p *pb) str(field int, v string) {
	if v != "" {
		p.tag(field, 2)
		p.varint(uint64(len(v)))
		p.b = append(p.b, v...)
	}
}

// message encodes a length-delimited sub-message written by f (an empty
// one is still written: its presence can matter).
func (p *pb) message(field int, f func(*pb)) {
	var sub pb
	f(&sub)
	p.tag(field, 2)
	p.varint(uint64(len(sub.b)))
	p.b = append(p.b, sub.b...)
}
