package acme

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/server"
	"github.com/rampart-gw/rampart/internal/store"
	"github.com/rampart-gw/rampart/internal/testacme"
)

// site is a TLS listener answering with a manager's certificates (and
// tls-alpn-01), and a plain listener answering http-01, as the gateway's
// listeners do.
type site struct {
	tlsLn, httpLn net.Listener
	m             atomic.Pointer[Manager]
}

func newSite(t *testing.T) *site {
	s := &site{}
	var err error
	if s.tlsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if s.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1", server.ACMEALPN},
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return s.m.Load().GetCertificate(h) }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }), TLSConfig: conf}
	go srv.Serve(tls.NewListener(s.tlsLn, conf))
	plain := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.m.Load().HTTPChallenge(w, r) {
			http.NotFound(w, r)
		}
	})}
	go plain.Serve(s.httpLn)
	t.Cleanup(func() { srv.Close(); plain.Close() })
	return s
}

// testLog shows certmagic's log with RAMPART_ACME_DEBUG=1.
func testLog(t *testing.T) *slog.Logger {
	if os.Getenv("RAMPART_ACME_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func port(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }

type events struct {
	mu  sync.Mutex
	evs []pipeline.Event
}

func (e *events) Emit(ev pipeline.Event) { e.mu.Lock(); e.evs = append(e.evs, ev); e.mu.Unlock() }

func (e *events) count(code string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ev.Code == code {
			n++
		}
	}
	return n
}

func (e *events) last(code string) pipeline.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.evs) - 1; i >= 0; i-- {
		if e.evs[i].Code == code {
			return e.evs[i]
		}
	}
	return pipeline.Event{}
}

