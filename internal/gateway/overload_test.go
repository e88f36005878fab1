package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A flood on a route that serves one request at a time (a CPU-bound
// route on one core) is shed at the gateway: the excess gets 503
// overload.shed at once, the service holds a few requests at a time
// instead of the crowd, and another route keeps answering.
// (bench/overload.sh measures the other route's latency under a flood
// that takes the gateway's CPU.)
func TestOverloadShedsAFlood(t *testing.T) {
	var mu sync.Mutex
	var inFlight, peak atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/public/ping" {
			io.WriteString(w, "pong")
			return
		}
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		mu.Lock()
		time.Sleep(3 * time.Millisecond)
		mu.Unlock()
		io.WriteString(w, "done")
	}))
	defer up.Close()
	_, addr := startGateway(t, baseConfig(up.Listener.Addr().String(), ""))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}, Timeout: 10 * time.Second}

	var shed, ok atomic.Int64
	var sample atomic.Value
	end := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				resp, err := client.Get("http://" + addr + "/api/work")
				if err != nil {
					t.Error(err)
					return
				}
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 503:
					shed.Add(1)
					if raw, err := httputil.DumpResponse(resp, true); err == nil {
						sample.Store(string(raw))
					}
					time.Sleep(5 * time.Millisecond)
				default:
					t.Errorf("status %d", resp.StatusCode)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	// The last second of the flood, after the limit adapted.
	time.Sleep(2 * time.Second)
	peak.Store(inFlight.Load())
	var slowest time.Duration
	for range 50 {
		start := time.Now()
		resp, err := client.Get("http://" + addr + "/public/ping")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("the other route: %v %v", resp, err)
		}
		resp.Body.Close()
		slowest = max(slowest, time.Since(start))
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	if shed.Load() == 0 || ok.Load() == 0 {
		t.Fatalf("served %d, shed %d", ok.Load(), shed.Load())
	}
	raw, _ := sample.Load().(string)
	checkProblem(t, raw, "overload.shed")
	if head, _, _ := strings.Cut(raw, "\r\n\r\n"); !strings.Contains(head+"\r\n", "\r\nRetry-After: 1\r\n") {
		t.Errorf("no Retry-After in\n%s", head)
	}
	// Without shedding it holds all 100. Under the race detector a
	// refusal costs the gateway about what serving does, the one case
	// where the limiter undoes its cuts (they refuse work without
	// shortening a queue; TestCutsThatDoNotHelpAreUndone), so the
	// service's share is checked without it.
	if p := peak.Load(); p > 40 && !raceDetector {
		t.Errorf("the service held %d requests at once after the limit adapted, want a few", p)
	}
	if slowest > time.Second {
		t.Errorf("the other route took %v during the flood", slowest)
	}
}
