package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Stapling: a certificate from files that names an OCSP responder gets
// the responder's signed "good" answer attached to every handshake, so
// clients need not ask the CA (and tell it whom they visit). Responses
// are fetched in the background after each load and refreshed halfway to
// their next update; a certificate without a response (responder down, a
// revoked answer) is served without one, and the failure is logged.

// ocspRetry is how soon a failed fetch is tried again.
const ocspRetry = 10 * time.Minute

// stapler fetches OCSP responses for a listener's certificate sets.
type stapler struct {
	client *http.Client
	log    *slog.Logger
	done   <-chan struct{}
	now    func() time.Time
}

// needsStaple lists the certificates of s that name a responder and
// carry their issuer.
func (s *CertSet) needsStaple() []*tls.Certificate {
	seen := map[*tls.Certificate]bool{}
	var out []*tls.Certificate
	for _, c := range s.all() {
		if !seen[c] && c.Leaf != nil && len(c.Leaf.OCSPServer) > 0 && len(c.Certificate) > 1 {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// all is every certificate of the set (the default first).
func (s *CertSet) all() []*tls.Certificate {
	var out []*tls.Certificate
	if s.Default != nil {
		out = append(out, s.Default)
	}
	for _, c := range s.byName {
		out = append(out, c)
	}
	return out
}

// withStaples is a copy of s whose certificates in staples carry them.
func (s *CertSet) withStaples(staples map[*tls.Certificate][]byte) *CertSet {
	swap := map[*tls.Certificate]*tls.Certificate{}
	get := func(c *tls.Certificate) *tls.Certificate {
		if c == nil || staples[c] == nil {
			return c
		}
		if n := swap[c]; n != nil {
			return n
		}
		n := *c
		n.OCSPStaple = staples[c]
		swap[c] = &n
		return &n
	}
	out := &CertSet{Default: get(s.Default), byName: make(map[string]*tls.Certificate, len(s.byName)), issuer: s.issuer}
	for name, c := range s.byName {
		out.byName[name] = get(c)
	}
	return out
}

// run keeps the staples of set fresh while it is the current set of
// certs.
func (st *stapler) run(certs *Certs, set *CertSet) {
	todo := set.needsStaple()
	if len(todo) == 0 {
		return
	}
	cur := set
	for {
		staples := map[*tls.Certificate][]byte{}
		next := st.now().Add(ocspRetry)
		for _, c := range todo {
			resp, raw, err := st.fetch(c)
			if err != nil {
				st.log.Warn("OCSP staple not fetched; the certificate is served without one", "certificate", c.Leaf.Subject.String(), "error", err.Error())
				continue
			}
			staples[c] = raw
			if half := resp.ThisUpdate.Add(resp.NextUpdate.Sub(resp.ThisUpdate) / 2); half.After(st.now()) && (half.Before(next) || len(staples) == 1) {
				next = half
			}
		}
		if len(staples) > 0 {
			stapled := set.withStaples(staples)
			if !certs.cur.CompareAndSwap(cur, stapled) {
				return // a reload replaced the set; its own stapler runs
			}
			cur = stapled
		}
		select {
		case <-st.done:
			return
		case <-time.After(time.Until(next)):
		}
		if certs.cur.Load() != cur {
			return
		}
	}
}

// fetch asks the certificate's responder for its status; only a "good"
// answer valid now is returned.
func (st *stapler) fetch(c *tls.Certificate) (*ocsp.Response, []byte, error) {
	issuer, err := x509.ParseCertificate(c.Certificate[1])
	if err != nil {
		return nil, nil, err
	}
	req, err := ocsp.CreateRequest(c.Leaf, issuer, nil)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Leaf.OCSPServer[0], bytes.NewReader(req))
	if err != nil {
		return nil, nil, err
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	res, err := st.client.Do(hr)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return nil, nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("responder answered %d", res.StatusCode)
	}
	resp, err := ocsp.ParseResponseForCert(raw, c.Leaf, issuer)
	if err != nil {
		return nil, nil, err
	}
	now := st.now()
	switch {
	case resp.Status == ocsp.Revoked:
		return nil, nil, fmt.Errorf("the CA says the certificate is REVOKED (%s)", resp.RevokedAt.Format(time.RFC3339))
	case resp.Status != ocsp.Good:
		return nil, nil, errors.New("status unknown to the responder")
	case now.Before(resp.ThisUpdate) || (!resp.NextUpdate.IsZero() && !now.Before(resp.NextUpdate)):
		return nil, nil, errors.New("response not valid now")
	}
	return resp, raw, nil
}
