package authn

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/jws"
	"github.com/rampart-gw/rampart/internal/pki"
)

// KeySet finds the verification key for a token.
type KeySet interface {
	// Lookup returns the key with this kid (or, when kid is empty, the
	// only key bound to alg). It never contacts anything named by the
	// token; a remote set may refetch its own configured URL.
	Lookup(ctx context.Context, kid, alg string) (*jws.Key, *Failure)
}

// keyMap is an immutable set of keys.
type keyMap struct {
	byKID map[string]*jws.Key
	all   []*jws.Key
}

func newKeyMap(keys []*jws.Key) *keyMap {
	m := &keyMap{byKID: map[string]*jws.Key{}, all: keys}
	for _, k := range keys {
		if k.ID != "" {
			m.byKID[k.ID] = k
		}
	}
	return m
}

func (m *keyMap) find(kid, alg string) *jws.Key {
	if kid != "" {
		return m.byKID[kid]
	}
	var found *jws.Key
	for _, k := range m.all {
		if k.Alg == alg {
			if found != nil {
				return nil // ambiguous without a kid
			}
			found = k
		}
	}
	return found
}

// StaticKeys is a fixed key set (keys from files and secrets).
type StaticKeys struct{ m *keyMap }

// NewStaticKeys returns a key set of the given keys.
func NewStaticKeys(keys []*jws.Key) *StaticKeys { return &StaticKeys{m: newKeyMap(keys)} }

// Lookup implements KeySet.
func (s *StaticKeys) Lookup(_ context.Context, kid, alg string) (*jws.Key, *Failure) {
	if k := s.m.find(kid, alg); k != nil {
		return k, nil
	}
	return nil, fail(ReasonUnknownKID, "kid %q", kid)
}

// RemoteOptions configure a RemoteKeys.
type RemoteOptions struct {
	// JWKSURL is fetched for keys; empty with Discovery set.
	JWKSURL string
	// Discovery finds the JWKS URL from Issuer's OpenID configuration.
	Discovery bool
	// Issuer is the expected "issuer" of the discovery document.
	Issuer string
	// Allowed algorithms of the issuer.
	Allowed []string
	// Refresh is the background refresh interval when the server gives no
	// Cache-Control max-age; max-age is honoured within [MinRefresh,
	// 24h].
	Refresh time.Duration
	// MinRefetch bounds refetches triggered by unknown kids: at most one
	// per MinRefetch, so attackers cannot make the gateway hammer the IdP.
	MinRefetch time.Duration
	// Timeout of one fetch.
	Timeout time.Duration
	// CAFile, when set, is the only trust for the IdP's TLS certificate.
	CAFile string
	// AllowPlaintext permits http:// URLs (development IdPs on loopback).
	AllowPlaintext bool
	Log            *slog.Logger
	Now            func() time.Time
	// OnFetchError, when set, is told of every failed fetch (metrics).
	OnFetchError func()
}

// RemoteKeys is a JWKS fetched from the issuer, refreshed in the
// background, refetched (rate-limited) on an unknown kid, and kept when
// the IdP is unreachable: the last good set keeps serving.
type RemoteKeys struct {
	opt    RemoteOptions
	client *http.Client
	cur    atomic.Pointer[keyMap]

	mu          sync.Mutex // serialises fetches
	jwksURL     string
	lastAttempt time.Time
	fetches     atomic.Int64

	stop context.CancelFunc
	done chan struct{}
}

// MaxJWKSBytes bounds a fetched JWKS or discovery document.
const MaxJWKSBytes = 1 << 20

