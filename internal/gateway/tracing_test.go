package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// otlpReceiver collects the spans exported to it over OTLP/HTTP.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpReceiver) add(req *coltrace.ExportTraceServiceRequest) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			o.spans = append(o.spans, ss.GetSpans()...)
		}
	}
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.add(&req)
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Write(out)
}

func (o *otlpReceiver) all() []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*tracepb.Span(nil), o.spans...)
}

func attr(s *tracepb.Span, key string) string {
	for _, a := range s.GetAttributes() {
		if a.GetKey() == key {
			if v := a.GetValue().GetStringValue(); v != "" {
				return v
			}
			return a.GetValue().String()
		}
	}
	return ""
}

// TestTracing: a span per request reaches an in-process OTLP/HTTP
// receiver, with the route, status and, for a refusal, a
// "refused" event with the decision; the upstream receives the gateway's
// traceparent. A client's traceparent is not trusted (a new trace starts)
// unless the peer is a trusted proxy, whose trace is continued.
func TestTracing(t *testing.T) {
	recv := &otlpReceiver{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	endpoint := strings.TrimPrefix(srv.URL, "http://")
	up := newUpstream(t, nil)
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "00-" + clientTrace + "-00f067aa0ba902b7-01"
	run := func(trusted string) (sent []seen, spans []*tracepb.Span) {
		yaml := `version: 1
listeners: [{name: public, address: "127.0.0.1:0"` + trusted + `}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
routes: [{id: api, prefix: /api, upstream: svc, public: true}]
tracing: {endpoint: "` + endpoint + `", allow_plaintext: true, sample_ratio: 1}
`
		cfg, err := config.Parse([]byte(yaml), "tracing.yaml")
		if err != nil {
			t.Fatal(err)
		}
		cfg.AccessLog.Enabled, cfg.SecurityEvents.Enabled = new(bool), new(bool)
		g, addr := startConfig(t, cfg, pipeline.Deps{Now: time.Now})
		before := len(up.received())
		rawExchange(t, addr, "GET /api/items HTTP/1.1\r\nHost: gw\r\nTraceparent: "+parent+"\r\nBaggage: tier=gold\r\nConnection: close\r\n\r\n")
		rawExchange(t, addr, "GET /nope HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil { // flushes the spans
			t.Fatal(err)
		}
		return up.received()[before:], recv.all()
	}

	sent, spans := run("")
	if len(sent) != 1 || len(spans) != 2 {
		t.Fatalf("upstream got %d requests, receiver %d spans", len(sent), len(spans))
	}
	tp := sent[0].Header.Get("Traceparent")
	if tp == "" || strings.Contains(tp, clientTrace) {
		t.Fatalf("upstream traceparent %q: want the gateway's own trace", tp)
	}
	if sent[0].Header.Get("Baggage") != "" {
		t.Fatalf("untrusted baggage forwarded: %q", sent[0].Header.Get("Baggage"))
	}
	var served, refused *tracepb.Span
	for _, s := range spans {
		if attr(s, "http.route") == "api" {
			served = s
		} else {
			refused = s
		}
	}
	if served == nil || refused == nil {
		t.Fatalf("spans %v", spans)
	}
	if served.GetName() != "HTTP GET api" || attr(served, "url.path") != "/api/items" || !strings.Contains(tp, hexID(served.GetTraceId())) ||
		served.GetKind() != tracepb.Span_SPAN_KIND_SERVER || hexID(served.GetTraceId()) == clientTrace {
		t.Errorf("served span %v (traceparent %s)", served, tp)
	}
	if attr(refused, "rampart.decision") != "router.not_found" || len(refused.GetEvents()) == 0 || refused.GetEvents()[0].GetName() != "refused" {
		t.Errorf("refused span %v", refused)
	}

	recv.mu.Lock()
	recv.spans = nil
	recv.mu.Unlock()
	sent, spans = run(", trusted_proxies: [127.0.0.1]")
	if len(sent) != 1 || len(spans) != 2 {
		t.Fatalf("trusted: upstream got %d, receiver %d spans", len(sent), len(spans))
	}
	if tp := sent[0].Header.Get("Traceparent"); !strings.Contains(tp, clientTrace) || sent[0].Header.Get("Baggage") != "tier=gold" {
		t.Fatalf("trusted proxy: traceparent %q baggage %q, want the client's trace continued", tp, sent[0].Header.Get("Baggage"))
	}
}

func hexID(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestTracingReload: a reload applies a changed tracing section (sample
// ratio 0 → 1: spans start arriving; section removed: no more trace
// headers to the upstream), and warns that a changed admin section needs a
// restart instead of ignoring it silently.
func TestTracingReload(t *testing.T) {
	recv := &otlpReceiver{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	up := newUpstream(t, nil)
	base := `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
routes: [{id: api, prefix: /api, upstream: svc, public: true}]
security_events: {enabled: false}
`
	tracing := func(ratio string) string {
		return "tracing: {endpoint: \"" + strings.TrimPrefix(srv.URL, "http://") + "\", allow_plaintext: true, sample_ratio: " + ratio + "}\n"
	}
	parse := func(yaml string) *config.Config {
		cfg, err := config.Parse([]byte(yaml), "tracing.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var logs lockedBuffer
	cfg := parse(base + "access_log: {output: /dev/null}\n" + tracing("0"))
	g, addr := startConfig(t, cfg, pipeline.Deps{Now: time.Now, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	get := func() http.Header {
		t.Helper()
		before := len(up.received())
		rawExchange(t, addr, "GET /api/items HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
		r := up.received()
		if len(r) != before+1 {
			t.Fatalf("upstream got %d requests", len(r)-before)
		}
		return r[before].Header
	}
	if tp := get().Get("Traceparent"); !strings.HasSuffix(tp, "-00") {
		t.Fatalf("ratio 0: traceparent %q, want not sampled", tp)
	}
	old := g.outputs.Tracer()
	if err := g.Reload(parse(base + "access_log: {output: /dev/null}\n" + tracing("1"))); err != nil {
		t.Fatal(err)
	}
	if g.outputs.Tracer() == old {
		t.Fatal("changed tracing section, same tracer")
	}
	if tp := get().Get("Traceparent"); !strings.HasSuffix(tp, "-01") {
		t.Fatalf("after reload to ratio 1: traceparent %q, want sampled", tp)
	}
	waitUntil(t, "a span exported after the reload", func() bool { return len(recv.all()) > 0 })

	// An unchanged section keeps its tracer; a changed admin section warns.
	cur := g.outputs.Tracer()
	t.Setenv("RAMPART_TEST_ADMIN_TOKEN", strings.Repeat("t", 40))
	if err := g.Reload(parse(base + "access_log: {output: /dev/null}\nadmin: {address: 127.0.0.1:0, token: '${env:RAMPART_TEST_ADMIN_TOKEN}'}\n" + tracing("1"))); err != nil {
		t.Fatal(err)
	}
	if g.outputs.Tracer() != cur {
		t.Error("unchanged tracing section rebuilt")
	}
	const warning = "reload: admin differs from the running admin section"
	if !strings.Contains(logs.String(), warning) {
		t.Errorf("no warning for a changed admin section:\n%s", logs.String())
	}
	// Restoring the admin section that runs (none) is no change.
	warned := strings.Count(logs.String(), warning)
	if err := g.Reload(parse(base + "access_log: {output: stderr}\n")); err != nil {
		t.Fatal(err)
	}
	if strings.Count(logs.String(), warning) != warned {
		t.Errorf("an edit restoring the running admin section warned:\n%s", logs.String())
	}
	if h := get(); h.Get("Traceparent") != "" {
		t.Fatalf("tracing removed, upstream still gets traceparent %q", h.Get("Traceparent"))
	}
}
