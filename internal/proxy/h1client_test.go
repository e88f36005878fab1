package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newFast(t *testing.T) *fastTransport {
	t.Helper()
	slow := &http.Transport{DisableCompression: true}
	ft := newFastTransport(slow, nil, time.Second, 2*time.Second, time.Minute, 8)
	t.Cleanup(ft.CloseIdleConnections)
	return ft
}

func do(t *testing.T, ft *fastTransport, method, rawURL string, hdr http.Header) (*http.Response, string, error) {
	t.Helper()
	u, _ := url.Parse(rawURL)
	req := (&http.Request{Method: method, URL: u, Header: hdr, Host: u.Host}).WithContext(context.Background())
	if req.Header == nil {
		req.Header = http.Header{}
	}
	resp, err := ft.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), nil
}

// rawServer answers each connection with the given handler over raw TCP.
func rawServer(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) (addr string, conns *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	conns = &atomic.Int32{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	return l.Addr().String(), conns
}

// countingServer serves h and counts the connections it accepts.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	conns := &atomic.Int32{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, conns
}

func readReq(br *bufio.Reader) (*http.Request, error) {
	r, err := http.ReadRequest(br)
	if err == nil {
		io.Copy(io.Discard, r.Body)
	}
	return r, err
}

func TestFastPathReusesConnections(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.(http.Flusher).Flush()
			io.WriteString(w, "chunk")
		case "/empty":
			w.WriteHeader(204)
		default:
			io.WriteString(w, "hello "+r.URL.RequestURI()+" "+r.Header.Get("X-A")+" "+r.Host)
		}
	})
	ft := newFast(t)
	for _, path := range []string{"/a%2Fb?q=1&r=%20", "/chunked", "/empty", "/x"} {
		for i := 0; i < 3; i++ {
			resp, body, err := do(t, ft, "GET", srv.URL+path, http.Header{"X-A": {"v"}})
			if err != nil {
				t.Fatal(err)
			}
			if path == "/a%2Fb?q=1&r=%20" && body != "hello /a%2Fb?q=1&r=%20 v "+strings.TrimPrefix(srv.URL, "http://") {
				t.Fatalf("body %q", body)
			}
			if path == "/empty" && resp.StatusCode != 204 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	if _, _, err := do(t, ft, "HEAD", srv.URL+"/x", nil); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d upstream connections for 13 sequential requests, want 1", n)
	}
}

// TestFastPathIdleCloseRetried: a kept-alive connection the service closed
// while idle is retried once on a fresh connection.
func TestFastPathIdleCloseRetried(t *testing.T) {
	addr, conns := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// Then close the idle connection, as servers with short
		// keep-alive timeouts do.
	})
	ft := newFast(t)
	for i := 0; i < 3; i++ {
		if _, body, err := do(t, ft, "GET", "http://"+addr+"/", nil); err != nil || body != "ok" {
			t.Fatalf("request %d: %q %v", i, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

// TestFastPathNoReuseAfterCloseOrGarbage: "Connection: close", unsolicited
// bytes after a response and read-until-close bodies never go back to the
// pool.
func TestFastPathNoReuse(t *testing.T) {
	cases := map[string]string{
		"connection close": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
		"unsolicited":      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!",
		"until close":      "HTTP/1.0 200 OK\r\n\r\nok",
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			addr, conns := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				for {
					if _, err := readReq(br); err != nil {
						return
					}
					io.WriteString(c, answer)
					if name == "until close" {
						return
					}
				}
			})
			ft := newFast(t)
			for i := 0; i < 2; i++ {
				_, body, err := do(t, ft, "GET", "http://"+addr+"/", nil)
				if err != nil || body != "ok" {
					t.Fatalf("request %d: %q %v", i, body, err)
				}
			}
			if n := conns.Load(); n != 2 {
				t.Errorf("%d connections, want 2 (no reuse)", n)
			}
		})
	}
}

func TestFastPathDropsInformational(t *testing.T) {
	addr, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	ft := newFast(t)
	resp, body, err := do(t, ft, "GET", "http://"+addr+"/", nil)
	if err != nil || resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("%v %q %v", resp, body, err)
	}
}

func TestFastPathTimeoutAndCancel(t *testing.T) {
	addr, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		readReq(br)
		time.Sleep(3 * time.Second)
	})
	ft := newFastTransport(&http.Transport{}, nil, time.Second, 200*time.Millisecond, time.Minute, 8)
	start := time.Now()
	_, _, err := do(t, ft, "GET", "http://"+addr+"/", nil)
	var ne net.Error
	if err == nil || !(asNetErr(err, &ne) && ne.Timeout()) || time.Since(start) > time.Second {
		t.Fatalf("response timeout: %v after %v", err, time.Since(start))
	}
	ft.response = 0
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	u, _ := url.Parse("http://" + addr + "/")
	req := (&http.Request{Method: "GET", URL: u, Header: http.Header{}, Host: u.Host}).WithContext(ctx)
	start = time.Now()
	if _, err := ft.RoundTrip(req); err == nil || time.Since(start) > time.Second {
		t.Fatalf("cancel: %v after %v", err, time.Since(start))
	}
}

