package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/testredis"
)

// benchGateway compiles a gateway in front of a loopback upstream that
// returns 1 KiB, without binding a listener: the benchmark drives the
// listener handler directly.
func benchGateway(b *testing.B) (*Gateway, http.Handler) {
	return benchGatewayWith(b, nil)
}

// benchGatewayWith is benchGateway with the YAML edited by edit first.
func benchGatewayWith(b *testing.B, edit func(string) string) (*Gateway, http.Handler) {
	return benchGatewayServing(b, "", strings.Repeat("x", 1024), edit)
}

// benchGatewayServing is benchGatewayWith with an upstream answering
// payload as contentType.
func benchGatewayServing(b *testing.B, contentType, payload string, edit func(string) string) (*Gateway, http.Handler) {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		io.WriteString(w, payload)
	}))
	b.Cleanup(up.Close)
	yaml := baseConfig(strings.TrimPrefix(up.URL, "http://"), "")
	if edit != nil {
		yaml = edit(yaml)
	}
	cfg, err := config.Parse([]byte(yaml), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cfg.AccessLog.Output = "/dev/null"
	if cfg.SecurityEvents.Output == "stdout" {
		cfg.SecurityEvents.Output = "/dev/null"
	}
	g, err := New(cfg, pipeline.Deps{Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		g.runtime.Close()
		if g.guard != nil {
			g.guard.Close()
		}
		g.state.Load().Release(nil) // its Redis client: no dialling a stopped server
		_ = g.outputs.Close(context.Background())
	})
	return g, g.Handler("public")
}

type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}

// BenchmarkPassThrough is one proxied request through the whole compiled
// pipeline (framing verdict, request id, client IP, host, normalisation,
// routing, body limit, header hygiene, proxy to a loopback upstream,
// response hygiene, JSON access log).
func BenchmarkPassThrough(b *testing.B) {
	_, h := benchGateway(b)
	benchItems(b, h)
}

// BenchmarkPassThroughParallel is BenchmarkPassThrough from every core
// at once, each goroutine a client of its own address: with -cpu 1,2,4,8
// the CPU per request should stay flat as cores grow (no lock that every
// request shares).
func BenchmarkPassThroughParallel(b *testing.B) {
	_, h := benchGateway(b)
	benchParallel(b, h, "/api/v1/items?x=1")
}

// BenchmarkRefusalParallel is BenchmarkRefusal from every core at once:
// the gateway's own stages and shared state (metrics, the dashboard's
// count, the access log) without an upstream, a socket or a second
// process's work in the figure.
func BenchmarkRefusalParallel(b *testing.B) {
	_, h := benchGateway(b)
	benchParallel(b, h, "/nothing/here")
}

// BenchmarkBareReverseProxyParallel is the Go floor from every core at
// once: how much of BenchmarkPassThroughParallel's growth with cores is
// net/http, loopback sockets and the in-process upstream rather than
// the gateway.
func BenchmarkBareReverseProxyParallel(b *testing.B) {
	benchParallel(b, bareReverseProxy(b), "/api/v1/items?x=1")
}

// benchParallel drives h with a clean GET of path from every goroutine
// of b.RunParallel, each a client of its own address, and reports the
// process's CPU per request.
func benchParallel(b *testing.B, h http.Handler, path string) {
	var clients atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "http://gw"+path, nil)
		req.RemoteAddr = fmt.Sprintf("127.0.2.%d:5555", clients.Add(1))
		req.Header.Set("User-Agent", "bench")
		req.Header.Set("Accept", "*/*")
		for pb.Next() {
			h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
		}
	})
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// benchItems drives h with the same clean GET b.N times.
func benchItems(b *testing.B, h http.Handler) {
	req := httptest.NewRequest("GET", "http://gw/api/v1/items?x=1", nil)
	req.RemoteAddr = "127.0.0.1:5555"
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	benchRequest(b, h, req)
}

