package gateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"

	"github.com/rampart-gw/rampart/internal/assert"
	"github.com/rampart-gw/rampart/internal/authn"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/pki"
)

// issuerEntry is a compiled JWT issuer. Remote key sets are state (the
// last good keys, the refetch clock) that survives a reload as long as the
// issuer's config is unchanged.
type issuerEntry struct {
	fingerprint string
	issuer      *authn.Issuer
	remote      *authn.RemoteKeys
}

func (e *issuerEntry) start() {
	if e.remote != nil {
		e.remote.Start()
	}
}

func (e *issuerEntry) close() {
	if e.remote != nil {
		e.remote.Close()
	}
}

// compileIssuers builds the JWT issuers, reusing unchanged ones from prev.
func compileIssuers(cfg *config.Config, deps pipeline.Deps, prev map[string]*issuerEntry) (map[string]*issuerEntry, []error) {
	out := map[string]*issuerEntry{}
	var errs []error
	for i, j := range cfg.Authn.JWT {
		base := fmt.Sprintf("authn.jwt[%d]", i)
		fp, err := issuerFingerprint(j)
		if err != nil {
			errs = append(errs, cfg.Problem(base, "%v", err))
			continue
		}
		if old, ok := prev[j.Name]; ok && old.fingerprint == fp {
			out[j.Name] = old
			continue
		}
		e := &issuerEntry{fingerprint: fp}
		var keys authn.KeySet
		if len(j.Keys) > 0 {
			var ks []*authn.Key
			for k, kc := range j.Keys {
				key, err := staticKey(kc, j.Algorithms)
				if err != nil {
					errs = append(errs, cfg.Problem(fmt.Sprintf("%s.keys[%d]", base, k), "%v", err))
					continue
				}
				ks = append(ks, key)
			}
			keys = authn.NewStaticKeys(ks)
		} else {
			rk, err := authn.NewRemoteKeys(authn.RemoteOptions{
				JWKSURL: j.JWKSURL, Discovery: j.Discovery, Issuer: j.Issuer, Allowed: j.Algorithms,
				Refresh: j.Refresh.D(), MinRefetch: j.MinRefetch.D(), Timeout: j.FetchTimeout.D(),
				CAFile: j.CAFile, AllowPlaintext: j.AllowPlaintext,
				Log: deps.Log.With("issuer", j.Name), Now: deps.Now, OnFetchError: fetchFailed(deps, j.Name),
			})
			if err != nil {
				errs = append(errs, cfg.Problem(base+".ca_file", "%v", err))
				continue
			}
			e.remote = rk
			keys = rk
		}
		e.issuer = authn.NewIssuer(authn.IssuerOptions{
			Name: j.Name, ID: j.Issuer, Audiences: j.Audiences, Algorithms: j.Algorithms, Keys: keys,
			RequireType: j.RequireType, ClockSkew: j.ClockSkew.D(), ScopesClaim: j.ScopesClaim,
			RolesClaim: j.RolesClaim, ExposedClaims: j.Claims, RequireBinding: j.RequireBinding,
		})
		out[j.Name] = e
	}
	return out, errs
}

func staticKey(kc config.JWTKey, allowed []string) (*authn.Key, error) {
	if authn.IsHMAC(kc.Algorithm) {
		return authn.NewHMACKey(kc.KID, kc.Algorithm, []byte(kc.Secret.Reveal()))
	}
	data, err := os.ReadFile(kc.File)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		k, err := authn.ParseJWK(data, []string{kc.Algorithm})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kc.File, err)
		}
		if kc.KID != "" {
			k.ID = kc.KID
		}
		return k, nil
	}
	pub, err := authn.ParsePEMPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kc.File, err)
	}
	return authn.NewPublicKey(kc.KID, kc.Algorithm, pub)
}

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

// authStage builds a route's authenticate stage (nil when public). The
// methods are listed mTLS first, so that with all_of a token's subject
// names the user and the certificate the client.
func authStage(r config.Route, lp *listenerPlan, issuers map[string]*issuerEntry, intros map[string]*authn.Introspector, apiKeys *authn.APIKeyMethod, jtis *authn.JTIStore, deps pipeline.Deps) pipeline.Middleware {
	if r.Auth == nil {
		return nil
	}
	var methods []authn.Method
	if r.Auth.MTLS {
		methods = append(methods, authn.NewMTLSMethod(lp.revocations))
	}
	if len(r.Auth.JWT) > 0 {
		var list []*authn.Issuer
		for _, n := range r.Auth.JWT {
			if e := issuers[n]; e != nil {
				list = append(list, e.issuer)
			}
		}
		methods = append(methods, authn.NewJWTMethod(authn.JWTOptions{
			Issuers: list,
			Policy: authn.Policy{MaxLifetime: r.Auth.MaxTokenLifetime.D(), RequiredClaims: r.Auth.RequiredClaims,
				JTIs: jtis, SingleUse: r.Auth.SingleUse},
			CacheSize:  10000,
			QueryParam: r.Auth.TokenQueryParam,
			Cookie:     r.Auth.TokenCookie,
			Header:     r.Auth.TokenHeader,
		}))
	}
	for _, n := range r.Auth.Introspection {
		if in := intros[n]; in != nil {
			methods = append(methods, in)
		}
	}
	if r.Auth.APIKey && apiKeys != nil {
		methods = append(methods, apiKeys)
	}
	combine := authn.AnyOf
	if r.Auth.Combine == "all_of" {
		combine = authn.AllOf
	}
	return authn.NewStage(methods, combine, deps.Now)
}