func asNetErr(err error, ne *net.Error) bool {
	for err != nil {
		if e, ok := err.(net.Error); ok {
			*ne = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func TestFastPathEligibility(t *testing.T) {
	u, _ := url.Parse("http://x/")
	cases := []struct {
		req  *http.Request
		fast bool
	}{
		{&http.Request{Method: "GET", URL: u, Header: http.Header{}}, true},
		{&http.Request{Method: "HEAD", URL: u, Header: http.Header{}}, true},
		{&http.Request{Method: "POST", URL: u, Header: http.Header{}}, false},
		{&http.Request{Method: "GET", URL: u, Header: http.Header{}, ContentLength: 3, Body: io.NopCloser(strings.NewReader("abc"))}, false},
		{&http.Request{Method: "GET", URL: u, Header: http.Header{"Upgrade": {"websocket"}}}, false},
		{&http.Request{Method: "GET", URL: u, Header: http.Header{"Expect": {"100-continue"}}}, false},
	}
	for i, c := range cases {
		if got := fastPath(c.req); got != c.fast {
			t.Errorf("case %d (%s): fast=%v, want %v", i, c.req.Method, got, c.fast)
		}
	}
}

// TestInvalidHeadersOneRule: the fast writer and net/http's Transport
// refuse the same requests (a CR/LF or NUL in a value, a name that is not
// a token, a bad Host), before a byte reaches the upstream; the fast path
// no longer repairs values or drops names silently.
func TestInvalidHeadersOneRule(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/p")
	cases := []struct {
		name string
		host string
		hdr  http.Header
		bad  bool
	}{
		{"plain", "", http.Header{"X-A": {"v\tw"}}, false},
		{"obs-text", "", http.Header{"X-A": {"caf\xc3\xa9"}}, false},
		{"CRLF injection", "", http.Header{"X-A": {"a\r\nX-Injected: 1"}}, true},
		{"bare LF", "", http.Header{"X-A": {"a\nb"}}, true},
		{"NUL", "", http.Header{"X-A": {"a\x00b"}}, true},
		{"DEL", "", http.Header{"X-A": {"a\x7fb"}}, true},
		{"space in name", "", http.Header{"Bad Name": {"v"}}, true},
		{"colon in name", "", http.Header{"Bad:Name": {"v"}}, true},
		// net/http's Transport cuts such a Host at the first bad byte and
		// sends the rest; the gateway refuses it on both paths instead.
		{"CRLF in Host", "svc\r\nX: 1", nil, true},
		{"space in Host", "svc x", nil, true},
	}
	for _, c := range cases {
		req := func() *http.Request {
			r := (&http.Request{Method: "GET", URL: u, Header: c.hdr, Host: c.host}).WithContext(context.Background())
			if r.Header == nil {
				r.Header = http.Header{}
			}
			return r
		}
		before := got.Load()
		checkErr := checkHeaders(req())
		slowErr := checkErr
		if c.host == "" {
			_, slowErr = (&http.Transport{}).RoundTrip(req())
		}
		if (checkErr != nil) != c.bad || (slowErr != nil) != c.bad {
			t.Errorf("%s: the gateway's rule says %v, net/http's Transport %v; want refused=%v", c.name, checkErr, slowErr, c.bad)
		}
		if c.bad && got.Load() != before {
			t.Errorf("%s: the upstream received the request", c.name)
		}
		if checkErr != nil && !errors.Is(checkErr, ErrInvalidHeader) {
			t.Errorf("%s: %v is not ErrInvalidHeader", c.name, checkErr)
		}
	}
}

func TestFastPathReapsIdle(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	ft := newFastTransport(&http.Transport{}, nil, time.Second, time.Second, 100*time.Millisecond, 8)
	defer ft.CloseIdleConnections()
	if _, _, err := do(t, ft, "GET", srv.URL+"/", nil); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		n := 0
		for _, l := range ft.idle {
			n += len(l)
		}
		return n
	}
	if count() != 1 {
		t.Fatalf("idle %d, want 1", count())
	}
	deadline := time.Now().Add(2 * time.Second)
	for count() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if count() != 0 {
		t.Fatal("idle connection never reaped")
	}
}

// TestRetiredTransportKeepsNothing: after a reload retires the pool, a
// connection that a request in flight gives back is closed, not pooled.
func TestRetiredTransportKeepsNothing(t *testing.T) {
	ft := newFast(t)
	a, b := net.Pipe()
	defer b.Close()
	ft.put("http://up:80", &h1Conn{Conn: a, br: bufio.NewReader(a), bw: bufio.NewWriter(a)})
	if len(ft.idle["http://up:80"]) != 1 {
		t.Fatal("a live transport did not keep an idle connection")
	}
	ft.retire()
	c, d := net.Pipe()
	defer d.Close()
	ft.put("http://up:80", &h1Conn{Conn: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)})
	if n := len(ft.idle["http://up:80"]); n != 0 {
		t.Fatalf("a retired transport holds %d idle connections", n)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("the connection given back after retirement is still open")
	}
}

// Heads and bodies larger than a connection's buffers pass whole, in both
// directions, and the connection is reused after them.
func TestFastPathLargerThanBuffers(t *testing.T) {
	big := strings.Repeat("v", 3*connBuffer)
	body := strings.Repeat("b", 10*connBuffer+7)
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Big") != big {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("X-Big-Answer", big)
		io.WriteString(w, body)
	})
	ft := newFast(t)
	for range 3 {
		resp, got, err := do(t, ft, "GET", srv.URL+"/", http.Header{"X-Big": {big}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("X-Big-Answer") != big || got != body {
			t.Fatalf("status %d, header %d bytes, body %d bytes", resp.StatusCode, len(resp.Header.Get("X-Big-Answer")), len(got))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 requests, want 1", n)
	}
}
