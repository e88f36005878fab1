package authn

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/jws"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/pki"
	"github.com/rampart-gw/rampart/internal/store"
)

// Set is the compiled authn section: the JWT issuers, the introspection
// clients and the API key store that routes name. Remote key sets are
// state (the last good keys, the refetch clock) that survives a reload as
// long as their issuer's config is unchanged.
type Set struct {
	issuers map[string]*issuerEntry
	intros  map[string]*Introspector
	apiKeys *APIKeyMethod
}

type issuerEntry struct {
	fingerprint string
	issuer      *Issuer
	remote      *RemoteKeys
}

// Compile builds cfg's authn section, reusing unchanged issuers of prev
// (nil: none); the API key store is read through st. Errors are config
// problems naming their key.
func Compile(cfg *config.Config, deps pipeline.Deps, prev *Set, st *store.Store) (*Set, []error) {
	s := &Set{issuers: map[string]*issuerEntry{}, intros: map[string]*Introspector{}}
	var errs []error
	for i, j := range cfg.Authn.JWT {
		var old *issuerEntry
		if prev != nil {
			old = prev.issuers[j.Name]
		}
		e, err := compileIssuer(cfg, i, j, deps, old)
		errs = append(errs, err...)
		if e != nil {
			s.issuers[j.Name] = e
		}
	}
	for i, c := range cfg.Authn.Introspection {
		in, err := NewIntrospector(IntrospectionOptions{
			Name: c.Name, Endpoint: c.Endpoint, ClientID: c.ClientID, ClientSecret: c.ClientSecret.Reveal(),
			Issuer: c.Issuer, Audiences: c.Audiences, Timeout: c.Timeout.D(),
			CacheTTL: c.CacheTTL.D(), NegativeTTL: c.NegativeCacheTTL.D(), CAFile: c.CAFile,
		})
		if err != nil {
			errs = append(errs, cfg.Problem(fmt.Sprintf("authn.introspection[%d].ca_file", i), "%v", err))
			continue
		}
		s.intros[c.Name] = in // caches are per plan: a reload starts them empty
	}
	if k := cfg.Authn.APIKeys; k != nil {
		f, err := LoadAPIKeys(k.File, st)
		if err != nil {
			errs = append(errs, cfg.Problem("authn.api_keys.file", "%v", err))
		} else {
			s.apiKeys = NewAPIKeyMethod(k.Header, []byte(k.Secret.Reveal()), f)
		}
	}
	return s, errs
}

// compileIssuer builds issuer i, or returns old when its config (keys
// included) is unchanged.
func compileIssuer(cfg *config.Config, i int, j config.JWTIssuer, deps pipeline.Deps, old *issuerEntry) (*issuerEntry, []error) {
	base := fmt.Sprintf("authn.jwt[%d]", i)
	fp, err := issuerFingerprint(j)
	if err != nil {
		return nil, []error{cfg.Problem(base, "%v", err)}
	}
	if old != nil && old.fingerprint == fp {
		return old, nil
	}
	e := &issuerEntry{fingerprint: fp}
	var keys KeySet
	var errs []error
	if len(j.Keys) > 0 {
		var ks []*jws.Key
		for k, kc := range j.Keys {
			key, err := staticKey(kc)
			if err != nil {
				errs = append(errs, cfg.Problem(fmt.Sprintf("%s.keys[%d]", base, k), "%v", err))
				continue
			}
			ks = append(ks, key)
		}
		keys = NewStaticKeys(ks)
	} else {
		rk, err := NewRemoteKeys(RemoteOptions{
			JWKSURL: j.JWKSURL, Discovery: j.Discovery, Issuer: j.Issuer, Allowed: j.Algorithms,
			Refresh: j.Refresh.D(), MinRefetch: j.MinRefetch.D(), Timeout: j.FetchTimeout.D(),
			CAFile: j.CAFile, AllowPlaintext: j.AllowPlaintext,
			Log: deps.Log.With("issuer", j.Name), Now: deps.Now, OnFetchError: fetchFailed(deps, j.Name),
		})
		if err != nil {
			return nil, []error{cfg.Problem(base+".ca_file", "%v", err)}
		}
		e.remote, keys = rk, rk
	}
	e.issuer = NewIssuer(IssuerOptions{
		Name: j.Name, ID: j.Issuer, Audiences: j.Audiences, Algorithms: j.Algorithms, Keys: keys,
		RequireType: j.RequireType, ClockSkew: j.ClockSkew.D(), ScopesClaim: j.ScopesClaim,
		RolesClaim: j.RolesClaim, ExposedClaims: j.Claims, RequireBinding: j.RequireBinding,
	})
	return e, errs
}