// benchRequest drives h with req b.N times.
func benchRequest(b *testing.B, h http.Handler, req *http.Request) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
	}
	// CPU time of the whole process (gateway, in-process upstream, GC,
	// exporters) per request: steadier than wall time on a shared VM.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the process's user+system CPU time in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkWAFPassThrough is BenchmarkPassThrough with the OWASP CRS (PL1)
// on the route: the WAF's cost on a clean request, side by side with
// BenchmarkPassThrough in one run.
func BenchmarkWAFPassThrough(b *testing.B) {
	_, h := benchGatewayWith(b, func(y string) string {
		return strings.Replace(y, "    prefix: /api\n    upstream: svc\n", "    prefix: /api\n    upstream: svc\n    waf: {paranoia: 1}\n", 1)
	})
	benchItems(b, h)
}

// BenchmarkOpenAPIPassThrough is BenchmarkPassThrough on a route with an
// OpenAPI 3.1 document that declares the request's path and its typed
// query parameter: the validation's cost, side by side in one run.
func BenchmarkOpenAPIPassThrough(b *testing.B) {
	spec := filepath.Join(b.TempDir(), "items.yaml")
	doc := "openapi: 3.1.0\ninfo: {title: Items, version: \"1\"}\nservers: [{url: /api}]\npaths:\n  /v1/items:\n    get:\n      parameters:\n        - {name: x, in: query, schema: {type: integer, minimum: 0, maximum: 10}}\n      responses:\n        \"200\": {description: items}\n"
	if err := os.WriteFile(spec, []byte(doc), 0o644); err != nil {
		b.Fatal(err)
	}
	_, h := benchGatewayWith(b, func(y string) string {
		return strings.Replace(y, "    prefix: /api\n    upstream: svc\n", "    prefix: /api\n    upstream: svc\n    openapi: {spec: "+spec+"}\n", 1)
	})
	benchItems(b, h)
}

// BenchmarkRefusal is a request refused before routing (404): the cost of
// the gateway's own stages and a problem response, with no upstream.
func BenchmarkRefusal(b *testing.B) {
	_, h := benchGateway(b)
	req := httptest.NewRequest("GET", "http://gw/nothing/here", nil)
	req.RemoteAddr = "127.0.0.1:5555"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
	}
}

// BenchmarkBareReverseProxy is the Go floor for BenchmarkPassThrough: a
// zero-feature httputil.ReverseProxy in front of the same upstream.
func BenchmarkBareReverseProxy(b *testing.B) {
	benchItems(b, bareReverseProxy(b))
}

// bareReverseProxy is a zero-feature httputil.ReverseProxy in front of a
// loopback upstream that returns 1 KiB.
func bareReverseProxy(b *testing.B) http.Handler {
	payload := strings.Repeat("x", 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, payload)
	}))
	b.Cleanup(up.Close)
	target, _ := url.Parse(up.URL)
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true},
	}
}

// BenchmarkObservabilityOff and BenchmarkObservabilityOn are the same
// clean GET without any observability (no access log, no security events,
// no admin listener so no metrics, no tracing) and with all of it (access
// log, event stream, metrics, tracing every request to an in-process OTLP
// receiver), side by side in one run.
func BenchmarkObservabilityOff(b *testing.B) {
	_, h := benchGatewayWith(b, func(y string) string {
		return y + "access_log: {enabled: false}\nsecurity_events: {enabled: false}\n"
	})
	benchItems(b, h)
}

func BenchmarkObservabilityOn(b *testing.B) {
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(recv.Close)
	b.Setenv("RAMPART_ADMIN_TOKEN", "bench-admin-token-0123456789abcdef0123")
	g, h := benchGatewayWith(b, func(y string) string {
		return y + "admin: {address: 127.0.0.1:0, token: '${env:RAMPART_ADMIN_TOKEN}'}\n" +
			"tracing: {endpoint: " + strings.TrimPrefix(recv.URL, "http://") + ", allow_plaintext: true}\n"
	})
	if g.metrics == nil || g.outputs.Tracer() == nil {
		b.Fatal("observability not on")
	}
	benchItems(b, h)
}

