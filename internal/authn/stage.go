package authn

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// CodeUnauthorized is the one code clients see for any authentication
// failure; the precise reason is logged, never sent.
const CodeUnauthorized = "authn.unauthorized"

// JWTOptions configure the jwt stage of a route.
type JWTOptions struct {
	// Issuers accepted on the route.
	Issuers []*Issuer
	// Policy of the route.
	Policy Policy
	// CacheSize bounds the verified-token cache (0 disables it).
	CacheSize int
	// Now is the clock.
	Now func() time.Time
}

// NewJWT returns the stage that requires a valid bearer JWT from one of
// the route's issuers. Tokens are read from the Authorization header only;
// a request carrying a token in the query string is refused (it has
// leaked into logs and caches on its way).
func NewJWT(o JWTOptions) pipeline.Middleware {
	byIss := make(map[string]*Issuer, len(o.Issuers))
	for _, is := range o.Issuers {
		byIss[is.ID] = is
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	var cache *tokenCache
	if o.CacheSize > 0 {
		cache = newTokenCache(o.CacheSize)
	}
	pol := o.Policy
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			id, f := authenticate(r, byIss, pol, cache, now())
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

func authenticate(r *http.Request, byIss map[string]*Issuer, pol Policy, cache *tokenCache, now time.Time) (*pipeline.Identity, *Failure) {
	if tokenInQuery(r.URL.RawQuery) {
		return nil, fail(ReasonMalformed, "token in the query string")
	}
	raw, f := bearer(r.Header)
	if f != nil {
		return nil, f
	}
	var key [32]byte
	if cache != nil {
		key = sha256.Sum256([]byte(raw))
		if id := cache.get(key, now); id != nil {
			return id, nil
		}
	}
	t, f := parse(raw)
	if f != nil {
		return nil, f
	}
	iss, _ := t.claims["iss"].(string)
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
