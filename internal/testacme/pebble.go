// Package testacme runs Let's Encrypt's Pebble ACME server in the test
// process, with a DNS server that sends every name to 127.0.0.1 (or
// fails the names a test chooses), for end-to-end certificate tests.
package testacme

import (
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// Options shape the CA.
type Options struct {
	// HTTPPort and TLSPort are where the validation authority connects
	// for http-01 and tls-alpn-01 (the gateway's listeners).
	HTTPPort, TLSPort int
	// Validity of issued certificates in seconds (0: Pebble's 90 days).
	Validity uint64
	// Verbose sends Pebble's log to the test log.
	Verbose bool
	// OCSP is put in issued certificates as their OCSP responder (none
	// answers there).
	OCSP string
}

// Pebble is a running ACME CA.
type Pebble struct {
	// Directory is the ACME directory URL; RootFile the PEM bundle that
	// trusts the directory's own TLS certificate (for ca_root_file).
	Directory, RootFile string
	ca                  *ca.CAImpl
	orders              atomic.Int64
	mu                  sync.Mutex
	failing             map[string]bool
}

// Start runs Pebble until the test ends.
func Start(t testing.TB, o Options) *Pebble {
	t.Helper()
	p := &Pebble{failing: map[string]bool{}}
	logger := log.New(io.Discard, "", 0)
	if o.Verbose {
		logger = log.New(testWriter{t}, "pebble ", 0)
	}
	resolver := p.startDNS(t)
	// The validation authority reads this once, at construction: no
	// random sleeps before validating.
	os.Setenv("PEBBLE_VA_NOSLEEP", "1")
	// Every order validates anew (Pebble otherwise reuses a valid
	// authorization half the time), so that renewals test challenges.
	os.Setenv("PEBBLE_AUTHZREUSE", "0")
	store := db.NewMemoryStore()
	p.ca = ca.New(logger, store, o.OCSP, "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "test", ValidityPeriod: o.Validity},
	})
	v := va.New(logger, o.HTTPPort, o.TLSPort, false, resolver, store)
	front := wfe.New(logger, store, v, p.ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	h := front.Handler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/order-plz") {
			p.orders.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.Directory = srv.URL + wfe.DirectoryPath
	p.RootFile = filepath.Join(t.TempDir(), "pebble-directory.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p.RootFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Orders counts the certificate orders placed so far.
func (p *Pebble) Orders() int64 { return p.orders.Load() }

// RootPEM is the root that issued certificates chain to.
func (p *Pebble) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.GetRootCert(0).Cert.Raw})
}

// Fail makes the DNS answer NXDOMAIN for name (on: true), so that its
// validations fail, or resolve again (on: false).
func (p *Pebble) Fail(name string, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failing[dns.Fqdn(name)] = on
}

func (p *Pebble) startDNS(t testing.TB) string {
	// Pebble asks over TCP; the same port answers UDP too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{Listener: ln, Handler: dns.HandlerFunc(p.answer)}, {PacketConn: pc, Handler: dns.HandlerFunc(p.answer)}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return ln.Addr().String()
}

func (p *Pebble) answer(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	p.mu.Lock()
	failing := len(q.Question) > 0 && p.failing[strings.ToLower(q.Question[0].Name)]
	p.mu.Unlock()
	if failing {
		m.Rcode = dns.RcodeNameError
	} else if len(q.Question) > 0 && q.Question[0].Qtype == dns.TypeA {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
			A:   net.IPv4(127, 0, 0, 1),
		})
	}
	_ = w.WriteMsg(m)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
