// Package pki reads the CA bundles and certificates that configs name by
// file: one reader, so that every listener, upstream and identity provider
// trusts a bundle the same way (PEM certificates only, never the system
// pool unless no bundle is named, an empty bundle an error).
package pki

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// Certificates reads every CERTIFICATE block of a PEM file; a file with
// none is an error.
func Certificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificates", path)
	}
	return out, nil
}

// CAPool reads a CA bundle into a pool holding only its certificates.
func CAPool(path string) (*x509.CertPool, error) {
	certs, err := Certificates(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}
