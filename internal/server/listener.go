package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// acceptor wraps the TCP listener: it enforces the connection limit,
// completes TLS handshakes off the accept loop (with a deadline), and hands
// HTTP/1 connections out wrapped in the framing checker. HTTP/2 connections
// are handed out as the *tls.Conn itself, which is what net/http needs to
// start its HTTP/2 server; HTTP/2 framing is strict in Go already.
type acceptor struct {
	net.Listener
	name      string
	lim       *limiter
	tlsConf   *tls.Config
	handshake time.Duration

	ready     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	acceptErr chan error
	started   sync.Once
	failed    failures // handshakes that failed, by reason
}

func newAcceptor(inner net.Listener, name string, lim *limiter, tlsConf *tls.Config, handshake time.Duration) *acceptor {
	return &acceptor{
		Listener:  inner,
		name:      name,
		lim:       lim,
		tlsConf:   tlsConf,
		handshake: handshake,
		ready:     make(chan net.Conn),
		done:      make(chan struct{}),
		acceptErr: make(chan error, 1),
	}
}

func (a *acceptor) Accept() (net.Conn, error) {
	if a.tlsConf == nil {
		return a.acceptPlain()
	}
	a.started.Do(func() { go a.acceptLoop() })
	select {
	case c := <-a.ready:
		return c, nil
	case err := <-a.acceptErr:
		return nil, err
	case <-a.done:
		return nil, net.ErrClosed
	}
}

func (a *acceptor) acceptPlain() (net.Conn, error) {
	for {
		if !a.lim.acquire(a.done) {
			return nil, net.ErrClosed
		}
		c, err := a.Listener.Accept()
		if err != nil {
			<-a.lim.sem
			return nil, err
		}
		if !a.lim.track(c) {
			_ = c.Close() // this peer holds its maximum of connections
			continue
		}
		info := &ConnInfo{Listener: a.name, framing: newFraming()}
		return &inspectedConn{Conn: c, info: info, release: func() { a.lim.release(c) }}, nil
	}
}

// acceptLoop accepts TCP connections for a TLS listener and handshakes each
// in its own goroutine, so that a slow or silent client cannot hold up the
// accept loop.
func (a *acceptor) acceptLoop() {
	for {
		if !a.lim.acquire(a.done) {
			return
		}
		c, err := a.Listener.Accept()
		if err != nil {
			<-a.lim.sem
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			select {
			case a.acceptErr <- err:
			case <-a.done:
			}
			return
		}
		if !a.lim.track(c) {
			_ = c.Close()
			continue
		}
		go a.finishTLS(c)
	}
}

func (a *acceptor) finishTLS(raw net.Conn) {
	tc := tls.Server(raw, a.tlsConf)
	ctx, cancel := context.WithTimeout(context.Background(), a.handshake)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		a.failed.add(err)
		a.lim.release(raw)
		_ = raw.Close()
		return
	}
	var out net.Conn
	st := tc.ConnectionState()
	if st.NegotiatedProtocol == ACMEALPN {
		// A validation handshake: the certificate was the answer.
		a.lim.release(raw)
		_ = tc.Close()
		return
	}
	if st.NegotiatedProtocol == "h2" {
		// The server reports this connection's close through ConnState
		// (see Listener), keyed by the *tls.Conn.
		a.lim.retrack(raw, tc)
		out = tc
	} else {
		info := &ConnInfo{Listener: a.name, TLS: &st, framing: newFraming()}
		out = &inspectedConn{Conn: tc, info: info, release: func() { a.lim.release(raw) }}
	}
	select {
	case a.ready <- out:
	case <-a.done:
		a.lim.release(raw)
		a.lim.release(tc)
		_ = tc.Close()
	}
}

func (a *acceptor) Close() error {
	a.closeOnce.Do(func() { close(a.done) })
	return a.Listener.Close()
}
