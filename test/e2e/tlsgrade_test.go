package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/testacme"
)

// testssl grades Rampart's TLS listeners: one with certificate files (a
// certificate shaped like a public CA's: 90 days, an intermediate, a CRL
// location) and one with a certificate obtained by ACME; any finding of
// severity MEDIUM or higher fails (scripts/tls-grade.sh).
func TestTLSGrade(t *testing.T) {
	if _, err := exec.LookPath("testssl"); err != nil {
		if os.Getenv("RAMPART_REQUIRE_TESTSSL") != "" {
			t.Fatal("testssl not found (scripts/test.sh installs the testssl.sh package)")
		}
		t.Skip("testssl not installed (scripts/test.sh installs it)")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	t.Run("certificate files", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		root, chain, key := publicShapedChain(t, dir, "api.rampart.test")
		addr := freePort(t)
		cfg := filepath.Join(dir, "rampart.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
listeners:
  - name: public
    address: %s
    tls: {certificates: [{cert_file: %s, key_file: %s}]}
upstreams: [{name: app, allow_plaintext: true, targets: [{url: "%s"}]}]
routes: [{id: app, prefix: /, upstream: app, public: true}]
`, addr, chain, key, up.URL)), 0o600)
		start(t, "run", "--config", cfg, "--watch=false")
		waitListening(t, addr)
		grade(t, addr, "api.rampart.test", root)
	})
	// The grader itself can fail: a server with TLS 1.0, CBC suites and
	// no HSTS is graded down.
	t.Run("a weak server is graded down", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		root, chain, key := publicShapedChain(t, dir, "weak.rampart.test")
		cert, err := tls.LoadX509KeyPair(chain, key)
		if err != nil {
			t.Fatal(err)
		}
		weak := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
		weak.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
		weak.StartTLS()
		t.Cleanup(weak.Close)
		b, err := exec.Command("../../scripts/tls-grade.sh", weak.Listener.Addr().String(), "--name", "weak.rampart.test", "--ca", root).CombinedOutput()
		t.Logf("tls-grade of a weak server:\n%s", b)
		if err == nil || !strings.Contains(string(b), "HSTS") || !strings.Contains(string(b), "TLS1") {
			t.Fatal("a weak server passed the grade")
		}
	})
	t.Run("ACME certificate", func(t *testing.T) {
		t.Parallel()
		web, public := freePort(t), freePort(t)
		hp, _ := strconv.Atoi(strings.Split(web, ":")[1])
		tp, _ := strconv.Atoi(strings.Split(public, ":")[1])
		p := testacme.Start(t, testacme.Options{HTTPPort: hp, TLSPort: tp, OCSP: "http://ocsp.rampart.test/"})
		dir := t.TempDir()
		root := filepath.Join(dir, "pebble-root.pem")
		os.WriteFile(root, p.RootPEM(), 0o600)
		cfg := filepath.Join(dir, "rampart.yaml")
		master := filepath.Join(dir, "master.key")
		os.WriteFile(master, []byte(strings.Repeat("cd", 32)), 0o600)
		os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
state: {master_key: '${file:%s}'}
listeners:
  - {name: web, address: %s}
  - name: public
    address: %s
    tls: {acme: {email: ops@rampart.test, ca: %s, ca_root_file: %s}}
upstreams: [{name: app, allow_plaintext: true, targets: [{url: "%s"}]}]
routes: [{id: app, prefix: /, upstream: app, public: true, listeners: [public], hosts: [www.rampart.test]}]
`, master, web, public, p.Directory, p.RootFile, up.URL)), 0o600)
		start(t, "run", "--config", cfg, "--watch=false")
		waitListening(t, public)
		getWithin(t, acmeClient(p.RootPEM(), public), "https://www.rampart.test/", 30*time.Second, nil)
		grade(t, public, "www.rampart.test", root)
	})
}

func grade(t *testing.T, addr, name, root string) {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("../../scripts/tls-grade.sh", addr, "--name", name, "--ca", root, "--out", out, "--sni-only")
	b, err := cmd.CombinedOutput()
	t.Logf("tls-grade %s:\n%s", name, b)
	if err != nil {
		text, _ := os.ReadFile(filepath.Join(out, "testssl.txt"))
		t.Fatalf("graded down: %v\n%s", err, text)
	}
}

// publicShapedChain writes a root, an intermediate and a leaf for name
// shaped like a public CA's (ECDSA P-256, 90 days, a random 128-bit
// serial, a CRL distribution point); it returns the root's file, the
// chain's (leaf then intermediate) and the key's.
func publicShapedChain(t *testing.T, dir, name string) (root, chain, key string) {
	t.Helper()
	now := time.Now().Add(-time.Hour)
	mk := func(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl.SerialNumber, _ = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		if parent == nil {
			parent, parentKey = tmpl, k
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, k
	}
	ca, caKey := mk(&x509.Certificate{Subject: pkix.Name{CommonName: "Rampart Test Root"}, NotBefore: now, NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, nil, nil)
	inter, interKey := mk(&x509.Certificate{Subject: pkix.Name{CommonName: "Rampart Test Issuing CA"}, NotBefore: now, NotAfter: now.AddDate(3, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		CRLDistributionPoints: []string{"http://crl.rampart.test/root.crl"}}, ca, caKey)
	leaf, leafKey := mk(&x509.Certificate{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}, NotBefore: now, NotAfter: now.AddDate(0, 0, 90),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		CRLDistributionPoints: []string{"http://crl.rampart.test/issuing.crl"}}, inter, interKey)
	write := func(file string, blocks ...*pem.Block) string {
		var b []byte
		for _, bl := range blocks {
			b = append(b, pem.EncodeToMemory(bl)...)
		}
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	kder, _ := x509.MarshalECPrivateKey(leafKey)
	return write("root.pem", &pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}),
		write("chain.pem", &pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}, &pem.Block{Type: "CERTIFICATE", Bytes: inter.Raw}),
		write("key.pem", &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
