// Package clientip finds the real client address of a request. Forwarding
// headers are attacker-controlled unless they come from a configured trusted
// proxy, so they are honoured only from those peers (fail closed).
package clientip

import (
	"fmt"
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

// DefaultIPv6Prefix is the prefix length that keys an IPv6 client: one
// host can use every address of its /64, so counting addresses would let
// it multiply its limits and escape its bans.
const DefaultIPv6Prefix = 64

// Key is the one rule by which a client address keys state (rate-limit
// buckets, detector counters, bans, the dashboard's client tables): an
// IPv4 address (or an IPv4-mapped IPv6 address) is itself, an IPv6
// address is its prefix of v6Bits bits (DefaultIPv6Prefix when 0).
func Key(a netip.Addr, v6Bits int) netip.Prefix {
	a = a.Unmap()
	bits := a.BitLen()
	if a.Is6() {
		if v6Bits <= 0 {
			v6Bits = DefaultIPv6Prefix
		}
		bits = min(v6Bits, 128)
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{} // the invalid address: its own, empty key
	}
	return p
}

// KeyString formats a key: the address alone for a whole address (an IPv4
// client, an IPv6 /128), address/bits for a prefix.
func KeyString(k netip.Prefix) string {
	if !k.IsValid() {
		return ""
	}
	if k.IsSingleIP() {
		return k.Addr().String()
	}
	return k.String()
}

// ParseKey reads a client key as an operator writes it: an address (an
// IPv6 address stands for its prefix of v6Bits) or a prefix exactly as
// KeyString prints it. A prefix of another length names no key: state is
// never kept for it.
func ParseKey(s string, v6Bits int) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return Key(a, v6Bits), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	k := Key(p.Addr(), v6Bits)
	if p.Masked() != k {
		return netip.Prefix{}, fmt.Errorf("%s: clients are keyed by IPv4 address and by IPv6 /%d", s, k.Bits())
	}
	return k, nil
}
