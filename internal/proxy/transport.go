package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
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
	pinIdentity(c, u.TLS.SPIFFEID, u.TLS.SPKISHA256)
	return c, nil
}

// ErrIdentity is a service whose certificate is valid but not the
// identity the upstream pins (spiffe_id, spki_sha256): answered 502
// upstream.identity; the request is never sent.
var ErrIdentity = errors.New("upstream identity mismatch")

// pinIdentity adds the identity checks to c. With a SPIFFE ID the chain
// is verified here against the same roots, without the host name (an
// SVID names a workload), and the leaf must carry the ID as its URI SAN;
// SPKI pins are checked after the usual verification.
func pinIdentity(c *tls.Config, spiffeID string, pins []string) {
	if spiffeID == "" && len(pins) == 0 {
		return
	}
	want := map[string]bool{}
	for _, p := range pins {
		want[p] = true
	}
	roots := c.RootCAs
	if spiffeID != "" {
		c.InsecureSkipVerify = true // replaced by the verification below, which keeps the chain check
	}
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%w: no certificate", ErrIdentity)
		}
		leaf := cs.PeerCertificates[0]
		if spiffeID != "" {
			if err := verifyChain(leaf, cs.PeerCertificates[1:], roots); err != nil {
				return err
			}
			if !hasURI(leaf, spiffeID) {
				return fmt.Errorf("%w: the certificate is not %s", ErrIdentity, spiffeID)
			}
		}
		if len(want) > 0 {
			sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
			if !want[base64.StdEncoding.EncodeToString(sum[:])] {
				return fmt.Errorf("%w: the certificate's key is not pinned", ErrIdentity)
			}
		}
		return nil
	}
}

// verifyChain checks a leaf against the roots (nil: the system pool) as
// a server certificate, with the intermediates the peer sent.
func verifyChain(leaf *x509.Certificate, rest []*x509.Certificate, roots *x509.CertPool) error {
	inter := x509.NewCertPool()
	for _, c := range rest {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

func hasURI(c *x509.Certificate, id string) bool {
	for _, u := range c.URIs {
		if u.String() == id {
			return true
		}
	}
	return false
}
