package authn

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// CodeUnauthorized is the one code clients see for any authentication
// failure; the precise reason is logged, never sent.
const CodeUnauthorized = "authn.unauthorized"

// Method is one way to authenticate a request.
type Method interface {
	// Name is the method's name in logs ("jwt", "apikey", "mtls", ...).
	Name() string
	// Authenticate verifies the request's credential of this kind. A
	// Failure with Reason ReasonMissing means the request carries no such
	// credential (any_of then tries the next method).
	Authenticate(r *http.Request, now time.Time) (*pipeline.Identity, *Failure)
}

// Combine says how a route's methods combine.
type Combine int

const (
	// AnyOf accepts the first method that succeeds.
	AnyOf Combine = iota
	// AllOf requires every method to succeed.
	AllOf
)

// NewStage returns the authenticate stage of a route: its methods,
// combined with any_of or all_of, set the scope's identity or refuse the
// request with the generic 401.
func NewStage(methods []Method, combine Combine, now func() time.Time) pipeline.Middleware {
	if len(methods) == 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			id, f := run(methods, combine, r, now())
			if f == nil {
				f = forwardable(id)
			}
			if f != nil {
				return Unauthorized(f, f.Reason != ReasonMissing)
			}
			if s := pipeline.ScopeOf(r.Context()); s != nil {
				s.Identity = id
			}
			return next(w, r)
		}
	}
}

// ReasonUnforwardable: the credential is valid but names a subject,
// issuer, scope or role that cannot travel in a header to the service.
const ReasonUnforwardable = "authn.unforwardable_identity"

// forwardable refuses an identity whose fields, forwarded to the service
// as X-Auth-* headers, would carry control characters. Security: a token
// or certificate may be genuine and still hold a subject like
// "bob\r\nX-Admin: 1" (a user-chosen name in an IdP, a certificate's
// subject); the request is refused here, by the stage that produced the
// value, instead of reaching the proxy as a header it would have to drop
// or repair.
func forwardable(id *pipeline.Identity) *Failure {
	ok := pipeline.ValidHeaderValue(id.Subject) && pipeline.ValidHeaderValue(id.Issuer) && pipeline.ValidHeaderValue(id.Method)
	for _, v := range id.Scopes {
		ok = ok && pipeline.ValidHeaderValue(v)
	}
	for _, v := range id.Roles {
		ok = ok && pipeline.ValidHeaderValue(v)
	}
	if !ok {
		return fail(ReasonUnforwardable, "the identity holds control characters")
	}
	return nil
}

func run(methods []Method, combine Combine, r *http.Request, now time.Time) (*pipeline.Identity, *Failure) {
	if combine == AnyOf {
		var first *Failure
		for _, m := range methods {
			id, f := m.Authenticate(r, now)
			if f == nil {
				return id, nil
			}
			// Report the most telling failure: a bad credential beats
			// a missing one.
			if first == nil || (first.Reason == ReasonMissing && f.Reason != ReasonMissing) {
				first = f
			}
		}
		return nil, first
	}
	var merged *pipeline.Identity
	var names []string
	for _, m := range methods {
		id, f := m.Authenticate(r, now)
		if f != nil {
			return nil, f
		}
		names = append(names, id.Method)
		merged = mergeIdentity(merged, id)
	}
	merged.Method = strings.Join(names, "+")
	return merged, nil
}

// mergeIdentity combines all_of identities: the first method's subject and
// issuer (list mTLS first and a token second, and the token's subject
// wins: see the order below), scopes and roles united, the earliest expiry.
func mergeIdentity(a, b *pipeline.Identity) *pipeline.Identity {
	if a == nil {
		c := *b
		return &c
	}
	c := *a
	if c.Method == "mtls" && b.Method != "mtls" {
		// A token names the user; the certificate names the client.
		if c.Claims == nil {
			c.Claims = map[string]any{}
		}
		c.Claims["client_certificate_subject"] = c.Subject
		c.Subject, c.Issuer, c.TokenID = b.Subject, b.Issuer, b.TokenID
	}
	c.Scopes = append(append([]string(nil), c.Scopes...), b.Scopes...)
	c.Roles = append(append([]string(nil), c.Roles...), b.Roles...)
	for k, v := range b.Claims {
		if c.Claims == nil {
			c.Claims = map[string]any{}
		}
		c.Claims[k] = v
	}
	if !b.ExpiresAt.IsZero() && (c.ExpiresAt.IsZero() || b.ExpiresAt.Before(c.ExpiresAt)) {
		c.ExpiresAt = b.ExpiresAt
	}
	return &c
}

