package authn

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/jws"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Issuer verifies tokens of one trusted issuer. Immutable after NewIssuer.
type Issuer struct {
	// Name is the issuer's config name.
	Name string
	// ID is the exact "iss" value.
	ID          string
	audiences   []string
	algs        []string
	keys        KeySet
	requireTyp  string
	skew        time.Duration
	scopesClaim string
	rolesPath   []string
	claims      []string
	binding     bool
}

// IssuerOptions configure an Issuer.
type IssuerOptions struct {
	Name, ID      string
	Audiences     []string
	Algorithms    []string
	Keys          KeySet
	RequireType   string
	ClockSkew     time.Duration
	ScopesClaim   string   // default "scope"
	RolesClaim    string   // dotted path, e.g. realm_access.roles
	ExposedClaims []string // claims copied into the identity
	// RequireBinding demands an "htb" request-binding claim (assertions).
	RequireBinding bool
}

// NewIssuer builds an issuer verifier.
func NewIssuer(o IssuerOptions) *Issuer {
	is := &Issuer{
		Name: o.Name, ID: o.ID, audiences: o.Audiences, algs: o.Algorithms, keys: o.Keys,
		requireTyp: strings.ToLower(o.RequireType), skew: o.ClockSkew, scopesClaim: o.ScopesClaim, claims: o.ExposedClaims,
		binding: o.RequireBinding,
	}
	if is.scopesClaim == "" {
		is.scopesClaim = "scope"
	}
	if o.RolesClaim != "" {
		is.rolesPath = strings.Split(o.RolesClaim, ".")
	}
	return is
}

// Policy is what a route demands of a token beyond its issuer's rules.
type Policy struct {
	// MaxLifetime rejects tokens whose exp − iat exceeds it (0: no limit).
	MaxLifetime time.Duration
	// RequiredClaims must be present.
	RequiredClaims []string
	// JTIs holds revoked token ids and the replay guard's memory.
	JTIs *JTIStore
	// SingleUse accepts each token id once (jti required).
	SingleUse bool
}

// verify checks a parsed token against this issuer and the route policy:
// the header and signature, the time claims, the audience and required
// claims; then it reads the identity.
func (is *Issuer) verify(ctx context.Context, t *jws.Token, now time.Time, pol Policy) (*pipeline.Identity, *Failure) {
	if f := is.checkSignature(ctx, t); f != nil {
		return nil, f
	}
	c := t.Claims
	exp, f := is.checkTimes(c, now, pol)
	if f != nil {
		return nil, f
	}
	if !is.audienceOK(c["aud"]) {
		return nil, fail(ReasonAudience, "aud %v", c["aud"])
	}
	for _, name := range pol.RequiredClaims {
		if _, ok := c[name]; !ok {
			return nil, fail(ReasonClaims, "claim %q", name)
		}
	}
	return is.identity(c, exp)
}

// checkSignature checks the algorithm and type against the issuer's and
// the signature with the key the header names.
func (is *Issuer) checkSignature(ctx context.Context, t *jws.Token) *Failure {
	alg := t.Header.Alg
	if !slices.Contains(is.algs, alg) {
		return fail(ReasonAlgorithm, "alg %q not allowed for issuer %s", alg, is.Name)
	}
	if is.requireTyp != "" {
		typ := strings.ToLower(t.Header.Typ)
		if typ != is.requireTyp && typ != "application/"+is.requireTyp {
			return fail(ReasonType, "typ %q", t.Header.Typ)
		}
	}
	key, f := is.keys.Lookup(ctx, t.Header.Kid, alg)
	if f != nil {
		return f
	}
	if err := key.Verify(alg, t.SigningInput, t.Signature); err != nil {
		return fail(ReasonSignature, "%v", err)
	}
	return nil
}

// checkTimes checks exp (required), nbf, iat and the route's maximum
// lifetime, with the issuer's clock skew; it returns exp.
func (is *Issuer) checkTimes(c map[string]any, now time.Time, pol Policy) (int64, *Failure) {
	exp, hasExp, f := numericDate(c, "exp")
	if f != nil {
		return 0, f
	}
	if !hasExp {
		return 0, fail(ReasonNoExpiry, "no exp")
	}
	skew := int64(is.skew / time.Second)
	nowS := now.Unix()
	if nowS >= exp+skew {
		return 0, fail(ReasonExpired, "expired %ds ago", nowS-exp)
	}
	nbf, hasNbf, f := numericDate(c, "nbf")
	if f != nil {
		return 0, f
	}
	if hasNbf && nbf > nowS+skew {
		return 0, fail(ReasonNotYetValid, "nbf in %ds", nbf-nowS)
	}
	iat, hasIat, f := numericDate(c, "iat")
	if f != nil {
		return 0, f
	}
	if hasIat && iat > nowS+skew {
		return 0, fail(ReasonIssuedFuture, "iat in %ds", iat-nowS)
	}
	if pol.MaxLifetime > 0 {
		if !hasIat {
			return 0, fail(ReasonLifetime, "no iat to bound the lifetime")
		}
		if time.Duration(exp-iat)*time.Second > pol.MaxLifetime {
			return 0, fail(ReasonLifetime, "lifetime %ds", exp-iat)
		}
	}
	return exp, nil
}

// identity reads the caller from verified claims: subject, token id,
// scopes, roles, the request binding and the exposed claims.
func (is *Issuer) identity(c map[string]any, exp int64) (*pipeline.Identity, *Failure) {
	id := &pipeline.Identity{Issuer: is.ID, Method: "jwt", ExpiresAt: time.Unix(exp, 0)}
	if sub, ok := c["sub"].(string); ok {
		id.Subject = sub
	}
	if jti, ok := c["jti"].(string); ok {
		id.TokenID = jti
	}
	id.Scopes = stringList(c[is.scopesClaim], true)
	if is.scopesClaim == "scope" && id.Scopes == nil {
		id.Scopes = stringList(c["scp"], true)
	}
	if is.rolesPath != nil {
		id.Roles = stringList(pipeline.ClaimPath(c, is.rolesPath), false)
	}
	if is.binding {
		htb, _ := c["htb"].(string)
		if htb == "" {
			return nil, fail(ReasonClaims, "no htb request binding")
		}
		id.Binding = htb
	}
	if len(is.claims) > 0 {
		id.Claims = make(map[string]any, len(is.claims))
		for _, name := range is.claims {
			if v, ok := c[name]; ok {
				id.Claims[name] = plain(v)
			}
		}
	}
	return id, nil
}

// audienceOK: "aud" must be a string or an array of strings, and hold one
// of the issuer's audiences.
func (is *Issuer) audienceOK(v any) bool {
	switch a := v.(type) {
	case string:
		return a != "" && slices.Contains(is.audiences, a)
	case []any:
		ok := false
		for _, x := range a {
			s, isStr := x.(string)
			if !isStr {
				return false
			}
			ok = ok || slices.Contains(is.audiences, s)
		}
		return ok
	}
	return false
}

// stringList reads a claim that is a list of strings, or (when split) a
// space-separated string such as OAuth "scope".
func stringList(v any, split bool) []string {
	switch x := v.(type) {
	case string:
		if split {
			return strings.Fields(x)
		}
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// plain converts json.Number to int64 or float64 for later stages.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	}
	return v
}
