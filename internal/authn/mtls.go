package authn

import (
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Revocations are the client certificates a listener no longer accepts:
// serial numbers listed in config and the entries of a CRL.
type Revocations struct {
	serials map[string]bool // lower-case hex, no leading zeros
}

// NewRevocations builds a revocation set from hex serials and an optional
// CRL, which must be signed by one of the client CAs.
func NewRevocations(serials []string, crl *x509.RevocationList) *Revocations {
	r := &Revocations{serials: map[string]bool{}}
	for _, s := range serials {
		r.serials[normSerial(s)] = true
	}
	if crl != nil {
		for _, e := range crl.RevokedCertificateEntries {
			r.serials[strings.TrimLeft(e.SerialNumber.Text(16), "0")] = true
		}
	}
	return r
}

func normSerial(s string) string {
	s = strings.ToLower(strings.NewReplacer(":", "", " ", "", "0x", "").Replace(s))
	return strings.TrimLeft(s, "0")
}

// Revoked reports whether the certificate is revoked.
func (r *Revocations) Revoked(c *x509.Certificate) bool {
	if r == nil {
		return false
	}
	return r.serials[strings.TrimLeft(c.SerialNumber.Text(16), "0")]
}

// MTLSMethod authenticates the client certificate the listener verified
// against its client CA bundle (never the system pool).
type MTLSMethod struct {
	rev *Revocations
}

// NewMTLSMethod builds the mtls method with the listener's revocations.
func NewMTLSMethod(rev *Revocations) *MTLSMethod { return &MTLSMethod{rev: rev} }

// Name implements Method.
func (m *MTLSMethod) Name() string { return "mtls" }

// Authenticate implements Method.
func (m *MTLSMethod) Authenticate(r *http.Request, now time.Time) (*pipeline.Identity, *Failure) {
	st := r.TLS
	if st == nil || len(st.PeerCertificates) == 0 {
		return nil, fail(ReasonMissing, "no client certificate")
	}
	if len(st.VerifiedChains) == 0 {
		return nil, fail(ReasonSignature, "client certificate not verified")
	}
	leaf := st.PeerCertificates[0]
	if m.rev.Revoked(leaf) {
		return nil, fail(ReasonRevoked, "client certificate serial %s revoked", hex.EncodeToString(leaf.SerialNumber.Bytes()))
	}
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return nil, fail(ReasonExpired, "client certificate outside its validity")
	}
	return &pipeline.Identity{
		Subject:   certSubject(leaf),
		Issuer:    leaf.Issuer.String(),
		Method:    "mtls",
		ExpiresAt: leaf.NotAfter,
	}, nil
}

// certSubject names the client: a SAN URI (SPIFFE id) first, then a DNS
// name, an email address, and last the subject common name.
func certSubject(c *x509.Certificate) string {
	switch {
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.EmailAddresses) > 0:
		return c.EmailAddresses[0]
	}
	return c.Subject.CommonName
}
