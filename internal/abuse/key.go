package abuse

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/clientip"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Key is whom the guard counts signals for and sanctions: a client
// address (an IPv4 address, an IPv6 prefix), an authenticated identity
// (a token's subject, an API key's consumer, a certificate), or a session
// (a cookie the operator names, kept only as a keyed hash).
//
// Security: no key holds a secret. Identities are names the issuer
// vouched for; session values are hashed with SessionHasher's key before
// they reach the guard, so neither the tables, the events nor Redis ever
// see a session cookie.
type Key struct {
	Addr netip.Prefix // valid for an address key
	id   string       // "identity\x00ISSUER\x00SUBJECT" or "session\x00HASH"
}

// AddrKey is the key of a client address (clientip.Key already applied).
func AddrKey(p netip.Prefix) Key { return Key{Addr: p} }

// IdentityKey is the key of an authenticated caller.
func IdentityKey(issuer, subject string) Key {
	return Key{id: "identity\x00" + issuer + "\x00" + subject}
}

// SessionKey is the key of a session, from its hashed value
// (SessionHasher.Hash).
func SessionKey(hash string) Key {
	if hash == "" {
		return Key{}
	}
	return Key{id: "session\x00" + hash}
}

// IsZero reports the empty key (no address, no identity).
func (k Key) IsZero() bool { return !k.Addr.IsValid() && k.id == "" }

// Kind is "address", "identity" or "session".
func (k Key) Kind() string {
	if k.id == "" {
		return "address"
	}
	return k.id[:strings.IndexByte(k.id, 0)]
}

// String is the key as events, the dashboard, the admin API and Redis
// spell it: "203.0.113.7", "2001:db8::/64", "identity:SUBJECT@ISSUER"
// (each part path-escaped, "@" too) or "session:HASH". It contains no
// space and no "/" outside an address prefix, so it travels in
// space-separated messages and as one URL path segment.
func (k Key) String() string {
	if k.id == "" {
		return clientip.KeyString(k.Addr)
	}
	kind, rest, _ := strings.Cut(k.id, "\x00")
	if kind == "session" {
		return "session:" + rest
	}
	iss, sub, _ := strings.Cut(rest, "\x00")
	return "identity:" + keyEscape(sub) + "@" + keyEscape(iss)
}

func keyEscape(s string) string { return strings.ReplaceAll(url.PathEscape(s), "@", "%40") }

// Tag names k as the client of ev: the client address field for an
// address, the "client" attribute for an identity or a session.
func (k Key) Tag(ev *pipeline.Event) {
	if k.Addr.IsValid() {
		ev.ClientIP = k.String()
		return
	}
	if ev.Attrs == nil {
		ev.Attrs = map[string]string{}
	}
	ev.Attrs["client"] = k.String()
}

// ParseKey reads a key as String spells it; an address stands for its
// client key (IPv6 by v6Bits).
func ParseKey(s string, v6Bits int) (Key, error) {
	switch {
	case strings.HasPrefix(s, "session:"):
		h := strings.TrimPrefix(s, "session:")
		if _, err := hex.DecodeString(h); err != nil || h == "" {
			return Key{}, errors.New("a session key is session: and its hex hash")
		}
		return SessionKey(h), nil
	case strings.HasPrefix(s, "identity:"):
		sub, iss, ok := strings.Cut(strings.TrimPrefix(s, "identity:"), "@")
		u, err1 := url.PathUnescape(sub)
		i, err2 := url.PathUnescape(iss)
		if err := errors.Join(err1, err2); !ok || err != nil || i == "" || u == "" {
			return Key{}, errors.New("an identity key is identity:SUBJECT@ISSUER, each part path-escaped")
		}
		return IdentityKey(i, u), nil
	}
	p, err := clientip.ParseKey(s, v6Bits)
	return AddrKey(p), err
}

// SessionHasher hashes session cookie values into session keys.
type SessionHasher struct{ macs sync.Pool }

// NewSessionHasher hashes with key: derived from the state master key,
// so that every instance sharing Redis names a session alike, or random
// per process without one.
func NewSessionHasher(key []byte) *SessionHasher {
	h := &SessionHasher{}
	h.macs.New = func() any { return hmac.New(sha256.New, key) }
	return h
}

// Hash is the keyed hash of a session value (128 bits, hex), or "" for
// an empty value.
func (h *SessionHasher) Hash(value string) string {
	if h == nil || value == "" {
		return ""
	}
	m := h.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(value))
	var sum [sha256.Size]byte
	s := hex.EncodeToString(m.Sum(sum[:0])[:16])
	h.macs.Put(m)
	return s
}

// BannedErr is the refusal of a banned client (403 abuse.banned, with
// Retry-After to the ban's end).
func BannedErr(until, now time.Time) error {
	e := pipeline.Deny(http.StatusForbidden, CodeBanned, "client temporarily banned")
	e.Header = http.Header{"Retry-After": {strconv.Itoa(max(1, int(until.Sub(now).Seconds())))}}
	return e
}

// ThrottledErr is the refusal of a tightened client over its limit (429
// abuse.throttled).
func ThrottledErr(retry time.Duration) error {
	e := pipeline.Deny(http.StatusTooManyRequests, CodeThrottled, "client temporarily throttled")
	e.Header = http.Header{"Retry-After": {strconv.Itoa(max(1, int(retry.Seconds()+0.999)))}}
	return e
}

// Throttle is the tightened limit applied to a sanctioned key: it
// reports whether one more request is allowed, and when to retry.
type Throttle func(ctx context.Context, key string, now time.Time) (ok bool, retry time.Duration, err error)

// Hold holds a tightened key to its limit: nil while one more request
// is allowed, else 429 abuse.throttled (503 when the limit store fails).
// Addresses (at admission) and identities (after authentication) are
// held alike, each under its own bucket.
func Hold(ctx context.Context, throttle Throttle, k Key, now time.Time) error {
	allowed, retry, err := throttle(ctx, "abuse|"+k.String(), now)
	if err != nil {
		return pipeline.DenyErr(http.StatusServiceUnavailable, "ratelimit.unavailable", "rate limit store unavailable", err)
	}
	if !allowed {
		return ThrottledErr(retry)
	}
	return nil
}

// IdentityStage refuses an authenticated caller whose identity is
// sanctioned: 403 while banned; held to the tightened limit (Hold) while
// tightened. It runs right after authentication.
func IdentityStage(guard func() *Guard, throttle Throttle) pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			s := pipeline.ScopeOf(r.Context())
			g := guard()
			if g == nil || s.Identity == nil {
				return next(w, r)
			}
			until, tighten, ok := g.IdentitySanction(s.Identity.Issuer, s.Identity.Subject, s.Start)
			switch {
			case !ok:
				return next(w, r)
			case !tighten:
				return BannedErr(until, s.Start)
			}
			if err := Hold(r.Context(), throttle, IdentityKey(s.Identity.Issuer, s.Identity.Subject), s.Start); err != nil {
				return err
			}
			return next(w, r)
		}
	}
}
