package server

import (
	"context"
	"errors"
	"strings"
	"sync"
)

// Handshake failure reasons, counted per listener.
const (
	HandshakeTimeout    = "timeout"          // no complete ClientHello or handshake within the limit
	HandshakeVersion    = "protocol_version" // SSL 3.0, TLS 1.0/1.1 or an SSLv2-style hello
	HandshakeCipher     = "no_shared_cipher" // only suites Rampart does not offer
	HandshakeServerName = "unknown_server_name"
	HandshakeMalformed  = "malformed" // not TLS, or a hello that does not parse
	HandshakeOther      = "other"     // the client went away, a bad certificate, …
)

// failures counts a listener's failed handshakes by reason.
type failures struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (f *failures) add(err error) {
	r := handshakeReason(err)
	f.mu.Lock()
	if f.n == nil {
		f.n = map[string]uint64{}
	}
	f.n[r]++
	f.mu.Unlock()
}

func (f *failures) snapshot() map[string]uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]uint64, len(f.n))
	for k, v := range f.n {
		out[k] = v
	}
	return out
}

// handshakeReason classifies a server handshake error. crypto/tls has
// few typed errors, so its messages are matched; an unknown message
// counts as "other".
func handshakeReason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return HandshakeTimeout
	}
	if errors.Is(err, ErrUnknownServerName) {
		return HandshakeServerName
	}
	msg := err.Error()
	for _, m := range []struct{ sub, reason string }{
		{"unsupported versions", HandshakeVersion},
		{"SSLv2", HandshakeVersion},
		{"protocol version", HandshakeVersion},
		{"no cipher suite", HandshakeCipher},
		{"does not look like a TLS handshake", HandshakeMalformed},
		{"unexpected message", HandshakeMalformed},
		{"invalid", HandshakeMalformed},
		{"i/o timeout", HandshakeTimeout},
	} {
		if strings.Contains(msg, m.sub) {
			return m.reason
		}
	}
	return HandshakeOther
}
