// Package clientip finds the real client address of a request. Forwarding
// headers are attacker-controlled unless they come from a configured trusted
// proxy, so they are honoured only from those peers (fail closed).
package clientip

import (
	"net/netip"
	"strings"
)

// Resolver decides client IPs for one listener. Immutable after New.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver trusting the given prefixes (nil trusts no one).
func New(trusted []netip.Prefix) *Resolver { return &Resolver{trusted: trusted} }

// Trusted reports whether a is a trusted proxy.
func (r *Resolver) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client address for a request from peer carrying the
// given X-Forwarded-For header values. When peer is untrusted, the header
// is ignored and the peer is the client. When it is trusted, the client is
// the right-most X-Forwarded-For entry that is not itself a trusted proxy:
// entries further left were written by parties we cannot vouch for. An
// unparsable entry ends the walk at the last trusted hop, so garbage in the
// header can never make the gateway pick an attacker-chosen address.
func (r *Resolver) Resolve(peer netip.Addr, xff []string) (client netip.Addr, trustedPeer bool) {
	peer = peer.Unmap()
	if len(r.trusted) == 0 || !r.Trusted(peer) {
		return peer, false
	}
	client = peer
	for i := len(xff) - 1; i >= 0; i-- {
		list := xff[i]
		for list != "" {
			var item string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				item, list = list[j+1:], list[:j]
			} else {
				item, list = list, ""
			}
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			a, ok := parseAddr(item)
			if !ok {
				return client, true
			}
			client = a
			if !r.Trusted(a) {
				return a, true
			}
		}
	}
	return client, true
}

// ForwardedFor extracts the for= addresses of RFC 7239 Forwarded header
// values, in order, as X-Forwarded-For style entries ("unknown" and
// obfuscated identifiers become entries that do not parse, which stops the
// walk like any garbage).
func ForwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(k, "for") {
					continue
				}
				val = strings.Trim(val, `"`)
				if strings.HasPrefix(val, "[") {
					if end := strings.IndexByte(val, ']'); end > 0 {
						val = val[1:end]
					}
				}
				out = append(out, val)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return []string{strings.Join(out, ", ")}
}

// parseAddr accepts an IP, optionally with a port ("1.2.3.4:5",
// "[::1]:5"), as some proxies write them.
func parseAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