// JWTOptions configure the jwt method of a route.
type JWTOptions struct {
	// Issuers accepted on the route.
	Issuers []*Issuer
	// Policy of the route.
	Policy Policy
	// CacheSize bounds the verified-token cache (0 disables it).
	CacheSize int
	// Now is the clock.
	Now func() time.Time
	// QueryParam, when set, also accepts the token from this query
	// parameter (an explicit opt-in; tokens in URLs leak).
	QueryParam string
	// Cookie, when set, also accepts the token from this cookie.
	Cookie string
	// Header, when set, reads the raw token from this header instead of
	// Authorization (no "Bearer" scheme).
	Header string
}

// JWTMethod verifies bearer JWTs from the Authorization header only; a
// request carrying a token in the query string is refused (it has leaked
// into logs and caches on its way).
type JWTMethod struct {
	byIss      map[string]*Issuer
	pol        Policy
	cache      *tokenCache
	queryParam string
	cookie     string
	header     string
}

// NewJWTMethod builds the jwt method of a route.
func NewJWTMethod(o JWTOptions) *JWTMethod {
	m := &JWTMethod{byIss: make(map[string]*Issuer, len(o.Issuers)), pol: o.Policy, queryParam: o.QueryParam, cookie: o.Cookie, header: http.CanonicalHeaderKey(o.Header)}
	for _, is := range o.Issuers {
		m.byIss[is.ID] = is
	}
	if o.CacheSize > 0 {
		m.cache = newTokenCache(o.CacheSize)
	}
	return m
}

// Name implements Method.
func (m *JWTMethod) Name() string { return "jwt" }

// Authenticate implements Method.
func (m *JWTMethod) Authenticate(r *http.Request, now time.Time) (*pipeline.Identity, *Failure) {
	raw, f := m.token(r)
	if f != nil {
		return nil, f
	}
	id, f := verifyRaw(r, raw, m.byIss, m.pol, m.cache, now)
	if f != nil {
		return nil, f
	}
	if id.Binding != "" && id.Binding != RequestBinding(r) {
		return nil, fail(ReasonClaims, "request binding does not match this request")
	}
	return id, nil
}