// jsonPayload is a ~1 KiB JSON answer of a dozen fields, nested.
const jsonPayload = `{"id":"3f2b8c1e-1111-4222-8333-444455556666","status":"paid","total":129.5,"currency":"EUR",` +
	`"created":"2026-12-06T10:00:00Z","customer":{"id":4711,"tier":"gold","country":"DE"},"items":[` +
	`{"sku":"A-100","qty":2,"price":19.5},{"sku":"B-200","qty":1,"price":90.5}],"notes":"leave at the door",` +
	`"shipping":{"method":"express","eta":"2026-12-08","address":{"city":"Berlin","zip":"10115"}},` +
	`"flags":["gift","fragile"],"version":3,"links":{"self":"https://api.example.com/v1/orders/1"}}`

// benchDiscovery is BenchmarkPassThrough on a JSON answer with API
// discovery sampling rate (0: off), side by side in one run.
func benchDiscovery(b *testing.B, rate string) {
	g, h := benchGatewayServing(b, "application/json", jsonPayload, func(y string) string {
		if rate == "" {
			return y
		}
		return y + "discovery: {sample: " + rate + "}\n"
	})
	benchItems(b, h)
	if l := g.state.Load().Discovery; l != nil {
		time.Sleep(50 * time.Millisecond) // the queue drains
		st := l.Stats()
		b.ReportMetric(float64(st.Learned)/float64(b.N), "learned/op")
	}
}

func BenchmarkDiscoveryOff(b *testing.B) { benchDiscovery(b, "") }
func BenchmarkDiscovery1(b *testing.B)   { benchDiscovery(b, "0.01") }
func BenchmarkDiscovery100(b *testing.B) { benchDiscovery(b, "1") }

// benchPayment drives h with b.N distinct POSTs (a JSON body of ~100
// bytes, a fresh Idempotency-Key each), as a payment client would send.
//
// The timer starts in the steady state: after paymentWarmup requests,
// which fill the idempotency store (paymentStoreBytes) so that each
// answer kept evicts the oldest.
func benchPayment(b *testing.B, h http.Handler) {
	pay := paymentRequests(b, h)
	for i := range paymentWarmup {
		pay(-1-i, "127.0.0.1:5555")
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		pay(i, "127.0.0.1:5555")
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// benchPaymentParallel is benchPayment from 32 goroutines per core at
// once, as a gateway under load serves them.
func benchPaymentParallel(b *testing.B, h http.Handler) {
	pay := paymentRequests(b, h)
	for i := range paymentWarmup {
		pay(-1-i, "127.0.0.1:5555")
	}
	var next, callers atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine is a caller of its own: the route lets a caller
		// have one request in flight.
		addr := fmt.Sprintf("127.0.1.%d:5555", callers.Add(1))
		for pb.Next() {
			pay(int(next.Add(1)), addr)
		}
	})
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// paymentRequests returns a function that sends the i-th distinct POST
// (its own body and Idempotency-Key) from addr and fails b unless it is
// answered 200.
func paymentRequests(b *testing.B, h http.Handler) func(i int, addr string) {
	var failed atomic.Bool
	return func(i int, addr string) {
		body := fmt.Sprintf(`{"voucher":"SUMMER-%d","amount":1250,"currency":"EUR"}`, i)
		req := httptest.NewRequest("POST", "http://gw/api/v1/pay", strings.NewReader(body))
		req.RemoteAddr = addr
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("%032x", i))
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK && !failed.Swap(true) {
			b.Errorf("request %d: %d", i, w.status)
		}
	}
}

