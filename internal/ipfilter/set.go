package ipfilter

import (
	"net/netip"

	"github.com/rampart-gw/rampart/internal/config"
)

// set is a set of prefixes, kept per prefix length: a lookup masks the
// address once per length present, so a blocklist of a hundred thousand
// entries costs a handful of map lookups.
type set struct {
	v4, v6 map[int]map[netip.Prefix]struct{} // by prefix length
}

// addText adds an address or prefix written in a list.
func (s *set) addText(v string) error {
	p, err := config.ParsePrefix(v)
	if err != nil {
		return err
	}
	s.add(p)
	return nil
}

// add adds p; an IPv4-mapped IPv6 prefix is added as the IPv4 prefix it
// stands for, and zones are dropped.
func (s *set) add(p netip.Prefix) {
	a := p.Addr().WithZone("")
	bits := p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	p = netip.PrefixFrom(a, bits).Masked()
	m := &s.v6
	if a.Is4() {
		m = &s.v4
	}
	if *m == nil {
		*m = map[int]map[netip.Prefix]struct{}{}
	}
	if (*m)[bits] == nil {
		(*m)[bits] = map[netip.Prefix]struct{}{}
	}
	(*m)[bits][p] = struct{}{}
}

// contains reports whether a prefix of the set holds ip (normalised).
func (s *set) contains(ip netip.Addr) bool {
	m := s.v6
	if ip.Is4() {
		m = s.v4
	}
	for bits, ps := range m {
		p, err := ip.Prefix(bits)
		if err != nil {
			continue
		}
		if _, ok := ps[p]; ok {
			return true
		}
	}
	return false
}

// clone copies the set (file lists are added to a copy of the static one).
func (s set) clone() set {
	var c set
	for _, m := range []map[int]map[netip.Prefix]struct{}{s.v4, s.v6} {
		for _, ps := range m {
			for p := range ps {
				c.add(p)
			}
		}
	}
	return c
}
