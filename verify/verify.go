// Package verify lets a Go service accept only requests that came through
// a Rampart gateway. Rampart attaches a short-lived signed assertion to
// every request it forwards; Middleware rejects any request without a
// valid one: wrong signature, issuer or audience, expired, bound to another
// method, host or path, or (optionally) replayed.
//
//	mw, err := verify.Middleware(verify.Options{
//		JWKSURL:  "https://gateway.internal/.well-known/rampart-jwks.json",
//		Issuer:   "https://gateway.example.com",
//		Audience: "orders", // the upstream's name in the gateway config
//	})
//	if err != nil { log.Fatal(err) }
//	http.ListenAndServe(":9000", mw(ordersHandler))
//
// Inside the handler, FromContext returns the verified caller.
package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/rampart-gw/rampart/internal/assert"
	"github.com/rampart-gw/rampart/internal/authn"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/jws"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Options configure Middleware.
type Options struct {
	// JWKSURL is the gateway's public key set (its assertion.jwks_path).
	// Either JWKSURL or Keys is required.
	JWKSURL string
	// Keys are the gateway's public keys (Ed25519 or P-256), by key id,
	// when they are distributed out of band instead of fetched.
	Keys map[string]crypto.PublicKey
	// Issuer is the gateway's assertion issuer (assertion.issuer).
	Issuer string
	// Audience is this service's upstream name in the gateway config.
	Audience string
	// Header carries the assertion. Default X-Rampart-Assertion.
	Header string
	// Leeway tolerated on exp and iat. Default 5s.
	Leeway time.Duration
	// ReplayCache refuses an assertion seen before (each is single-use).
	ReplayCache bool
	// AllowPlaintextJWKS permits an http:// JWKSURL (tests, loopback).
	AllowPlaintextJWKS bool
	// CAFile pins the CA of the JWKS endpoint.
	CAFile string
	// MinRefetch bounds JWKS refetches on an unknown key id (a gateway key
	// rotation). Default 10s.
	MinRefetch time.Duration
	// OnReject, if set, is called with the reason of every refusal (for
	// logs); the client always gets a bare 401.
	OnReject func(r *http.Request, reason error)
	// Now is the clock (default time.Now; tests).
	Now func() time.Time
}

// Caller is the verified identity a gateway vouched for.
type Caller struct {
	// Subject is the authenticated caller ("" on public routes).
	Subject string
	// Method is how the caller authenticated at the gateway.
	Method string
	// Scopes and Roles granted to the caller.
	Scopes, Roles []string
	// RequestID is the gateway's request id.
	RequestID string
	// ExpiresAt is when the assertion expires.
	ExpiresAt time.Time
}

type ctxKey struct{}

// FromContext returns the verified caller of a request that passed
// Middleware.
func FromContext(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Caller)
	return c, ok
}

// Middleware returns an http middleware that admits only requests carrying
// a valid gateway assertion.
func Middleware(o Options) (func(http.Handler) http.Handler, error) {
	if o.Issuer == "" || o.Audience == "" {
		return nil, errors.New("verify: Issuer and Audience are required")
	}
	if o.Header == "" {
		o.Header = "X-Rampart-Assertion"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Leeway == 0 {
		o.Leeway = 5 * time.Second
	}
	if o.MinRefetch == 0 {
		o.MinRefetch = 10 * time.Second
	}
	algs := []string{"EdDSA", "ES256"}
	var keys authn.KeySet
	switch {
	case len(o.Keys) > 0:
		var ks []*jws.Key
		for kid, pub := range o.Keys {
			alg := "EdDSA"
			if _, ok := pub.(*ecdsa.PublicKey); ok {
				alg = "ES256"
			}
			k, err := jws.NewPublicKey(kid, alg, pub)
			if err != nil {
				return nil, err
			}
			ks = append(ks, k)
		}
		keys = authn.NewStaticKeys(ks)
	case o.JWKSURL != "":
		if err := config.CheckFetchURL(o.JWKSURL, o.AllowPlaintextJWKS); err != nil {
			return nil, err
		}
		rk, err := authn.NewRemoteKeys(authn.RemoteOptions{
			JWKSURL: o.JWKSURL, Issuer: o.Issuer, Allowed: algs, Refresh: 5 * time.Minute,
			MinRefetch: o.MinRefetch, Timeout: 5 * time.Second, CAFile: o.CAFile,
			AllowPlaintext: o.AllowPlaintextJWKS, Log: slog.New(slog.DiscardHandler), Now: o.Now,
		})
		if err != nil {
			return nil, err
		}
		rk.Start()
		keys = rk
	default:
		return nil, errors.New("verify: JWKSURL or Keys is required")
	}
	is := authn.NewIssuer(authn.IssuerOptions{
		Name: "gateway", ID: o.Issuer, Audiences: []string{o.Audience}, Algorithms: algs, Keys: keys,
		RequireType: assert.Type, ClockSkew: o.Leeway, ScopesClaim: "scope", RolesClaim: "roles",
		RequireBinding: true, ExposedClaims: []string{"auth", "rid"},
	})
	pol := authn.Policy{MaxLifetime: 10 * time.Minute, RequiredClaims: []string{"jti", "rid"}}
	if o.ReplayCache {
		pol.JTIs, pol.SingleUse = authn.NewJTIStore(), true
	}
	method := authn.NewJWTMethod(authn.JWTOptions{Issuers: []*authn.Issuer{is}, Policy: pol, Header: o.Header})
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, f := method.Authenticate(r, o.Now())
			if f != nil {
				if o.OnReject != nil {
					o.OnReject(r, f)
				}
				w.Header().Set("Content-Type", pipeline.ProblemContentType)
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","status":401,"detail":"requests must come through the gateway"}` + "\n"))
				return
			}
			c := &Caller{Subject: id.Subject, Scopes: id.Scopes, Roles: id.Roles, ExpiresAt: id.ExpiresAt}
			if id.Claims != nil {
				c.Method, _ = id.Claims["auth"].(string)
				c.RequestID, _ = id.Claims["rid"].(string)
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))
		})
	}, nil
}