// paymentWarmup requests fill an idempotency store of paymentStoreBytes
// (answers of ~1.3 KiB).
const (
	paymentWarmup     = 4000
	paymentStoreBytes = "4MiB"
)

// paymentRoute puts the race defence and idempotency on the /api route
// (defences: "" for none).
func paymentRoute(defences string) func(string) string {
	return func(y string) string {
		return strings.Replace(y, "    prefix: /api\n    upstream: svc\n", "    prefix: /api\n    upstream: svc\n"+defences, 1)
	}
}

// BenchmarkPaymentPlain, BenchmarkPaymentDefended and
// BenchmarkPaymentDefendedRedis: the same POSTs through the route without
// its defences, with every one on (per-caller concurrency, the race
// detector, idempotency keys, and every abuse detector with the learned
// baselines) in memory, and with them in Redis.
func BenchmarkPaymentPlain(b *testing.B) { benchPaymentRoute(b, undefended, "") }

func BenchmarkPaymentDefended(b *testing.B) { benchPaymentRoute(b, defended, everyDetector) }

func BenchmarkPaymentDefendedRedis(b *testing.B) {
	srv := testredis.Start(b, "")
	benchPaymentRoute(b, defended, everyDetector+"rate_limiting: {redis: {addresses: [\""+srv.Addr+"\"]}}\n")
}

// BenchmarkPaymentSideBySide runs the plain, the defended and the
// Redis-defended route in turns of paymentTurn requests each (b.N
// requests per route in all) and reports the median of the per-turn
// ratios of process CPU per request: the VM's slow drifts in speed,
// which make separate benchmarks of one route disagree by 20% from run
// to run, fall on all three alike. One request at a time.
func BenchmarkPaymentSideBySide(b *testing.B) { paymentSideBySide(b, 1, paymentRoutes(b)) }

// BenchmarkPaymentSideBySideParallel is the same with 64 callers
// sending at once, as a gateway under load serves them.
func BenchmarkPaymentSideBySideParallel(b *testing.B) { paymentSideBySide(b, 64, paymentRoutes(b)) }

// BenchmarkPaymentPartsSideBySide is the plain route beside each
// defence alone, 64 callers at once.
func BenchmarkPaymentPartsSideBySide(b *testing.B) {
	paymentSideBySide(b, 64, []sideRoute{
		{"plain", paymentRoute(undefended)},
		{"race", paymentRoute("    category: payment\n")},
		{"idempotency", paymentRoute(undefended + "    idempotency: {required: true, max_store_bytes: " + paymentStoreBytes + "}\n")},
		{"detectors", func(y string) string { return paymentRoute(undefended)(y) + everyDetector }},
	})
}

// sideRoute is a route config edit to benchmark beside others.
type sideRoute struct {
	name string
	edit func(string) string
}

// paymentRoutes: plain, defended in memory, defended in Redis.
func paymentRoutes(b *testing.B) []sideRoute {
	srv := testredis.Start(b, "")
	redisCfg := "rate_limiting: {redis: {addresses: [\"" + srv.Addr + "\"]}}\n"
	return []sideRoute{
		{"plain", paymentRoute(undefended)},
		{"defended", func(y string) string { return paymentRoute(defended)(y) + everyDetector }},
		{"redis", func(y string) string { return paymentRoute(defended)(y) + everyDetector + redisCfg }},
	}
}

// paymentSideBySide serves routes in turns, callers at once, and reports
// each route's median per-turn CPU ratio to the first. The requests of
// a turn carry the profiler label route=NAME: with -test.cpuprofile,
// pprof -tagfocus route=NAME shows one route's request path.
func paymentSideBySide(b *testing.B, callers int, routes []sideRoute) {
	names := make([]string, len(routes))
	serve := make([]func(from, until int), len(routes))
	for i, r := range routes {
		_, h := benchGatewayWith(b, r.edit)
		pay := paymentRequests(b, h)
		for j := range paymentWarmup {
			pay(-1-j, "127.0.0.1:5555")
		}
		names[i] = r.name
		serve[i] = func(from, until int) { payConcurrently(pay, from, until, callers) }
	}
	sideBySide(b, names, serve)
}