// Start starts fetching remote key sets (idempotent).
func (s *Set) Start() {
	for _, e := range s.issuers {
		if e.remote != nil {
			e.remote.Start()
		}
	}
}

// CloseUnshared stops the key fetching and introspection clients of s
// that keep (nil: none) does not share.
func (s *Set) CloseUnshared(keep *Set) {
	if s == nil {
		return
	}
	for name, e := range s.issuers {
		if (keep == nil || keep.issuers[name] != e) && e.remote != nil {
			e.remote.Close()
		}
	}
	for name, in := range s.intros {
		if keep == nil || keep.intros[name] != in {
			in.Close()
		}
	}
}

// Stage builds a route's authenticate stage (nil when the route is
// public). The methods are listed mTLS first, so that with all_of a
// token's subject names the user and the certificate the client.
// revocations are the listener's client-certificate revocations.
func (s *Set) Stage(a *config.RouteAuth, revocations *Revocations, jtis *JTIStore, deps pipeline.Deps) pipeline.Middleware {
	if a == nil {
		return nil
	}
	var methods []Method
	if a.MTLS {
		methods = append(methods, NewMTLSMethod(revocations))
	}
	if len(a.JWT) > 0 {
		var list []*Issuer
		for _, n := range a.JWT {
			if e := s.issuers[n]; e != nil {
				list = append(list, e.issuer)
			}
		}
		methods = append(methods, NewJWTMethod(JWTOptions{
			Issuers: list,
			Policy: Policy{MaxLifetime: a.MaxTokenLifetime.D(), RequiredClaims: a.RequiredClaims,
				JTIs: jtis, SingleUse: a.SingleUse},
			CacheSize:  10000,
			QueryParam: a.TokenQueryParam,
			Cookie:     a.TokenCookie,
			Header:     a.TokenHeader,
		}))
	}
	for _, n := range a.Introspection {
		if in := s.intros[n]; in != nil {
			methods = append(methods, in)
		}
	}
	if a.APIKey && s.apiKeys != nil {
		methods = append(methods, s.apiKeys)
	}
	combine := AnyOf
	if a.Combine == "all_of" {
		combine = AllOf
	}
	return NewStage(methods, combine, deps.Now)
}

// staticKey loads a configured verification key: an HMAC secret, or a
// public key as a JWK or PEM file.
func staticKey(kc config.JWTKey) (*jws.Key, error) {
	if jws.IsHMAC(kc.Algorithm) {
		return jws.NewHMACKey(kc.KID, kc.Algorithm, []byte(kc.Secret.Reveal()))
	}
	data, err := os.ReadFile(kc.File)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		k, err := jws.ParseJWK(data, []string{kc.Algorithm})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kc.File, err)
		}
		if kc.KID != "" {
			k.ID = kc.KID
		}
		return k, nil
	}
	pub, err := jws.ParsePEMPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kc.File, err)
	}
	return jws.NewPublicKey(kc.KID, kc.Algorithm, pub)
}

// issuerFingerprint identifies an issuer's config including its secret
// values and key files, so that a rotated key builds a new issuer.
func issuerFingerprint(j config.JWTIssuer) (string, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(b)
	for _, k := range j.Keys {
		h.Write([]byte(k.Secret.Reveal()))
		if k.File != "" {
			data, err := os.ReadFile(k.File)
			if err != nil {
				return "", err
			}
			h.Write(data)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CompileRevocations reads a TLS listener's client-certificate
// revocations (nil without client CAs). A CRL must be signed by one of
// the client CAs.
func CompileRevocations(t *config.ListenerTLS) (*Revocations, error) {
	if t == nil || t.ClientCAFile == "" {
		return nil, nil
	}
	var crl *x509.RevocationList
	if t.ClientCRLFile != "" {
		var err error
		if crl, err = readCRL(t.ClientCRLFile, t.ClientCAFile); err != nil {
			return nil, err
		}
	}
	return NewRevocations(t.ClientRevokedSerials, crl), nil
}

// readCRL reads a CRL (PEM or DER) and checks that a CA of caFile signed it.
func readCRL(file, caFile string) (*x509.RevocationList, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	cas, err := pki.Certificates(caFile)
	if err != nil {
		return nil, err
	}
	for _, ca := range cas {
		if crl.CheckSignatureFrom(ca) == nil {
			return crl, nil
		}
	}
	return nil, errors.New(file + " is not signed by a CA of " + caFile)
}

// fetchFailed reports an issuer's failed key fetches to deps, if wanted.
func fetchFailed(deps pipeline.Deps, issuer string) func() {
	if deps.FetchFailed == nil {
		return nil
	}
	return func() { deps.FetchFailed(issuer) }
}
