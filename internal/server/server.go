// Package server runs listeners: TCP and TLS (1.2+, ECDHE+AEAD only,
// HTTP/2), server limits, a connection cap, strict HTTP/1 framing checks,
// certificate reload and graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pki"
)

// CipherSuites are the TLS 1.2 suites offered: ECDHE key exchange with
// AEAD ciphers only. Go's defaults still include CBC suites. (TLS 1.3
// suites are not configurable and all AEAD.)
var CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Certs holds a listener's certificates: a default one (nil: none) and
// others chosen by server name. Reloads swap the set atomically, so
// rotation needs no restart and drops no connection.
type Certs struct {
	cur     atomic.Pointer[CertSet]
	stapler *stapler // nil: no OCSP stapling (the admin listener)
}

// CertSet is one generation of a listener's certificates.
type CertSet struct {
	Default *tls.Certificate
	byName  map[string]*tls.Certificate // exact DNS names and "*.example.com"
	issuer  Issuer                      // ACME: nil without
}

// Issuer supplies the certificates of the names it manages (ACME), and
// answers tls-alpn-01 validation handshakes.
type Issuer interface {
	Manages(name string) bool
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// ACMEALPN is the protocol of ACME tls-alpn-01 validation handshakes
// (RFC 8737); such a connection ends after its handshake.
const ACMEALPN = "acme-tls/1"

// WithIssuer returns a copy of s whose issuer's names come from it.
func (s *CertSet) WithIssuer(i Issuer) *CertSet {
	c := *s
	c.issuer = i
	return &c
}

// isValidation reports a tls-alpn-01 validation handshake: it offers
// that protocol alone.
func isValidation(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ACMEALPN
}

// NewCertSet builds a set: def (nil: none) for clients that name no known
// host, and each of byName for the DNS names in its leaf.
func NewCertSet(def *tls.Certificate, byName []*tls.Certificate) *CertSet {
	s := &CertSet{Default: def, byName: map[string]*tls.Certificate{}}
	for _, c := range byName {
		if c.Leaf == nil {
			continue
		}
		for _, n := range c.Leaf.DNSNames {
			n = strings.ToLower(n)
			if _, taken := s.byName[n]; !taken {
				s.byName[n] = c
			}
		}
	}
	return s
}

// ErrUnknownServerName refuses a handshake for a name no certificate of
// the listener covers, when it has no default certificate.
var ErrUnknownServerName = errors.New("no certificate for this server name")

// pick chooses the certificate for a handshake: the issuer's for a name
// it manages, then an exact name, then a wildcard one label up, then the
// default.
func (s *CertSet) pick(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s.issuer != nil && s.issuer.Manages(hello.ServerName) {
		return s.issuer.GetCertificate(hello)
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if c := s.byName[name]; c != nil && name != "" {
		return c, nil
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c := s.byName["*"+name[i:]]; c != nil {
			return c, nil
		}
	}
	if s.Default != nil {
		return s.Default, nil
	}
	return nil, ErrUnknownServerName
}

// Load reads a certificate and key and makes them the only (default)
// certificate.
func (c *Certs) Load(certFile, keyFile string) error {
	cert, err := LoadCertificate(certFile, keyFile)
	if err != nil {
		return err
	}
	c.cur.Store(NewCertSet(cert, nil))
	return nil
}

// Set makes a set current (and staples OCSP responses to it in the
// background).
func (c *Certs) Set(s *CertSet) {
	c.cur.Store(s)
	if c.stapler != nil {
		go c.stapler.run(c, s)
	}
}

// LoadCertificate reads a PEM certificate chain and key.
func LoadCertificate(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s: %w", certFile, err)
	}
	return &cert, nil
}

// LoadCertSet reads a listener's certificates.
func LoadCertSet(t *config.ListenerTLS) (*CertSet, error) {
	var def *tls.Certificate
	if t.CertFile != "" {
		var err error
		if def, err = LoadCertificate(t.CertFile, t.KeyFile); err != nil {
			return nil, err
		}
	}
	var more []*tls.Certificate
	for _, f := range t.Certificates {
		c, err := LoadCertificate(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, err
		}
		more = append(more, c)
	}
	if def != nil {
		more = append([]*tls.Certificate{def}, more...) // its names are names too
	}
	return NewCertSet(def, more), nil
}

// TLSConfig returns the server TLS configuration of a listener. A
// tls-alpn-01 validation handshake gets a configuration of its own
// (offering only that protocol) while the listener has an issuer;
// otherwise the protocol is never offered.
func TLSConfig(certs *Certs) *tls.Config {
	base := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: CipherSuites,
		NextProtos:   []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return certs.cur.Load().pick(hello)
		},
	}
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		issuer := certs.cur.Load().issuer
		if issuer == nil || !isValidation(hello) {
			return nil, nil
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: CipherSuites,
			NextProtos: []string{ACMEALPN}, GetCertificate: issuer.GetCertificate}, nil
	}
	return base
}