// RequestBinding computes the htb of a request as a service or a
// micro-gateway sees it: method, the original host (the X-Forwarded-Host
// the signing gateway set, lower case, no port; empty when it set none:
// it sets one only for a route's configured hosts) and the escaped path.
// It equals what the signing gateway bound.
func RequestBinding(r *http.Request) string {
	host := strings.ToLower(r.Header.Get("X-Forwarded-Host"))
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	path := r.URL.EscapedPath()
	if s := pipeline.ScopeOf(r.Context()); s != nil && s.Path != "" {
		path = s.Path
	}
	sum := sha256.Sum256([]byte(r.Method + "\n" + host + "\n" + path))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// token finds the bearer token: the Authorization header, or the route's
// opted-in query parameter or cookie. A token in the query string is
// refused unless the route opted in to that very parameter.
func (m *JWTMethod) token(r *http.Request) (string, *Failure) {
	if m.header != "" {
		vals := r.Header[m.header]
		switch {
		case len(vals) == 0 || vals[0] == "":
			return "", fail(ReasonMissing, "no %s header", m.header)
		case len(vals) > 1:
			return "", fail(ReasonMalformed, "several %s headers", m.header)
		}
		return vals[0], nil
	}
	if _, ok := r.Header["Authorization"]; ok || (m.queryParam == "" && m.cookie == "") {
		if tokenInQuery(r.URL.RawQuery) && m.queryParam == "" {
			return "", fail(ReasonMalformed, "token in the query string")
		}
		return bearer(r.Header)
	}
	if m.queryParam != "" {
		if vs := r.URL.Query()[m.queryParam]; len(vs) == 1 && vs[0] != "" {
			return vs[0], nil
		} else if len(vs) > 1 {
			return "", fail(ReasonMalformed, "several %s parameters", m.queryParam)
		}
	}
	if tokenInQuery(r.URL.RawQuery) && m.queryParam == "" {
		return "", fail(ReasonMalformed, "token in the query string")
	}
	if m.cookie != "" {
		if c, err := r.Cookie(m.cookie); err == nil && c.Value != "" {
			return c.Value, nil
		}
	}
	return "", fail(ReasonMissing, "no token")
}

// NewJWT is the stage of a route that accepts bearer JWTs only.
func NewJWT(o JWTOptions) pipeline.Middleware {
	return NewStage([]Method{NewJWTMethod(o)}, AnyOf, o.Now)
}

// Unauthorized is the 401 decision: the same body for every cause, with
// an RFC 6750 challenge; invalid says whether a credential was presented.
func Unauthorized(f *Failure, invalid bool) *pipeline.Error {
	challenge := `Bearer realm="rampart"`
	if invalid {
		challenge += `, error="invalid_token"`
	}
	e := pipeline.DenyErr(http.StatusUnauthorized, CodeUnauthorized, "valid credentials are required", f)
	e.Header = http.Header{"Www-Authenticate": {challenge}}
	return e
}

func verifyRaw(r *http.Request, raw string, byIss map[string]*Issuer, pol Policy, cache *tokenCache, now time.Time) (*pipeline.Identity, *Failure) {
	var key [32]byte
	if cache != nil {
		key = sha256.Sum256([]byte(raw))
		if id := cache.get(key, now); id != nil {
			return checkJTI(id, pol, now)
		}
	}
	t, f := parse(raw)
	if f != nil {
		return nil, f
	}
	iss, _ := t.Claims["iss"].(string)
	is := byIss[iss]
	if is == nil {
		return nil, fail(ReasonIssuer, "iss %q", iss)
	}
	id, f := is.verify(r.Context(), t, now, pol)
	if f != nil {
		return nil, f
	}
	if cache != nil {
		cache.put(key, id)
	}
	return checkJTI(id, pol, now)
}

// checkJTI applies revocation and the replay guard, on every request,
// cached or not.
func checkJTI(id *pipeline.Identity, pol Policy, now time.Time) (*pipeline.Identity, *Failure) {
	if pol.JTIs == nil {
		return id, nil
	}
	if pol.JTIs.Revoked(id, now) {
		return nil, fail(ReasonRevoked, "jti %q of %q revoked", id.TokenID, id.Subject)
	}
	if pol.SingleUse {
		if id.TokenID == "" {
			return nil, fail(ReasonClaims, "single-use route needs a jti")
		}
		if !pol.JTIs.FirstUse(id.TokenID, id.ExpiresAt, now) {
			return nil, fail(ReasonReplayed, "jti %q already used", id.TokenID)
		}
	}
	return id, nil
}

// bearer extracts the token of a single "Authorization: Bearer" header.
func bearer(h http.Header) (string, *Failure) {
	vals := h["Authorization"]
	switch len(vals) {
	case 0:
		return "", fail(ReasonMissing, "no Authorization header")
	case 1:
	default:
		return "", fail(ReasonMalformed, "several Authorization headers")
	}
	v := vals[0]
	if len(v) > MaxTokenLength+16 {
		return "", fail(ReasonTooLarge, "Authorization header of %d bytes", len(v))
	}
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fail(ReasonMissing, "not a Bearer credential")
	}
	tok = strings.TrimLeft(tok, " ")
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", fail(ReasonMalformed, "bad Bearer credential")
	}
	return tok, nil
}

// tokenInQuery reports a bearer token sent as a URL parameter (RFC 6750
// §2.3), which the gateway refuses.
func tokenInQuery(q string) bool {
	if q == "" {
		return false
	}
	for pair := range strings.SplitSeq(q, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if strings.EqualFold(k, "access_token") || strings.EqualFold(k, "id_token") {
			return true
		}
	}
	return false
}

// tokenCache maps a token's SHA-256 to its verified identity until the
// token expires, so a repeated token costs a hash and a map lookup.
type tokenCache struct {
	mu  sync.RWMutex
	m   map[[32]byte]*pipeline.Identity
	max int
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{m: make(map[[32]byte]*pipeline.Identity), max: max}
}

func (c *tokenCache) get(k [32]byte, now time.Time) *pipeline.Identity {
	c.mu.RLock()
	id := c.m[k]
	c.mu.RUnlock()
	if id == nil || !now.Before(id.ExpiresAt) {
		return nil
	}
	return id
}

func (c *tokenCache) put(k [32]byte, id *pipeline.Identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Evict about a tenth, arbitrary entries (map order is random).
		n := c.max / 10
		for k := range c.m {
			delete(c.m, k)
			if n--; n <= 0 {
				break
			}
		}
	}
	c.m[k] = id
}
