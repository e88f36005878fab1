package discovery

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// BenchmarkLearn100k learns a 100,000-request corpus (ids, UUIDs, slugs,
// JSON bodies of a dozen fields) as `rampart discover learn` does.
func BenchmarkLearn100k(b *testing.B) {
	corpus := make([]Sample, 100000)
	for i := range corpus {
		path := fmt.Sprintf("/v1/users/%d/orders/%08x-1111-4222-8333-444455556666", i%5000, i)
		if i%3 == 0 {
			path = fmt.Sprintf("/v1/articles/how-to-%d", i%400)
		}
		corpus[i] = Sample{Route: "api", Method: "GET", Path: path, Status: 200, RespType: "application/json", Time: t0,
			RespBody: []byte(fmt.Sprintf(`{"id":%d,"name":"n%d","email":"u%d@corp.example","status":"paid","total":%d.5,"items":[{"sku":"A-%d","qty":%d}],"created":"2026-12-06T10:00:00Z"}`, i, i, i, i, i, i%9))}
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		l := New(1, Settings{MaxOperations: 100000}, t0, nil)
		start := time.Now()
		for _, s := range corpus {
			l.Learn(s)
		}
		_ = l.Draft()
		b.ReportMetric(time.Since(start).Seconds(), "s/corpus")
		l.Close()
	}
}

// benchJSON is a ~1 KiB JSON answer of a dozen fields, nested (as the
// gateway's discovery benchmarks send).
const benchJSON = `{"id":"3f2b8c1e-1111-4222-8333-444455556666","status":"paid","total":129.5,"currency":"EUR",` +
	`"created":"2026-12-06T10:00:00Z","customer":{"id":4711,"tier":"gold","country":"DE"},"items":[` +
	`{"sku":"A-100","qty":2,"price":19.5},{"sku":"B-200","qty":1,"price":90.5}],"notes":"leave at the door",` +
	`"shipping":{"method":"express","eta":"2026-12-08","address":{"city":"Berlin","zip":"10115"}},` +
	`"flags":["gift","fragile"],"version":3,"links":{"self":"https://api.example.com/v1/orders/1"}}`

// benchStage runs the discovery stage at rate around a handler that
// answers benchJSON, learning each sample at once (the cost the learner's
// goroutine would otherwise pay): the whole per-request cost of
// discovery at that rate.
func benchStage(b *testing.B, rate float64) {
	l := New(1, Settings{}, t0, nil)
	l.Close() // samples are learned below, synchronously
	var last Sample
	stage := Stage(config.Route{ID: "api"}, &config.Discovery{Sample: rate, MaxBodyBytes: 64 << 10}, l, time.Now)
	if stage == nil {
		stage = func(h pipeline.Handler) pipeline.Handler { return h }
	}
	h := stage(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(benchJSON)))
		_, err := io.WriteString(w, benchJSON)
		return err
	})
	req := httptest.NewRequest("GET", "http://gw/v1/orders/42?expand=items", nil)
	req = req.WithContext(pipeline.WithScope(req.Context(), &pipeline.Scope{Path: "/v1/orders/42"}))
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		_ = h(w, req)
		select {
		case last = <-l.queue:
			l.Learn(last)
		default:
		}
	}
}

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

func BenchmarkStageSample1(b *testing.B)   { benchStage(b, 0.01) }
func BenchmarkStageSample100(b *testing.B) { benchStage(b, 1) }
func BenchmarkStageOff(b *testing.B)       { benchStage(b, 0) }