// Listener is one running listener.
type Listener struct {
	// Name is the listener's config name.
	Name  string
	srv   *http.Server
	acc   *acceptor
	lim   *limiter
	Certs *Certs
	// serving is set once Serve runs; served is closed when it returns.
	serving atomic.Bool
	served  chan struct{}
	// fresh are the connections whose first request has not been read
	// yet (net/http drops such a request once shutdown begins).
	fresh      sync.Map // net.Conn → struct{}
	freshCount atomic.Int64
}

// trackFresh counts connections between their accept and their first
// request.
func (l *Listener) trackFresh(c net.Conn, st http.ConnState) {
	if st == http.StateNew {
		l.fresh.Store(c, struct{}{})
		l.freshCount.Add(1)
		l.acc.handedOver.Add(-1) // counted fresh first: never a moment uncounted
	} else if _, ok := l.fresh.LoadAndDelete(c); ok {
		l.freshCount.Add(-1)
	}
}

// Options are what Listen needs besides the listener's config.
type Options struct {
	// Base is the context of every request: cancelling it (with a
	// cause) ends the requests still in flight, which is how a drain
	// that ran out of time stops them with an answer rather than a cut
	// connection.
	Base context.Context
	// Certs is a TLS listener's first certificate set (as compiled into
	// the plan; nil: read from the config).
	Certs *CertSet
	// Socket is an already listening socket to serve on (handed over by
	// a process being replaced); nil: bind the config's address.
	Socket  net.Listener
	Handler http.Handler
	Log     *slog.Logger
}

// Listen binds a listener and prepares its server; Serve starts it. The
// handler sees a *ConnInfo in every request context (ConnInfoFrom).
func Listen(cfg config.Listener, o Options) (*Listener, error) {
	var tlsConf *tls.Config
	var certs *Certs
	if cfg.TLS != nil {
		var err error
		if tlsConf, certs, err = listenerTLS(cfg, o); err != nil {
			return nil, err
		}
	}
	ln := o.Socket
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Address); err != nil {
			return nil, fmt.Errorf("listener %s: %w", cfg.Name, err)
		}
	}
	lim := newLimiter(cfg.Limits.MaxConnections, cfg.Limits.MaxConnectionsPerIP)
	acc := newAcceptor(ln, cfg.Name, lim, tlsConf, cfg.Limits.ReadHeaderTimeout.D())
	if tlsConf != nil {
		rotateTickets(tlsConf, TicketRotation, acc.done)
	}
	l := &Listener{Name: cfg.Name, acc: acc, lim: lim, Certs: certs, served: make(chan struct{})}
	l.srv = &http.Server{
		Handler: o.Handler,
		// "OPTIONS *" reaches the gateway (which refuses it) instead of
		// being answered by net/http.
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            cfg.Limits.ReadHeaderTimeout.D(),
		ReadTimeout:                  cfg.Limits.ReadTimeout.D(),
		WriteTimeout:                 cfg.Limits.WriteTimeout.D(),
		IdleTimeout:                  cfg.Limits.IdleTimeout.D(),
		MaxHeaderBytes:               int(cfg.Limits.MaxHeaderBytes),
		TLSConfig:                    tlsConf,
		ErrorLog:                     log.New(logWriter{o.Log}, "", 0),
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:      250,
			MaxDecoderHeaderTableSize: 4096,
			MaxEncoderHeaderTableSize: 4096,
			MaxReadFrameSize:          1 << 20,
		},
		BaseContext: func(net.Listener) context.Context { return o.Base },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			switch cc := c.(type) {
			case *inspectedConn:
				return context.WithValue(ctx, connInfoKey{}, cc.info)
			case *tls.Conn:
				st := cc.ConnectionState()
				return context.WithValue(ctx, connInfoKey{}, &ConnInfo{Listener: cfg.Name, TLS: &st})
			}
			return context.WithValue(ctx, connInfoKey{}, &ConnInfo{Listener: cfg.Name})
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			l.trackFresh(c, st)
			if st == http.StateClosed {
				lim.release(c)
			}
		},
	}
	// HTTP/1 and HTTP/2 over TLS only: unencrypted HTTP/2 (h2c) stays off.
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(tlsConf != nil)
	l.srv.Protocols = &protos
	return l, nil
}

