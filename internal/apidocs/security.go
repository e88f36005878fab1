package apidocs

import (
	"reflect"
	"slices"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
)

// security is the security requirement list of a route, as the gateway
// enforces it: [] for a public route; otherwise one requirement per
// accepted credential (any_of) or one with all of them (all_of), each
// token scheme with the scopes authorize demands (scopes_any: one
// alternative per scope).
func (b *builder) security(r config.Route) []any {
	if r.Public || r.Auth == nil {
		return []any{}
	}
	names := b.routeSchemes(r.Auth)
	var all, anyOf []string
	if a := r.Authorize; a != nil {
		all, anyOf = a.ScopesAll, a.ScopesAny
	}
	scopeSets := [][]string{all}
	if len(anyOf) > 0 {
		scopeSets = nil
		for _, s := range anyOf {
			scopeSets = append(scopeSets, append(append([]string{}, all...), s))
		}
	}
	var out []any
	for _, scopes := range scopeSets {
		if r.Auth.Combine == "all_of" {
			req := obj{}
			for _, n := range names {
				req[n] = b.scopesFor(n, scopes)
			}
			out = append(out, req)
			continue
		}
		for _, n := range names {
			req := obj{n: b.scopesFor(n, scopes)}
			if !slices.ContainsFunc(out, func(x any) bool { return reflect.DeepEqual(x, req) }) {
				out = append(out, req)
			}
		}
	}
	return out
}

// scopesFor is the scope list of a requirement: the scopes for token
// schemes, none for API keys and certificates.
func (b *builder) scopesFor(scheme string, scopes []string) []any {
	out := []any{}
	if t, _ := b.schemes[scheme].(obj)["type"].(string); t == "apiKey" || t == "mutualTLS" {
		return out
	}
	for _, s := range scopes {
		out = append(out, s)
	}
	return out
}

// routeSchemes names (and registers) the security schemes of a route's
// credentials: one per JWT issuer and introspection endpoint, the API key
// header, mutual TLS.
func (b *builder) routeSchemes(a *config.RouteAuth) []string {
	var names []string
	for _, n := range a.JWT {
		for _, j := range b.cfg.Authn.JWT {
			if j.Name == n {
				b.schemes[n] = jwtScheme(j)
			}
		}
		names = append(names, n)
	}
	for _, n := range a.Introspection {
		b.schemes[n] = obj{"type": "http", "scheme": "bearer",
			"description": "An OAuth 2.0 access token, checked by the gateway with the authorization server (RFC 7662)."}
		names = append(names, n)
	}
	if a.APIKey {
		header := "X-Api-Key"
		if k := b.cfg.Authn.APIKeys; k != nil && k.Header != "" {
			header = k.Header
		}
		b.schemes["apiKey"] = obj{"type": "apiKey", "in": "header", "name": header,
			"description": "An API key issued for a consumer; sent only in this header."}
		names = append(names, "apiKey")
	}
	if a.MTLS {
		b.schemes["mutualTLS"] = obj{"type": "mutualTLS", "description": "A client certificate from a CA the gateway trusts."}
		names = append(names, "mutualTLS")
	}
	return names
}

// jwtScheme describes a JWT issuer: OpenID Connect when it publishes a
// discovery document, else a bearer JWT; the description says what the
// gateway checks.
func jwtScheme(j config.JWTIssuer) obj {
	desc := "JWT access tokens from " + j.Issuer + " for " + strings.Join(j.Audiences, ", ") +
		", signed with " + strings.Join(j.Algorithms, ", ") + "; the gateway checks them as RFC8725 recommends (algorithm allow list, issuer, audience, expiry)."
	if j.Discovery {
		return obj{"type": "openIdConnect", "openIdConnectUrl": strings.TrimSuffix(j.Issuer, "/") + "/.well-known/openid-configuration", "description": desc}
	}
	return obj{"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": desc}
}
