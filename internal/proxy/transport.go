package proxy

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pki"
)

// newTransport builds the HTTP/1.1 transport for one upstream and one pair
// of timeouts. It never consults HTTP_PROXY and never asks for compression
// (bodies pass through as the service sent them).
func newTransport(u config.Upstream, tlsConf *tls.Config, connect, response time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	idle := u.MaxIdleConnsPerTarget
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    connect,
		ResponseHeaderTimeout:  response,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        u.Timeouts.Idle.D(),
		MaxIdleConns:           idle * len(u.Targets),
		MaxIdleConnsPerHost:    idle,
		MaxConnsPerHost:        u.MaxConnsPerTarget,
		MaxResponseHeaderBytes: 1 << 20,
		DisableCompression:     true,
		ForceAttemptHTTP2:      false,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
	}
}

// upstreamTLS builds the client TLS config for https:// targets: TLS 1.2+,
// the configured CA bundle (or the system pool), server name and client
// certificate for mTLS.
func upstreamTLS(u config.Upstream) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.TLS.ServerName}
	if u.TLS.CAFile != "" {
		pool, err := pki.CAPool(u.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		c.RootCAs = pool
	}
	if u.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(u.TLS.CertFile, u.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