// NewRemoteKeys prepares a remote key set; Start begins fetching.
func NewRemoteKeys(opt RemoteOptions) (*RemoteKeys, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if opt.CAFile != "" {
		pool, err := pki.CAPool(opt.CAFile)
		if err != nil {
			return nil, err
		}
		tlsConf.RootCAs = pool
	}
	rk := &RemoteKeys{
		opt:     opt,
		jwksURL: opt.JWKSURL,
		client: &http.Client{
			Timeout: opt.Timeout,
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				TLSClientConfig:     tlsConf,
				TLSHandshakeTimeout: opt.Timeout,
				MaxIdleConnsPerHost: 2,
			},
			// Redirects are not followed: the configured URL is the
			// only place keys come from.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	rk.cur.Store(newKeyMap(nil))
	return rk, nil
}

// Fetches is the number of fetch attempts so far (tests and metrics).
func (r *RemoteKeys) Fetches() int64 { return r.fetches.Load() }

// Start fetches the keys now and then refreshes them in the background
// until Close.
func (r *RemoteKeys) Start() {
	if r.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		for {
			next := r.refresh(ctx)
			t := time.NewTimer(next)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops background refreshing.
func (r *RemoteKeys) Close() {
	if r.stop != nil {
		r.stop()
		<-r.done
	}
	r.client.CloseIdleConnections()
}

// Ready reports whether a key set has been loaded.
func (r *RemoteKeys) Ready() bool { return len(r.cur.Load().all) > 0 }

// refresh fetches once and returns when to refresh next.
func (r *RemoteKeys) refresh(ctx context.Context) time.Duration {
	r.mu.Lock()
	maxAge, err := r.fetchLocked(ctx)
	r.mu.Unlock()
	if err != nil {
		r.opt.Log.Warn("JWKS refresh failed; keeping the last good key set", "issuer", r.opt.Issuer, "error", err.Error())
		if r.opt.OnFetchError != nil {
			r.opt.OnFetchError()
		}
		if !r.Ready() {
			return time.Second // nothing to serve with yet: retry soon
		}
		return min(r.opt.Refresh, 30*time.Second)
	}
	if maxAge > 0 {
		return min(max(maxAge, r.opt.MinRefetch), 24*time.Hour)
	}
	return r.opt.Refresh
}

// Lookup implements KeySet.
func (r *RemoteKeys) Lookup(ctx context.Context, kid, alg string) (*jws.Key, *Failure) {
	if k := r.cur.Load().find(kid, alg); k != nil {
		return k, nil
	}
	// Unknown kid: perhaps the IdP rotated keys. Refetch the configured
	// URL, at most once per MinRefetch whatever the traffic.
	r.mu.Lock()
	defer r.mu.Unlock()
	if k := r.cur.Load().find(kid, alg); k != nil {
		return k, nil // another request's refetch found it
	}
	interval := r.opt.MinRefetch
	if !r.Ready() {
		interval = min(interval, time.Second)
	}
	if r.opt.Now().Sub(r.lastAttempt) < interval {
		if !r.Ready() {
			return nil, fail(ReasonKeysUnavail, "no key set loaded")
		}
		return nil, fail(ReasonUnknownKID, "kid %q", kid)
	}
	if _, err := r.fetchLocked(ctx); err != nil {
		r.opt.Log.Warn("JWKS refetch failed", "issuer", r.opt.Issuer, "error", err.Error())
		if r.opt.OnFetchError != nil {
			r.opt.OnFetchError()
		}
	}
	if k := r.cur.Load().find(kid, alg); k != nil {
		return k, nil
	}
	if !r.Ready() {
		return nil, fail(ReasonKeysUnavail, "no key set loaded")
	}
	return nil, fail(ReasonUnknownKID, "kid %q", kid)
}

func (r *RemoteKeys) fetchLocked(ctx context.Context) (time.Duration, error) {
	r.lastAttempt = r.opt.Now()
	r.fetches.Add(1)
	if r.jwksURL == "" && r.opt.Discovery {
		u, err := r.discover(ctx)
		if err != nil {
			return 0, err
		}
		r.jwksURL = u
	}
	body, maxAge, err := r.get(ctx, r.jwksURL)
	if err != nil {
		return 0, err
	}
	keys, skipped, err := jws.ParseJWKS(body, r.opt.Allowed)
	if err != nil {
		return 0, err
	}
	for _, s := range skipped {
		r.opt.Log.Info("JWKS key skipped", "issuer", r.opt.Issuer, "reason", s)
	}
	if len(keys) == 0 {
		return 0, errors.New("JWKS holds no usable key")
	}
	r.cur.Store(newKeyMap(keys))
	return maxAge, nil
}

func (r *RemoteKeys) discover(ctx context.Context) (string, error) {
	body, _, err := r.get(ctx, strings.TrimSuffix(r.opt.Issuer, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery document: %w", err)
	}
	if doc.Issuer != r.opt.Issuer {
		return "", fmt.Errorf("discovery document names issuer %q, want %q", doc.Issuer, r.opt.Issuer)
	}
	if err := config.CheckFetchURL(doc.JWKSURI, r.opt.AllowPlaintext); err != nil {
		return "", fmt.Errorf("jwks_uri: %w", err)
	}
	return doc.JWKSURI, nil
}

func (r *RemoteKeys) get(ctx context.Context, u string) ([]byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "rampart-jwks")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, 0, err
	}
	if len(body) > MaxJWKSBytes {
		return nil, 0, fmt.Errorf("GET %s: document larger than %d bytes", u, MaxJWKSBytes)
	}
	return body, maxAge(resp.Header.Get("Cache-Control")), nil
}

// maxAge reads max-age from Cache-Control (0 when absent or no-store).
func maxAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		if d == "no-store" || d == "no-cache" {
			return 0
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			if n, err := strconv.Atoi(strings.Trim(v, `"`)); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	return 0
}