// compileAPIKeys loads the API key store.
func compileAPIKeys(cfg *config.Config) (*authn.APIKeyMethod, error) {
	k := cfg.Authn.APIKeys
	if k == nil {
		return nil, nil
	}
	f, err := authn.LoadAPIKeys(k.File)
	if err != nil {
		return nil, err
	}
	return authn.NewAPIKeyMethod(k.Header, []byte(k.Secret.Reveal()), f), nil
}

// compileRevocations reads a listener's client-certificate revocations.
// A CRL must be signed by one of the client CAs.
func compileRevocations(t *config.ListenerTLS) (*authn.Revocations, error) {
	if t == nil || t.ClientCAFile == "" {
		return nil, nil
	}
	var crl *x509.RevocationList
	if t.ClientCRLFile != "" {
		data, err := os.ReadFile(t.ClientCRLFile)
		if err != nil {
			return nil, err
		}
		if b, _ := pem.Decode(data); b != nil {
			data = b.Bytes
		}
		crl, err = x509.ParseRevocationList(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.ClientCRLFile, err)
		}
		cas, err := pki.Certificates(t.ClientCAFile)
		if err != nil {
			return nil, err
		}
		signed := false
		for _, ca := range cas {
			if crl.CheckSignatureFrom(ca) == nil {
				signed = true
				break
			}
		}
		if !signed {
			return nil, fmt.Errorf("%s is not signed by a CA of %s", t.ClientCRLFile, t.ClientCAFile)
		}
	}
	return authn.NewRevocations(t.ClientRevokedSerials, crl), nil
}

// compileIntrospection builds the introspection clients. Their caches are
// per plan: a reload starts them empty (they are an optimisation).
func compileIntrospection(cfg *config.Config) (map[string]*authn.Introspector, []error) {
	out := map[string]*authn.Introspector{}
	var errs []error
	for i, c := range cfg.Authn.Introspection {
		in, err := authn.NewIntrospector(authn.IntrospectionOptions{
			Name: c.Name, Endpoint: c.Endpoint, ClientID: c.ClientID, ClientSecret: c.ClientSecret.Reveal(),
			Issuer: c.Issuer, Audiences: c.Audiences, Timeout: c.Timeout.D(),
			CacheTTL: c.CacheTTL.D(), NegativeTTL: c.NegativeCacheTTL.D(), CAFile: c.CAFile,
		})
		if err != nil {
			errs = append(errs, cfg.Problem(fmt.Sprintf("authn.introspection[%d].ca_file", i), "%v", err))
			continue
		}
		out[c.Name] = in
	}
	return out, errs
}

// compileSigner loads (or creates) the assertion signing key and the
// previous keys still published for overlap.
func compileSigner(a *config.Assertion) (*assert.Signer, error) {
	cur, err := assert.LoadOrCreate(a.KeyFile, a.Algorithm)
	if err != nil {
		return nil, err
	}
	var prev []*assert.Key
	for _, f := range a.PreviousKeyFiles {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("previous key %s: %w", f, err)
		}
		k, err := assert.LoadOrCreate(f, a.Algorithm)
		if err != nil {
			return nil, err
		}
		prev = append(prev, k)
	}
	s := assert.NewSigner(a.Issuer, a.TTL.D(), cur, prev)
	s.SetReuse(a.Reuse.D())
	return s, nil
}

// jwksRoute serves the gateway's public assertion keys.
func jwksRoute(s *assert.Signer) *routePlan {
	body := s.JWKS()
	return &routePlan{id: "rampart.jwks", stages: []string{"jwks"}, handler: func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			e := pipeline.Deny(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed")
			e.Header = http.Header{"Allow": {"GET, HEAD"}}
			return e
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
		return nil
	}}
}

// fetchFailed reports an issuer's failed key fetches to deps, if wanted.
func fetchFailed(deps pipeline.Deps, issuer string) func() {
	if deps.FetchFailed == nil {
		return nil
	}
	return func() { deps.FetchFailed(issuer) }
}
