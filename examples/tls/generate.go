//go:build ignore

// Generates the example PKI of the examples: a CA, a server certificate
// for the gateway, a client certificate for the gateway's mTLS to its
// services, and an empty CRL of client certificates. EXAMPLE ONLY: the
// private keys are public; never use these files outside the examples.
//
//	cd examples/tls && go run generate.go
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"time"
)

func main() {
	notBefore := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter := notBefore.AddDate(30, 0, 0)
	caKey := key()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Rampart EXAMPLE CA (do not trust)"},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER := sign(ca, ca, caKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	write("ca.pem", "CERTIFICATE", caDER)

	srvKey := key()
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gateway.example.com (EXAMPLE)"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"gateway.example.com", "api.example.com", "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	write("gateway.crt", "CERTIFICATE", sign(srv, caCert, srvKey, caKey))
	writeKey("gateway.key", srvKey)

	cliKey := key()
	cli := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "rampart-gateway (EXAMPLE)"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	write("client.crt", "CERTIFICATE", sign(cli, caCert, cliKey, caKey))
	writeKey("client.key", cliKey)

	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: notBefore,
		NextUpdate: notAfter}, caCert, caKey)
	check(err)
	write("clients.crl", "X509 CRL", crl)
}

func key() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	return k
}

func sign(tmpl, parent *x509.Certificate, k, by *ecdsa.PrivateKey) []byte {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, by)
	check(err)
	return der
}

func writeKey(name string, k *ecdsa.PrivateKey) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	check(err)
	write(name, "PRIVATE KEY", der)
}

func write(name, typ string, der []byte) {
	check(os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644))
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}
