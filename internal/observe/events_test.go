package observe

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// syncBuffer is a goroutine-safe output.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAppendEvent(t *testing.T) {
	ev := pipeline.Event{
		Time: time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC), Name: "refusal", Code: "waf.sqli", Status: 403,
		RequestID: "r-1", Route: "search", ClientIP: "198.51.100.7", Subject: "alice", Auth: "jwt",
		Rules: []string{"942100", "942190"}, Reason: "waf rules 942100,942190",
		Method: "GET", Host: "api.example.com", Path: "/search", QueryKeys: []string{"q", "page"}, UserAgent: "curl/8",
		Attrs: map[string]string{"detector": "scanning"},
	}
	line := AppendEvent(nil, ev)
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	want := map[string]any{"time": "2026-11-27T07:00:00Z", "log": "security", "event": "refusal", "stage": "waf", "code": "waf.sqli",
		"status": 403.0, "request_id": "r-1", "route": "search", "client_ip": "198.51.100.7", "subject": "alice", "auth": "jwt",
		"reason": "waf rules 942100,942190", "detector": "scanning"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	req, _ := m["request"].(map[string]any)
	if req["method"] != "GET" || req["path"] != "/search" || req["user_agent"] != "curl/8" || len(req["query_keys"].([]any)) != 2 {
		t.Errorf("request summary %v", req)
	}
	if !strings.HasSuffix(string(line), "}\n") || strings.Count(string(line), "\n") != 1 {
		t.Errorf("not one line: %q", line)
	}
}

// TestRedactText: credentials in an operator-facing reason or a user
// agent are masked.
func TestRedactText(t *testing.T) {
	jwt := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
	secrets := []string{
		jwt,
		"Bearer opaque-token-1234",
		"Basic YWxpY2U6c2VjcmV0",
		"password=hunter2",
		`"password": "hunter2"`,
		"api_key=rk_live_abc",
		"session=s3ss10n",
		"client_secret: shh",
		"rk_3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a",
	}
	for _, s := range secrets {
		out := RedactText("failed: " + s + " end")
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%q: not redacted: %q", s, out)
		}
		for _, part := range []string{"hunter2", "opaque-token-1234", "YWxpY2U6c2VjcmV0", "rk_live_abc", "s3ss10n", "shh", "c2lnbmF0dXJl", "rk_3f9a8b7c"} {
			if strings.Contains(s, part) && strings.Contains(out, part) {
				t.Errorf("%q: %q survives: %q", s, part, out)
			}
		}
	}
	for _, keep := range []string{"waf rules 942100,942190 (action deny, rule 949110)", "token expired", "issuer https://idp.example.com not trusted"} {
		if got := RedactText(keep); got != keep {
			t.Errorf("%q changed to %q", keep, got)
		}
	}
}

// TestEmitNeverBlocks: with the writer stuck, Emit returns at once and
// counts the events it had to drop.
func TestEmitNeverBlocks(t *testing.T) {
	stuck := make(chan struct{})
	e := NewEmitter(EventOptions{Output: blockingWriter{stuck}, QueueSize: 10})
	start := time.Now()
	for i := 0; i < 1000; i++ {
		e.Emit(pipeline.Event{Name: "refusal", Code: "router.not_found"})
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("1000 emits took %v", d)
	}
	if d := e.Dropped(); d < 980 {
		t.Fatalf("dropped %d, want ≥ 980 (queue 10, writer stuck)", d)
	}
	close(stuck)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

type blockingWriter struct{ c chan struct{} }

func (w blockingWriter) Write(p []byte) (int, error) { <-w.c; return len(p), nil }

// TestWebhook: events arrive in batches with the configured headers; a
// failing endpoint is retried; Close delivers what is queued.
func TestWebhook(t *testing.T) {
	var mu sync.Mutex
	var batches [][]map[string]any
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Authorization") != "Bearer hook-secret" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad headers", http.StatusUnauthorized)
			return
		}
		var batch []map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		batches = append(batches, batch)
		mu.Unlock()
	}))
	defer srv.Close()
	var out syncBuffer
	e := NewEmitter(EventOptions{Output: &out, Webhook: &WebhookOptions{
		URL: srv.URL, Headers: http.Header{"Authorization": {"Bearer hook-secret"}},
		BatchSize: 4, FlushInterval: time.Hour, MaxRetries: 3, Timeout: time.Second,
	}})
	for i := 0; i < 10; i++ {
		e.Emit(pipeline.Event{Name: "refusal", Code: "authn.unauthorized", RequestID: "r" + string(rune('0'+i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, b := range batches {
		if len(b) > 4 {
			t.Errorf("batch of %d > batch_size 4", len(b))
		}
		total += len(b)
	}
	if total != 10 || len(batches) != 3 {
		t.Fatalf("webhook got %d events in %d batches, want 10 in 3", total, len(batches))
	}
	if n := strings.Count(out.String(), "\n"); n != 10 {
		t.Fatalf("output has %d lines", n)
	}
	if e.Dropped() != 0 {
		t.Fatalf("dropped %d", e.Dropped())
	}
}

// TestWebhookGivesUp: an endpoint that keeps failing costs a bounded
// number of attempts; the batch is dropped and counted.
func TestWebhookGivesUp(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	e := NewEmitter(EventOptions{Webhook: &WebhookOptions{URL: srv.URL, BatchSize: 10, FlushInterval: 10 * time.Millisecond, MaxRetries: 2, Timeout: time.Second}})
	e.Emit(pipeline.Event{Name: "refusal"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deadline := time.Now().Add(5 * time.Second)
	for e.Dropped() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || e.Dropped() != 1 {
		t.Fatalf("calls %d (want 1 + 2 retries), dropped %d", calls.Load(), e.Dropped())
	}
}

// TestEmitDuringClose: events emitted while the stream is being closed (a
// reload retiring it) are delivered or dropped, never a panic.
func TestEmitDuringClose(t *testing.T) {
	for i := 0; i < 20; i++ {
		e := NewEmitter(EventOptions{Output: io.Discard, QueueSize: 4})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for j := 0; j < 4; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						e.Emit(pipeline.Event{Name: "refusal", Code: "authn.missing"})
					}
				}
			}()
		}
		time.Sleep(100 * time.Microsecond)
		e.Close(context.Background())
		time.Sleep(100 * time.Microsecond) // emitting after the close
		close(stop)
		wg.Wait()
	}
}