func newStore(t *testing.T) *store.Store {
	k := make([]byte, store.MasterKeyBytes)
	rand.Read(k)
	s, err := store.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func section(p *testacme.Pebble, dir string, challenges ...string) *config.ACME {
	return &config.ACME{Email: "ops@rampart.test", CA: p.Directory, CARootFile: p.RootFile,
		Challenges: challenges, KeyType: "p256", Storage: "file", StorageDir: dir}
}

func (s *site) manage(t *testing.T, c *config.ACME, st *store.Store, ev *events, renew time.Duration, names ...string) *Manager {
	m, err := New(c, Options{Listener: "public", Names: names, TLSAddr: s.tlsLn.Addr().String(),
		HTTPAddr: s.httpLn.Addr().String(), Store: st,
		Deps: pipeline.Deps{Now: time.Now, Events: ev, CertRenewCheck: renew, Log: testLog(t)}})
	if err != nil {
		t.Fatal(err)
	}
	s.m.Store(m)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// handshake connects for name, trusting only root; it returns the leaf.
func (s *site) handshake(name string, root []byte) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.tlsLn.Addr().String(),
		&tls.Config{ServerName: name, RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func waitCert(t *testing.T, s *site, name string, root []byte, within time.Duration) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		leaf, err := s.handshake(name, root)
		if err == nil {
			return leaf
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate for %s within %s: %v", name, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Issuance by tls-alpn-01, storage encrypted at rest, and a restart that
// serves the stored certificate without a new order.
func TestObtainStoreEncryptedAndReuseAfterRestart(t *testing.T) {
	s := newSite(t)
	p := testacme.Start(t, testacme.Options{HTTPPort: port(s.httpLn), TLSPort: port(s.tlsLn)})
	dir, st, ev := t.TempDir(), newStore(t), &events{}
	m := s.manage(t, section(p, dir, config.ChallengeTLSALPN01), st, ev, 0, "api.rampart.test")
	leaf := waitCert(t, s, "api.rampart.test", p.RootPEM(), 30*time.Second)
	if leaf.DNSNames[0] != "api.rampart.test" || ev.count("tls.certificate_obtained") != 1 {
		t.Fatalf("leaf %v, events %+v", leaf.DNSNames, ev.evs)
	}
	// Nothing stored is readable without the master key.
	var files int
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(path, "locks") {
			return err
		}
		b, _ := os.ReadFile(path)
		files++
		if bytes.Contains(b, []byte("BEGIN")) || bytes.Contains(b, []byte("api.rampart.test")) || bytes.Contains(b, []byte("ops@rampart.test")) {
			t.Errorf("%s is stored in the clear", path)
		}
		return nil
	})
	if files < 3 {
		t.Fatalf("only %d files stored", files)
	}
	// A restart (a new manager over the same storage) asks the CA nothing.
	orders := p.Orders()
	m.Stop()
	m2 := s.manage(t, section(p, dir, config.ChallengeTLSALPN01), st, &events{}, 0, "api.rampart.test")
	again := waitCert(t, s, "api.rampart.test", p.RootPEM(), 10*time.Second)
	if !again.Equal(leaf) || p.Orders() != orders {
		t.Fatalf("restart: same certificate %v, orders %d → %d", again.Equal(leaf), orders, p.Orders())
	}
	// Another master key cannot read it: nothing is served from a file
	// that does not authenticate, and nothing replaces it silently (the
	// log names the file and says which key is missing).
	m2.Stop()
	s.manage(t, section(p, dir, config.ChallengeTLSALPN01), newStore(t), &events{}, 0, "api.rampart.test")
	time.Sleep(2 * time.Second)
	if _, err := s.handshake("api.rampart.test", p.RootPEM()); err == nil || p.Orders() != orders {
		t.Fatalf("under another master key: handshake error %v, orders %d → %d", err, orders, p.Orders())
	}
}

// Issuance by http-01 on the plain listener.
func TestObtainHTTP01(t *testing.T) {
	s := newSite(t)
	p := testacme.Start(t, testacme.Options{HTTPPort: port(s.httpLn), TLSPort: port(s.tlsLn)})
	s.manage(t, section(p, t.TempDir(), config.ChallengeHTTP01), newStore(t), &events{}, 0, "www.rampart.test")
	leaf := waitCert(t, s, "www.rampart.test", p.RootPEM(), 30*time.Second)
	if leaf.DNSNames[0] != "www.rampart.test" {
		t.Fatal(leaf.DNSNames)
	}
	// A name that is not managed gets no certificate.
	if _, err := s.handshake("other.rampart.test", p.RootPEM()); err == nil {
		t.Fatal("handshake for an unmanaged name succeeded")
	}
}

// A short-lived certificate is renewed under continuous handshakes with
// none failing; then a failing challenge is reported and the current
// certificate keeps serving.
func TestRenewUnderTrafficThenFailingChallenge(t *testing.T) {
	s := newSite(t)
	p := testacme.Start(t, testacme.Options{HTTPPort: port(s.httpLn), TLSPort: port(s.tlsLn), Validity: 40})
	ev := &events{}
	m := s.manage(t, section(p, t.TempDir(), config.ChallengeTLSALPN01), newStore(t), ev, 500*time.Millisecond, "pay.rampart.test")
	first := waitCert(t, s, "pay.rampart.test", p.RootPEM(), 30*time.Second)

	var ok, failed atomic.Int64
	var lastErr atomic.Value
	serials := sync.Map{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				leaf, err := s.handshake("pay.rampart.test", p.RootPEM())
				if err != nil {
					failed.Add(1)
					lastErr.Store(err)
					continue
				}
				ok.Add(1)
				serials.Store(leaf.SerialNumber.String(), true)
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second) // renewal starts with a third of the 40 s left
	for ev.count("tls.certificate_obtained") < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // handshakes on the new certificate
	close(stop)
	wg.Wait()
	renewed := s.currentLeaf(t, p)
	if renewed.Equal(first) || failed.Load() != 0 {
		t.Fatalf("renewed %v; %d handshakes, %d failed (last: %v)", !renewed.Equal(first), ok.Load(), failed.Load(), lastErr.Load())
	}
	t.Logf("renewed under %d handshakes, none failed", ok.Load())

	// The CA can no longer validate the name: the renewal fails, is
	// reported, and the current certificate keeps serving meanwhile.
	p.Fail("pay.rampart.test", true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Renew(ctx, "pay.rampart.test"); err == nil {
		t.Fatal("a renewal the CA could not validate succeeded")
	}
	e := ev.last("tls.acme_failed")
	if e.Code == "" || e.Host != "pay.rampart.test" || !strings.Contains(e.Reason, "pay.rampart.test") {
		t.Fatalf("no failure event: %+v", ev.evs)
	}
	t.Logf("failure reported: %s", e.Reason)
	if leaf, err := s.handshake("pay.rampart.test", p.RootPEM()); err != nil || leaf.NotAfter.Before(time.Now()) {
		t.Fatalf("after the failed renewal: %v", err)
	}
}

func (s *site) currentLeaf(t *testing.T, p *testacme.Pebble) *x509.Certificate {
	leaf, err := s.handshake("pay.rampart.test", p.RootPEM())
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// On-demand issuance is for names matching a route host only.
func TestOnDemandOnlyForConfiguredHosts(t *testing.T) {
	s := newSite(t)
	p := testacme.Start(t, testacme.Options{HTTPPort: port(s.httpLn), TLSPort: port(s.tlsLn)})
	c := section(p, t.TempDir(), config.ChallengeTLSALPN01)
	c.OnDemand = true
	m, err := New(c, Options{Listener: "public", Hosts: []string{"*.tenants.rampart.test", "api.rampart.test"},
		TLSAddr: s.tlsLn.Addr().String(), Store: newStore(t), Deps: pipeline.Deps{Now: time.Now, Events: &events{}}})
	if err != nil {
		t.Fatal(err)
	}
	s.m.Store(m)
	m.Start()
	t.Cleanup(m.Stop)
	for _, name := range []string{"internal.corp.rampart.test", "a.b.tenants.rampart.test", "tenants.rampart.test", "localhost"} {
		if _, err := s.handshake(name, p.RootPEM()); err == nil {
			t.Errorf("on-demand certificate issued for %q", name)
		}
	}
	if p.Orders() != 0 {
		t.Fatalf("%d orders for names outside the hosts", p.Orders())
	}
	leaf := waitCert(t, s, "acme.tenants.rampart.test", p.RootPEM(), 30*time.Second)
	if leaf.DNSNames[0] != "acme.tenants.rampart.test" || !m.Manages("acme.tenants.rampart.test") || m.Manages("evil.rampart.test") {
		t.Fatal(leaf.DNSNames)
	}
}
