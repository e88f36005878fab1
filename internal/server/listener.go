package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
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
	// handshaking counts connections accepted whose handshake has not
	// ended: when the listener closes, each is still served (Accept
	// returns it) rather than cut after its handshake.
	handshaking atomic.Int64
	// handedOver counts connections given to the server (or about to be)
	// that it has not yet seen as new (http.StateNew): with handshaking
	// and the listener's fresh count, no accepted connection is ever
	// uncounted while a drain waits for first requests.
	handedOver atomic.Int64
	// abandon is closed once nothing accepts any more (the server
	// stopped): a handshake finishing then closes its connection.
	abandon     chan struct{}
	abandonOnce sync.Once
	// stopped is closed by StopAccepting: the socket is closed here (a
	// successor may accept from it), and Accept waits for Close without
	// failing.
	stopped  chan struct{}
	stopOnce sync.Once
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
		abandon:   make(chan struct{}),
		stopped:   make(chan struct{}),
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
		return a.acceptHandshaking()
	}
}

// acceptHandshaking returns, after Close, the connections whose handshake
// was under way: a client whose TCP connection was accepted gets its
// answer. It waits at most the handshake limit.
func (a *acceptor) acceptHandshaking() (net.Conn, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case c := <-a.ready:
			return c, nil
		case <-tick.C:
			if a.handshaking.Load() == 0 {
				select {
				case c := <-a.ready:
					return c, nil
				default:
				}
				a.abandonOnce.Do(func() { close(a.abandon) })
				return nil, net.ErrClosed
			}
		}
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
			if a.isStopped() {
				<-a.done // until Close: the server must not see an error
				return nil, net.ErrClosed
			}
			return nil, err
		}
		if !a.lim.track(c) {
			_ = c.Close() // this peer holds its maximum of connections
			continue
		}
		info := &ConnInfo{Listener: a.name, framing: newFraming()}
		a.handedOver.Add(1)
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
		// Counted from before the accept: a connection the kernel hands
		// over as the listener closes is still served (acceptHandshaking).
		a.handshaking.Add(1)
		c, err := a.Listener.Accept()
		if err != nil {
			a.handshaking.Add(-1)
			<-a.lim.sem
			if a.isStopped() {
				return
			}
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
			a.handshaking.Add(-1)
			_ = c.Close()
			continue
		}
		go a.finishTLS(c)
	}
}

func (a *acceptor) finishTLS(raw net.Conn) {
	defer a.handshaking.Add(-1)
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
	a.handedOver.Add(1) // before handshaking ends (deferred): never a moment uncounted
	select {
	case a.ready <- out:
	case <-a.abandon:
		a.handedOver.Add(-1)
		a.lim.release(raw)
		a.lim.release(tc)
		_ = tc.Close()
	}
}

// stopAccepting closes the socket (no connection is accepted here any
// more) without ending Accept.
func (a *acceptor) stopAccepting() {
	a.stopOnce.Do(func() {
		close(a.stopped)
		_ = a.Listener.Close()
	})
}

func (a *acceptor) isStopped() bool {
	select {
	case <-a.stopped:
		return true
	default:
		return false
	}
}

func (a *acceptor) Close() error {
	a.closeOnce.Do(func() { close(a.done) })
	return a.Listener.Close()
}
