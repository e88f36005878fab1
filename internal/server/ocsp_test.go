package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/testpki"
)

// ocspListener serves a certificate that names responder as its OCSP
// server (chain: leaf, CA).
func ocspListener(t *testing.T, ca *testpki.CA, responder string) *Listener {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "api.rampart.test"},
		DNSNames: []string{"api.rampart.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, OCSPServer: []string{responder}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kder, _ := x509.MarshalECPrivateKey(key)
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})...)
	os.WriteFile(filepath.Join(dir, "c.pem"), chain, 0o600)
	os.WriteFile(filepath.Join(dir, "k.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cfg := config.Listener{Name: "public", Address: "127.0.0.1:0",
		TLS:    &config.ListenerTLS{CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem")},
		Limits: config.ListenerLimits{ReadHeaderTimeout: config.Duration(time.Second), MaxHeaderBytes: 1 << 16, MaxConnections: 100}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l, err := Listen(cfg, Options{Base: ctx, Handler: http.NotFoundHandler(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	go l.Serve()
	t.Cleanup(l.Close)
	return l
}

// responder answers OCSP requests for ca's certificates with status.
func responder(t *testing.T, ca *testpki.CA, status int, asked *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, "bad request", 400)
			return
		}
		resp, err := ocsp.CreateResponse(ca.Cert, ca.Cert, ocsp.Response{Status: status, SerialNumber: req.SerialNumber,
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour), RevokedAt: time.Now().Add(-time.Minute)}, crypto.Signer(ca.Key))
		if err != nil {
			t.Error(err)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func stapled(t *testing.T, l *Listener, ca *testpki.CA) []byte {
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{ServerName: "api.rampart.test", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().OCSPResponse
}

// A good answer is stapled to handshakes; a revoked one is not (and the
// certificate is still served: refusing to serve is the client's call).
func TestOCSPStapling(t *testing.T) {
	ca := testpki.NewCA(t, "ocsp ca")
	var asked atomic.Int64
	l := ocspListener(t, ca, responder(t, ca, ocsp.Good, &asked).URL)
	var raw []byte
	for deadline := time.Now().Add(5 * time.Second); raw == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		raw = stapled(t, l, ca)
	}
	if raw == nil {
		t.Fatal("no OCSP response stapled")
	}
	resp, err := ocsp.ParseResponse(raw, ca.Cert)
	if err != nil || resp.Status != ocsp.Good {
		t.Fatalf("stapled: %v %v", resp, err)
	}

	var askedRevoked atomic.Int64
	revoked := ocspListener(t, ca, responder(t, ca, ocsp.Revoked, &askedRevoked).URL)
	for deadline := time.Now().Add(5 * time.Second); askedRevoked.Load() == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	time.Sleep(100 * time.Millisecond)
	if askedRevoked.Load() == 0 || stapled(t, revoked, ca) != nil {
		t.Fatalf("revoked: asked %d times, stapled anyway", askedRevoked.Load())
	}
}
