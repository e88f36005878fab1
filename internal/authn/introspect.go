package authn

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/jws"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/pki"
)

// ReasonIntrospection is an introspection endpoint that failed to answer;
// the gateway fails closed.
const ReasonIntrospection = "authn.introspection_unavailable"

// ReasonInactive is a token the authorization server says is not active.
const ReasonInactive = "authn.inactive"

// IntrospectionOptions configure an RFC 7662 token introspection client.
type IntrospectionOptions struct {
	Name         string
	Endpoint     string
	ClientID     string
	ClientSecret string
	// Issuer, when set, must equal the response's "iss".
	Issuer string
	// Audiences, when set: the response's "aud" must hold one of them.
	Audiences []string
	Timeout   time.Duration
	// CacheTTL bounds how long an active answer is reused (never past the
	// token's exp); NegativeTTL how long an inactive one is.
	CacheTTL, NegativeTTL time.Duration
	CacheSize             int
	CAFile                string
}

// Introspector authenticates opaque bearer tokens by asking the
// authorization server (RFC 7662), with client authentication, bounded
// positive and negative caching, a timeout, and failing closed.
type Introspector struct {
	o      IntrospectionOptions
	client *http.Client
	mu     sync.Mutex
	cache  map[[32]byte]introEntry
}

type introEntry struct {
	id    *pipeline.Identity // nil: inactive
	until time.Time
}

// NewIntrospector builds an introspection client.
func NewIntrospector(o IntrospectionOptions) (*Introspector, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pool, err := pki.CAPool(o.CAFile)
		if err != nil {
			return nil, err
		}
		tlsConf.RootCAs = pool
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 10000
	}
	return &Introspector{
		o: o,
		client: &http.Client{
			Timeout:       o.Timeout,
			Transport:     &http.Transport{TLSClientConfig: tlsConf, TLSHandshakeTimeout: o.Timeout, MaxIdleConnsPerHost: 16},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		cache: map[[32]byte]introEntry{},
	}, nil
}

// Name implements Method.
func (in *Introspector) Name() string { return "introspection" }

// Close releases idle connections.
func (in *Introspector) Close() { in.client.CloseIdleConnections() }

// Authenticate implements Method.
func (in *Introspector) Authenticate(r *http.Request, now time.Time) (*pipeline.Identity, *Failure) {
	if tokenInQuery(r.URL.RawQuery) {
		return nil, fail(ReasonMalformed, "token in the query string")
	}
	tok, f := bearer(r.Header)
	if f != nil {
		return nil, f
	}
	if len(tok) > MaxTokenLength {
		return nil, fail(ReasonTooLarge, "token of %d bytes", len(tok))
	}
	key := sha256.Sum256([]byte(tok))
	in.mu.Lock()
	e, ok := in.cache[key]
	in.mu.Unlock()
	if ok && now.Before(e.until) {
		if e.id == nil {
			return nil, fail(ReasonInactive, "cached inactive answer")
		}
		return e.id, nil
	}
	id, until, f := in.ask(r.Context(), tok, now)
	if f != nil && f.Reason == ReasonIntrospection {
		return nil, f // not cached: the next request asks again
	}
	in.store(key, introEntry{id: id, until: until})
	return id, f
}

func (in *Introspector) store(k [32]byte, e introEntry) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.cache) >= in.o.CacheSize {
		n := in.o.CacheSize / 10
		for k := range in.cache {
			delete(in.cache, k)
			if n--; n <= 0 {
				break
			}
		}
	}
	in.cache[k] = e
}

func (in *Introspector) ask(ctx context.Context, tok string, now time.Time) (*pipeline.Identity, time.Time, *Failure) {
	ctx, cancel := context.WithTimeout(ctx, in.o.Timeout)
	defer cancel()
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.o.Endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, time.Time{}, fail(ReasonIntrospection, "%v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(in.o.ClientID), url.QueryEscape(in.o.ClientSecret))
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, time.Time{}, fail(ReasonIntrospection, "%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, fail(ReasonIntrospection, "status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, time.Time{}, fail(ReasonIntrospection, "%v", err)
	}
	m, err := jws.DecodeObject(body)
	if err != nil {
		return nil, time.Time{}, fail(ReasonIntrospection, "response: %v", err)
	}
	negUntil := now.Add(in.o.NegativeTTL)
	if active, _ := m["active"].(bool); !active {
		return nil, negUntil, fail(ReasonInactive, "inactive")
	}
	exp, hasExp, f := numericDate(m, "exp")
	if f != nil {
		return nil, negUntil, f
	}
	if hasExp && now.Unix() >= exp {
		return nil, negUntil, fail(ReasonExpired, "expired")
	}
	if in.o.Issuer != "" {
		if iss, _ := m["iss"].(string); iss != in.o.Issuer {
			return nil, negUntil, fail(ReasonIssuer, "iss %q", iss)
		}
	}
	if len(in.o.Audiences) > 0 {
		ok := false
		for _, a := range stringList(m["aud"], false) {
			ok = ok || slices.Contains(in.o.Audiences, a)
		}
		if !ok {
			return nil, negUntil, fail(ReasonAudience, "aud %v", m["aud"])
		}
	}
	id := &pipeline.Identity{Method: "introspection", Issuer: in.o.Issuer, Scopes: stringList(m["scope"], true)}
	if sub, ok := m["sub"].(string); ok {
		id.Subject = sub
	} else if u, ok := m["username"].(string); ok {
		id.Subject = u
	} else if c, ok := m["client_id"].(string); ok {
		id.Subject = c
	}
	if jti, ok := m["jti"].(string); ok {
		id.TokenID = jti
	}
	until := now.Add(in.o.CacheTTL)
	if hasExp {
		id.ExpiresAt = time.Unix(exp, 0)
		if id.ExpiresAt.Before(until) {
			until = id.ExpiresAt
		}
	}
	return id, until, nil
}