// listenerTLS is a TLS listener's configuration and certificates.
func listenerTLS(cfg config.Listener, o Options) (*tls.Config, *Certs, error) {
	set := o.Certs
	if set == nil {
		var err error
		if set, err = LoadCertSet(cfg.TLS); err != nil {
			return nil, nil, err
		}
	}
	certs := &Certs{stapler: &stapler{client: &http.Client{}, log: o.Log, done: o.Base.Done(), now: time.Now}}
	certs.Set(set)
	conf := TLSConfig(certs)
	if f := cfg.TLS.ClientCAFile; f != "" {
		pool, err := pki.CAPool(f)
		if err != nil {
			return nil, nil, fmt.Errorf("listener %s: client_ca_file: %w", cfg.Name, err)
		}
		// Verified when presented; routes decide whether one is required.
		// Only this bundle is trusted, never the system pool.
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		conf.ClientCAs = pool
	}
	return conf, certs, nil
}

// Addr is the bound address (useful with port 0).
func (l *Listener) Addr() net.Addr { return l.acc.Addr() }

// Serve serves until Shutdown; it returns nil after a clean shutdown.
func (l *Listener) Serve() error {
	l.serving.Store(true)
	defer close(l.served)
	err := l.srv.Serve(l.acc)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

// Shutdown stops accepting, waits for in-flight requests until ctx ends,
// then closes what is left.
func (l *Listener) Shutdown(ctx context.Context) error {
	err := l.Drain(ctx)
	if err != nil {
		l.Close()
	}
	return err
}

// Drain stops accepting and waits until every connection is idle and
// closed, or ctx ends (its error then). It may be called again, with a
// new deadline, after the caller has made the requests in flight end.
func (l *Listener) Drain(ctx context.Context) error {
	// Stop accepting first, and let every connection accepted so far
	// reach its first request: net/http's shutdown closes a connection
	// whose request it reads after shutdown began, unanswered (a client
	// sees EOF), so shutdown waits until none is in that state.
	l.acc.stopAccepting()
	if l.serving.Load() {
		l.awaitFirstRequests(ctx)
	}
	err := l.srv.Shutdown(ctx)
	_ = l.acc.Close()
	if err != nil || !l.serving.Load() {
		return err
	}
	// Connections whose TLS handshake was under way at the close are
	// served still (the acceptor returns them until none is left, then
	// Serve returns); wait for them too.
	select {
	case <-l.served:
	case <-ctx.Done():
		return ctx.Err()
	}
	return l.srv.Shutdown(ctx)
}

// awaitFirstRequests waits until no connection is in its TLS handshake
// or before its first request, or ctx ends.
func (l *Listener) awaitFirstRequests(ctx context.Context) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for l.acc.handshaking.Load() > 0 || l.acc.handedOver.Load() > 0 || l.freshCount.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Close closes every connection at once, requests in flight included.
func (l *Listener) Close() { _ = l.srv.Close() }

// HandshakeFailures are the TLS handshakes that failed so far, by reason
// (Handshake*).
func (l *Listener) HandshakeFailures() map[string]uint64 { return l.acc.failed.snapshot() }

// File returns a duplicate of the listening socket, to hand over to a
// successor process.
func (l *Listener) File() (*os.File, error) { return SocketFile(l.acc.Listener) }

// SocketFile duplicates a TCP listening socket's descriptor.
func SocketFile(ln net.Listener) (*os.File, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("%s: not a TCP listener", ln.Addr())
	}
	return tl.File()
}

// Connections is the number of open connections.
func (l *Listener) Connections() int { return l.lim.count() }

type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Debug("http server", "msg", string(p))
	return len(p), nil
}

// AdminTLSConfig is the admin listener's TLS configuration: its
// certificate and, with clientCAFile, required client certificates from
// those CAs.
func AdminTLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	certs := &Certs{}
	if err := certs.Load(certFile, keyFile); err != nil {
		return nil, err
	}
	c := TLSConfig(certs)
	c.NextProtos = []string{"http/1.1"}
	if clientCAFile != "" {
		pool, err := pki.CAPool(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("admin client_ca_file: %w", err)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}
