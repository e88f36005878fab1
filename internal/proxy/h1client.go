package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// fastTransport is an HTTP/1.1 client for the common exchange: an
// idempotent request without a body and without an upgrade. It writes the
// request and reads the response (with net/http's own parser,
// http.ReadResponse) on the calling goroutine, over a keep-alive pool of
// its own, instead of handing each exchange to the two goroutines per
// connection that http.Transport uses. Everything else (request bodies,
// Expect, upgrades, CONNECT) goes to the wrapped http.Transport.
//
// Why: on a gateway, that hand-off (channels, select, timers, goroutine
// switches) is a large share of the CPU spent per request besides system
// calls (see BENCHMARKS.md).
type fastTransport struct {
	slow     *http.Transport
	dialer   *net.Dialer
	tlsConf  *tls.Config
	connect  time.Duration
	response time.Duration
	idleFor  time.Duration
	maxIdle  int

	mu     sync.Mutex
	idle   map[string][]*h1Conn
	closed bool
	reaper *time.Timer // closes connections idle longer than idleFor
}

type h1Conn struct {
	net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
	reused   bool
}

func newFastTransport(slow *http.Transport, tlsConf *tls.Config, connect, response, idleFor time.Duration, maxIdle int) *fastTransport {
	return &fastTransport{
		slow:     slow,
		dialer:   &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second},
		tlsConf:  tlsConf,
		connect:  connect,
		response: response,
		idleFor:  idleFor,
		maxIdle:  maxIdle,
		idle:     map[string][]*h1Conn{},
	}
}

// fastPath reports whether the exchange can take the fast path.
func fastPath(req *http.Request) bool {
	if (req.Body != nil && req.Body != http.NoBody) || req.ContentLength != 0 {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodDelete:
	default:
		return false
	}
	h := req.Header
	if _, ok := h["Upgrade"]; ok {
		return false
	}
	if _, ok := h["Expect"]; ok {
		return false
	}
	if _, ok := h["Transfer-Encoding"]; ok {
		return false
	}
	return len(req.TransferEncoding) == 0 && req.Trailer == nil
}

func (t *fastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !fastPath(req) {
		return t.slow.RoundTrip(req)
	}
	key := req.URL.Scheme + "://" + req.URL.Host
	for attempt := 0; ; attempt++ {
		c, err := t.get(req.Context(), key, req.URL)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(c, req)
		if err == nil {
			return resp, nil
		}
		c.Close()
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		// A kept-alive connection the service closed while idle fails
		// before any response byte; the request is idempotent and
		// bodiless, so one fresh connection may retry it (as
		// http.Transport does).
		if !c.reused || attempt > 0 || !errors.Is(err, errNothingRead) {
			return nil, errors.Unwrap(err)
		}
	}
}

var errNothingRead = errors.New("connection closed before any response byte")

type readErr struct{ err error }

func (e readErr) Error() string { return e.err.Error() }
func (e readErr) Unwrap() error { return e.err }
func (e readErr) Is(target error) bool {
	return target == errNothingRead
}

func (t *fastTransport) exchange(c *h1Conn, req *http.Request) (*http.Response, error) {
	stop := context.AfterFunc(req.Context(), func() { _ = c.SetDeadline(aLongTimeAgo) })
	if err := writeRequest(c.bw, req); err != nil {
		stop()
		// Nothing was read: on a reused connection this is the service
		// having closed it while idle, and the request may be retried.
		return nil, readErr{err}
	}
	if t.response > 0 {
		_ = c.SetReadDeadline(time.Now().Add(t.response))
	}
	var resp *http.Response
	var err error
	for {
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			stop()
			if c.br.Buffered() == 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) {
				return nil, readErr{err}
			}
			return nil, wrapErr(err, c)
		}
		// 1xx informational answers are dropped (a proxy may); 101
		// cannot happen without an upgrade request.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			continue
		}
		break
	}
	if t.response > 0 {
		_ = c.SetReadDeadline(time.Time{})
	}
	resp.Body = &fastBody{rc: resp.Body, c: c, t: t, key: req.URL.Scheme + "://" + req.URL.Host, reusable: !resp.Close && (resp.ContentLength >= 0 || isChunked(resp)), stop: stop}
	return resp, nil
}

// wrappedErr is a failure after response bytes were read: never retried.
type wrappedErr struct{ err error }

func (e wrappedErr) Error() string { return e.err.Error() }
func (e wrappedErr) Unwrap() error { return e.err }

// wrapErr wraps so that RoundTrip's errors.Unwrap returns the original.
func wrapErr(err error, _ *h1Conn) error { return wrappedErr{err} }

