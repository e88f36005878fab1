package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/testpki"
)

// seen is one request as the upstream received it.
type seen struct {
	Method   string
	URI      string
	Host     string
	Header   http.Header
	Body     string
	Complete bool // the whole body was read without error
}

// upstream is a recording test service.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Body: string(b), Complete: err == nil})
		u.mu.Unlock()
		if h != nil {
			r.Body = io.NopCloser(strings.NewReader(string(b)))
			h(w, r)
			return
		}
		w.Header().Set("Server", "upstream/1.0")
		w.Header().Set("X-Powered-By", "PHP/5.1")
		io.WriteString(w, "ok "+r.URL.EscapedPath())
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) received() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

func (u *upstream) completeCount() int {
	n := 0
	for _, r := range u.received() {
		if r.Complete {
			n++
		}
	}
	return n
}

func (u *upstream) hostPort() string { return strings.TrimPrefix(u.URL, "http://") }

// baseConfig is a config with one listener on a free port, one plaintext
// upstream and a few public routes. extra is appended verbatim.
func baseConfig(up string, extra string) string {
	return `version: 1
listeners:
  - name: public
    address: 127.0.0.1:0
    limits:
      read_header_timeout: 2s
      max_body_bytes: 1KiB
upstreams:
  - name: svc
    allow_plaintext: true
    targets:
      - url: http://` + up + `
routes:
  - id: api
    prefix: /api
    upstream: svc
    public: true
  - id: public
    prefix: /public
    upstream: svc
    public: true
  - id: users
    path: /users/{id}
    methods: [GET]
    upstream: svc
    public: true
` + extra
}

// startConfig starts a gateway for an already parsed config with the
// caller's dependencies (an event stream, a clock) and returns it with the
// first listener's address. It is shut down at cleanup (a test may shut it
// down earlier).
func startConfig(t *testing.T, cfg *config.Config, deps pipeline.Deps) (*Gateway, string) {
	t.Helper()
	g, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	if err := g.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	return g, g.Addr(cfg.Listeners[0].Name).String()
}

// startGateway loads yaml, starts a gateway and returns it with the address
// of its first listener.
func startGateway(t *testing.T, yaml string) (*Gateway, string) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if testing.Verbose() {
		cfg.AccessLog.Output = "stderr"
		cfg.SecurityEvents.Output = "stderr"
	} else {
		cfg.AccessLog.Enabled = new(bool)
		cfg.SecurityEvents.Enabled = new(bool)
	}
	return startConfig(t, cfg, pipeline.Deps{Now: time.Now})
}

// rawExchange writes raw bytes to addr and returns everything read until
// the server closes the connection or 2 s pass.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	return rawExchangeFrom(t, "", addr, raw)
}

// rawExchangeFrom is rawExchange from a chosen loopback source address
// ("" for any).
func rawExchangeFrom(t *testing.T, src, addr, raw string) string {
	t.Helper()
	d := net.Dialer{}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

var statusRE = regexp.MustCompile(`HTTP/1\.[01] (\d{3}) `)

// statusLines returns the status codes of every response in a raw stream.
func statusLines(resp string) []string {
	var out []string
	for _, m := range statusRE.FindAllStringSubmatch(resp, -1) {
		out = append(out, m[1])
	}
	return out
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func tlsCAConfig(t *testing.T, ca *testpki.CA) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.Server(t).TLS}}
}

func x509MarshalPKIX(pub any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// loadResult is what underLoad's workers saw.
type loadResult struct {
	ok, failed int64
	failures   []string // distinct failure descriptions
}

// underLoad runs workers that call do in a loop (sleeping pause between
// calls, at most 100,000 calls each) until the returned stop is called;
// stop waits for them and returns the counts. do returns "" on success,
// else a description of the failure.
func underLoad(workers int, pause time.Duration, do func() string) (stop func() loadResult) {
	var ok, failed atomic.Int64
	var failures sync.Map
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				select {
				case <-done:
					return
				default:
				}
				if msg := do(); msg != "" {
					failed.Add(1)
					failures.Store(msg, true)
				} else {
					ok.Add(1)
				}
				time.Sleep(pause)
			}
		}()
	}
	return func() loadResult {
		close(done)
		wg.Wait()
		r := loadResult{ok: ok.Load(), failed: failed.Load()}
		failures.Range(func(k, _ any) bool { r.failures = append(r.failures, k.(string)); return true })
		return r
	}
}

// statusesAt GETs path from each gateway address in turn and returns the
// status codes.
func statusesAt(t *testing.T, path string, addrs ...string) []string {
	t.Helper()
	var got []string
	for _, a := range addrs {
		resp, err := http.Get("http://" + a + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got = append(got, strconv.Itoa(resp.StatusCode))
	}
	return got
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
