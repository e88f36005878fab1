package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
)

// ConnInfo is what the gateway knows about the connection a request came
// on. It is placed in every request context by the server (one lookup per
// request, one allocation per connection).
type ConnInfo struct {
	// Listener is the name of the accepting listener.
	Listener string
	// TLS is the connection's TLS state; nil on plaintext listeners.
	TLS *tls.ConnectionState

	framing *framing // nil for HTTP/2
	served  int      // HTTP/1 requests begun on this connection
}

// Request is the server's verdict on one request's framing.
type Request struct {
	// Problem is why the request's framing is refused ("" if fine).
	Problem string
	// AbsoluteHost is the Host header sent with an absolute-form request
	// target (Go keeps only the target's authority in r.Host).
	AbsoluteHost string
	// Absolute reports whether the target was in absolute form.
	Absolute bool
}

// Begin is called once per HTTP/1 request, in order, by the handler. It
// returns the framing verdict for that request.
func (ci *ConnInfo) Begin() Request {
	if ci == nil || ci.framing == nil {
		return Request{}
	}
	idx := ci.served
	ci.served++
	v := Request{Problem: ci.framing.verdict(idx)}
	if h, ok := ci.framing.hostHeader(idx); ok {
		v.Absolute, v.AbsoluteHost = true, h
	}
	return v
}

type connInfoKey struct{}

// ConnInfoFrom returns the connection info of a request context.
func ConnInfoFrom(ctx context.Context) *ConnInfo {
	ci, _ := ctx.Value(connInfoKey{}).(*ConnInfo)
	return ci
}

// inspectedConn feeds every byte the HTTP/1 server reads to the framing
// checker.
type inspectedConn struct {
	net.Conn
	info    *ConnInfo
	release func()
	once    sync.Once
}

func (c *inspectedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.info.framing.feed(p[:n])
	}
	return n, err
}

// CloseWrite half-closes the connection when the underlying one can, so
// that net/http can let a client read a final error response (400 after a
// framing attack) before the connection is torn down, instead of a reset.
func (c *inspectedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *inspectedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// limiter bounds concurrent connections. Accept blocks while the limit is
// reached, so excess connections wait in the kernel backlog instead of
// being accepted and starved.
type limiter struct {
	sem   chan struct{}
	mu    sync.Mutex
	live  map[net.Conn]netip.Addr
	perIP map[netip.Addr]int
	maxIP int
}

func newLimiter(n, perIP int) *limiter {
	return &limiter{sem: make(chan struct{}, n), live: map[net.Conn]netip.Addr{}, perIP: map[netip.Addr]int{}, maxIP: perIP}
}

func peerOf(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

func (l *limiter) acquire(done <-chan struct{}) bool {
	select {
	case l.sem <- struct{}{}:
		return true
	case <-done:
		return false
	}
}

// track records an accepted connection; it reports false (and frees the
// slot) when the peer already holds its maximum of connections.
func (l *limiter) track(c net.Conn) bool {
	ip := peerOf(c)
	l.mu.Lock()
	if l.maxIP > 0 && l.perIP[ip] >= l.maxIP {
		l.mu.Unlock()
		<-l.sem
		return false
	}
	l.live[c] = ip
	l.perIP[ip]++
	l.mu.Unlock()
	return true
}

// retrack moves c's slot to key.
func (l *limiter) retrack(c, key net.Conn) {
	l.mu.Lock()
	if ip, ok := l.live[c]; ok {
		delete(l.live, c)
		l.live[key] = ip
	}
	l.mu.Unlock()
}

// release frees c's slot; calling it again for c is a no-op.
func (l *limiter) release(c net.Conn) {
	l.mu.Lock()
	ip, ok := l.live[c]
	if ok {
		delete(l.live, c)
		if l.perIP[ip]--; l.perIP[ip] <= 0 {
			delete(l.perIP, ip)
		}
	}
	l.mu.Unlock()
	if ok {
		<-l.sem
	}
}

func (l *limiter) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.live)
}
