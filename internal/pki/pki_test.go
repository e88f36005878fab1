package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/rampart-gw/rampart/internal/testpki"
)

func TestCAPool(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	file := ca.WriteCA(t, dir, "ca")
	pool, err := CAPool(file)
	if err != nil {
		t.Fatal(err)
	}
	leaf := ca.Server(t, "svc.test")
	cert, err := x509.ParseCertificate(leaf.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "svc.test"}); err != nil {
		t.Fatalf("a leaf of the bundle's CA does not verify: %v", err)
	}
	for name, content := range map[string]string{
		"empty":      "",
		"key only":   "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
		"bad base64": "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
	} {
		f := filepath.Join(dir, "bad.pem")
		os.WriteFile(f, []byte(content), 0o600)
		if _, err := CAPool(f); err == nil {
			t.Errorf("%s: accepted as a CA bundle", name)
		}
	}
	if _, err := CAPool(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("a missing file accepted")
	}
}