// sideBySide serves b.N requests of each of several kinds in turns of
// paymentTurn (serve[i](from, until) sends requests from to until) and
// reports each kind's median per-turn CPU ratio to the first. The
// requests of a turn carry the profiler label route=NAME: with
// -test.cpuprofile, pprof -tagfocus route=NAME shows one kind's path.
func sideBySide(b *testing.B, names []string, serve []func(from, until int)) {
	ratios := make([][]float64, len(names))
	b.ResetTimer()
	for done := 0; done < b.N; done += paymentTurn {
		cpu := make([]float64, len(names))
		for k := range serve {
			// Each turn starts with another kind: no kind always
			// follows the same one.
			i := (done/paymentTurn + k) % len(serve)
			cpu0 := processCPU()
			pprof.Do(context.Background(), pprof.Labels("route", names[i]), func(context.Context) {
				serve[i](done, done+paymentTurn)
			})
			// What the turn left running (answers kept in Redis after
			// their responses, a garbage collection) is its own cost.
			time.Sleep(paymentSettle)
			cpu[i] = float64(processCPU() - cpu0)
		}
		for i := 1; i < len(names); i++ {
			ratios[i] = append(ratios[i], cpu[i]/cpu[0])
		}
	}
	for i := 1; i < len(names); i++ {
		b.ReportMetric(median(ratios[i]), names[i]+"/"+names[0])
	}
}

// payConcurrently sends requests from to until, from callers at once
// (each its own address: a caller may have one request in flight).
func payConcurrently(pay func(int, string), from, until, callers int) {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := fmt.Sprintf("127.0.1.%d:5555", c+1)
			for i := int(next.Add(1)) - 1; i < until; i = int(next.Add(1)) - 1 {
				pay(i, addr)
			}
		}()
	}
	wg.Wait()
}

// paymentTurn is the requests each route serves in a turn;
// paymentSettle, how long after it the turn's CPU is read.
const (
	paymentTurn   = 1000
	paymentSettle = 20 * time.Millisecond
)

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// The route's defences: none, or every one; everyDetector is an abuse
// section with every detector and both learned baselines on, counting
// by address, identity and session.
const (
	undefended    = "    race: {action: off}\n    max_in_flight_per_identity: 0\n"
	defended      = "    category: payment\n    idempotency: {required: true, max_store_bytes: " + paymentStoreBytes + "}\n"
	everyDetector = "abuse:\n  ban_for: 1m\n  session_cookie: sid\n  scraping: {action: ban}\n  anomaly: {interval: 10s}\n"
)

// benchPaymentRoute runs benchPayment on the /api route with these
// defences and extra top-level config.
func benchPaymentRoute(b *testing.B, defences, extra string) {
	_, h := benchGatewayWith(b, func(y string) string { return paymentRoute(defences)(y) + extra })
	benchPayment(b, h)
}

// The same three under concurrent load.
func BenchmarkPaymentPlainParallel(b *testing.B) {
	_, h := benchGatewayWith(b, paymentRoute(undefended))
	benchPaymentParallel(b, h)
}

func BenchmarkPaymentDefendedParallel(b *testing.B) {
	_, h := benchGatewayWith(b, func(y string) string { return paymentRoute(defended)(y) + everyDetector })
	benchPaymentParallel(b, h)
}

func BenchmarkPaymentDefendedRedisParallel(b *testing.B) {
	srv := testredis.Start(b, "")
	_, h := benchGatewayWith(b, func(y string) string {
		return paymentRoute(defended)(y) + everyDetector + "rate_limiting: {redis: {addresses: [\"" + srv.Addr + "\"]}}\n"
	})
	benchPaymentParallel(b, h)
}
