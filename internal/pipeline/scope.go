package pipeline

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"time"
)

// Scope is the one request-scoped state object, placed in the request
// context once by the gateway. Stages read and extend it; nothing else about
// a request travels through context values.
type Scope struct {
	// Start is when the gateway began handling the request.
	Start time.Time
	// RequestID is the gateway's id for this request (generated, or kept
	// from a trusted proxy).
	RequestID string
	// ClientIP is the real client address: the TCP peer, or the right-most
	// untrusted X-Forwarded-For entry when the peer is a trusted proxy.
	ClientIP netip.Addr
	// ClientIPText is ClientIP formatted once for headers and logs.
	ClientIPText string
	// ClientKey is the key under which state about the client is kept
	// (rate-limit buckets, detector counters, bans): ClientIP for IPv4, its
	// configured prefix (a /64 by default) for IPv6 (clientip.Key).
	ClientKey netip.Prefix
	// Session is the keyed hash of the session cookie the abuse section
	// names ("" without one): a key the detectors may count by and
	// sanction. Never the cookie's value.
	Session string
	// PeerIP is the TCP peer address.
	PeerIP netip.Addr
	// TrustedPeer reports whether the TCP peer is a configured trusted proxy.
	TrustedPeer bool
	// TLS is the client connection's TLS state, nil on plaintext listeners.
	TLS *tls.ConnectionState
	// Listener is the name of the listener that accepted the request.
	Listener string
	// Host is the canonical request host (lower case, no port).
	Host string
	// Path is the normalised, escaped request path the router matched and
	// the upstream receives.
	Path string
	// ForwardedHost is the host the gateway tells the upstream it was
	// reached by (X-Forwarded-Host), canonical; empty unless the request's
	// host is one of the route's configured hosts. Assertions bind it.
	ForwardedHost string
	// RouteID is the matched route's id, empty before routing.
	RouteID string
	// Params holds template path parameters (decoded), nil when none.
	Params map[string]string
	// Identity is the authenticated caller, nil on public routes and
	// before authentication.
	Identity *Identity
	// Account is the account a login request names (routes with
	// abuse_account), for account-level abuse detection.
	Account string
	// Upstream is the upstream target (host:port) that served the request.
	Upstream string
	// UpstreamTime is the time spent waiting for upstream response
	// headers (all attempts).
	UpstreamTime time.Duration
	// BodyError records why reading the client's request body failed
	// (oversize, malformed chunking, client gone), so that a failed upstream
	// exchange is blamed on the client (400/413), not the upstream (502).
	BodyError error
	// Decision is the refusal that ended the request, nil on success.
	Decision *Error
	// Attrs are extra access-log attributes added by stages.
	Attrs []slog.Attr

	caller    string    // Caller's answer, made once
	callerFor *Identity // the identity it was made for (nil: the address)
}

type scopeKey struct{}

// WithScope returns ctx carrying s.
func WithScope(ctx context.Context, s *Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// ScopeOf returns the request scope, or nil outside the gateway.
func ScopeOf(ctx context.Context) *Scope {
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	return s
}

// Caller keys per-caller state (idempotency records, the race defence):
// the authenticated identity (issuer and subject), else the client key;
// "" outside the gateway (nil scope).
func (s *Scope) Caller() string {
	if s == nil {
		return ""
	}
	if s.caller != "" && s.callerFor == s.Identity {
		return s.caller // several stages ask; authentication changes the answer
	}
	s.callerFor = s.Identity
	if s.Identity != nil {
		s.caller = "id\x00" + s.Identity.Issuer + "\x00" + s.Identity.Subject
	} else {
		var buf [64]byte
		s.caller = string(s.ClientKey.AppendTo(append(buf[:0], "ip\x00"...)))
	}
	return s.caller
}

// Param returns a template path parameter of the matched route.
func (s *Scope) Param(name string) string { return s.Params[name] }

// Identity is a verified caller. It is set by the authenticate stage and
// read by authorization, rate limiting and logging. It is never modified
// after authentication.
type Identity struct {
	// Subject is the caller's id ("sub" of a token, a certificate's SAN).
	Subject string
	// Issuer is who vouched for the caller ("iss", a CA name).
	Issuer string
	// Method is how the caller authenticated: "jwt", "apikey", "mtls"...
	Method string
	// Scopes granted to the caller.
	Scopes []string
	// Roles of the caller, from the configured claim path.
	Roles []string
	// Claims are the selected token claims exposed to later stages.
	Claims map[string]any
	// TokenID is the token's "jti", if any.
	TokenID string
	// ExpiresAt is when the credential expires.
	ExpiresAt time.Time
	// Binding is the request binding ("htb") of an assertion token, checked
	// against every request that presents it.
	Binding string
}

// ClaimPath walks a dotted claim path (already split: "realm_access",
// "roles") through nested JSON objects and returns the value there, nil
// when any step is missing or not an object.
func ClaimPath(claims map[string]any, path []string) any {
	var cur any = claims
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// Key32 is a store's 32-byte form of a key that is usually a SHA-256
// (the idempotency and race keys): taken as is when 32 bytes long,
// decoded when 64 hex digits, hashed with SHA-256 otherwise. Stores keyed by it hold no pointer per key.
func Key32(s string) [32]byte {
	var k [32]byte
	if len(s) == 32 {
		copy(k[:], s) // already 32 bytes (a raw SHA-256)
		return k
	}
	if len(s) == 64 {
		if _, err := hex.Decode(k[:], []byte(s)); err == nil {
			return k
		}
	}
	return sha256.Sum256([]byte(s))
}