func isChunked(resp *http.Response) bool {
	return len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

var aLongTimeAgo = time.Unix(1, 0)

// fastBody returns the connection to the pool when the body was read to
// the end and the connection can be reused; otherwise it closes it.
type fastBody struct {
	rc       io.ReadCloser
	c        *h1Conn
	t        *fastTransport
	key      string
	reusable bool
	eof      bool
	done     bool
	stop     func() bool
}

func (b *fastBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *fastBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.rc.Close()
	stopped := b.stop()
	// Reuse only a connection whose response was consumed exactly: no
	// pending cancellation, nothing unsolicited buffered after it.
	if b.eof && b.reusable && stopped && b.c.br.Buffered() == 0 {
		b.t.put(b.key, b.c)
	} else {
		b.c.Close()
	}
	return err
}

func (t *fastTransport) get(ctx context.Context, key string, u interface{ Hostname() string }) (*h1Conn, error) {
	now := time.Now()
	t.mu.Lock()
	list := t.idle[key]
	for len(list) > 0 {
		c := list[len(list)-1]
		list = list[:len(list)-1]
		if now.Sub(c.lastUsed) > t.idleFor {
			c.Close()
			continue
		}
		t.idle[key] = list
		t.mu.Unlock()
		c.reused = true
		return c, nil
	}
	t.idle[key] = list
	t.mu.Unlock()
	return t.dial(ctx, key, u.Hostname())
}

func (t *fastTransport) dial(ctx context.Context, key, hostname string) (*h1Conn, error) {
	scheme, addr, _ := strings.Cut(key, "://")
	raw, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := raw
	if scheme == "https" {
		conf := t.tlsConf.Clone()
		if conf.ServerName == "" {
			conf.ServerName = hostname
		}
		conf.NextProtos = []string{"http/1.1"}
		tc := tls.Client(raw, conf)
		hctx, cancel := context.WithTimeout(ctx, t.connect)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			raw.Close()
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: raw.RemoteAddr(), Err: err}
		}
		conn = tc
	}
	return &h1Conn{Conn: conn, br: bufio.NewReaderSize(conn, connBuffer), bw: bufio.NewWriterSize(conn, connBuffer)}, nil
}

// connBuffer is the size of a connection's read and write buffers: a
// response's head and a request's head (and a small body) each fit in
// one system call; larger reads and writes bypass the buffer. Every
// pooled connection holds two, so they are kept small.
const connBuffer = 4 << 10

func (t *fastTransport) put(key string, c *h1Conn) {
	c.lastUsed = time.Now()
	t.mu.Lock()
	if !t.closed && len(t.idle[key]) < t.maxIdle {
		t.idle[key] = append(t.idle[key], c)
		if t.reaper == nil {
			t.reaper = time.AfterFunc(t.idleFor, t.reap)
		}
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	c.Close()
}

// reap closes connections idle for longer than idleFor. The pools are
// stacks, so the stale ones are at the bottom.
func (t *fastTransport) reap() {
	cutoff := time.Now().Add(-t.idleFor)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reaper = nil
	left := 0
	for k, list := range t.idle {
		n := 0
		for n < len(list) && list[n].lastUsed.Before(cutoff) {
			list[n].Close()
			n++
		}
		t.idle[k] = append(list[:0], list[n:]...)
		left += len(t.idle[k])
	}
	if left > 0 && !t.closed {
		t.reaper = time.AfterFunc(t.idleFor/2+time.Millisecond, t.reap)
	}
}

// retire closes the idle connections and stops keeping the ones that
// requests still in flight give back: the pool was retired by a reload.
func (t *fastTransport) retire() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.CloseIdleConnections()
}

// CloseIdleConnections closes pooled connections of both paths.
func (t *fastTransport) CloseIdleConnections() {
	t.mu.Lock()
	if t.reaper != nil {
		t.reaper.Stop()
		t.reaper = nil
	}
	for k, list := range t.idle {
		for _, c := range list {
			c.Close()
		}
		delete(t.idle, k)
	}
	t.mu.Unlock()
	t.slow.CloseIdleConnections()
}

// ErrInvalidHeader refuses to send a request whose header field name or
// value HTTP/1 cannot carry. Both upstream paths apply it before writing a
// byte (checkHeaders): the fast writer and net/http's Transport.
var ErrInvalidHeader = errors.New("invalid header field for the upstream request")

// checkHeaders applies net/http's Transport rules to an outbound request:
// every header name a token, every value free of CR, LF, NUL and other
// control characters, the Host a valid host. Values derived from client
// input are refused by the stage that derived them (the client gets a 4xx
// there); a failure here is a gateway fault, never silently repaired.
func checkHeaders(req *http.Request) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !pipeline.ValidHeaderValue(host) || strings.ContainsAny(host, " /?#@") {
		return fmt.Errorf("%w: Host %q", ErrInvalidHeader, host)
	}
	for k, vs := range req.Header {
		if !pipeline.ValidHeaderName(k) {
			return fmt.Errorf("%w: name %q", ErrInvalidHeader, k)
		}
		for _, v := range vs {
			if !pipeline.ValidHeaderValue(v) {
				return fmt.Errorf("%w: value of %s", ErrInvalidHeader, k)
			}
		}
	}
	return nil
}

// writeRequest serialises req as HTTP/1.1, as net/http's Request.write
// does for a bodiless request: Host from req.Host or the URL, no default
// User-Agent. The caller has passed req through checkHeaders.
func writeRequest(w *bufio.Writer, req *http.Request) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	if ua := req.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		w.WriteString("User-Agent: ")
		w.WriteString(strings.TrimSpace(ua[0]))
		w.WriteString("\r\n")
	}
	for k, vs := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(strings.TrimSpace(v))
			w.WriteString("\r\n")
		}
	}
	w.WriteString("\r\n")
	return w.Flush()
}
