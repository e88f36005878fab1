package clientip

import (
	"net/netip"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	r := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	tests := []struct {
		name    string
		peer    string
		xff     []string
		want    string
		trusted bool
	}{
		{"untrusted peer ignores spoofed XFF", "203.0.113.9", []string{"1.1.1.1"}, "203.0.113.9", false},
		{"trusted peer without XFF", "10.0.0.1", nil, "10.0.0.1", true},
		{"right-most untrusted wins", "10.0.0.1", []string{"6.6.6.6, 198.51.100.7, 10.0.0.2"}, "198.51.100.7", true},
		{"attacker prefix ignored", "10.0.0.1", []string{"1.2.3.4", "198.51.100.7"}, "198.51.100.7", true},
		{"garbage stops at last trusted hop", "10.0.0.1", []string{"1.2.3.4, not-an-ip, 10.0.0.3"}, "10.0.0.3", true},
		{"garbage at the right end", "10.0.0.1", []string{"1.2.3.4, <script>"}, "10.0.0.1", true},
		{"all trusted gives left-most", "10.0.0.1", []string{"10.0.0.5, 10.0.0.4"}, "10.0.0.5", true},
		{"port form", "10.0.0.1", []string{"198.51.100.7:4711"}, "198.51.100.7", true},
		{"mapped v4 peer", "::ffff:10.0.0.1", []string{"198.51.100.7"}, "198.51.100.7", true},
		{"v6 loopback trusted", "::1", []string{"2001:db8::7"}, "2001:db8::7", true},
	}
	for _, tc := range tests {
		got, trusted := r.Resolve(netip.MustParseAddr(tc.peer), tc.xff)
		if got.String() != tc.want || trusted != tc.trusted {
			t.Errorf("%s: got %s trusted=%v, want %s trusted=%v", tc.name, got, trusted, tc.want, tc.trusted)
		}
	}
	none := New(nil)
	if got, _ := none.Resolve(netip.MustParseAddr("10.0.0.1"), []string{"1.1.1.1"}); got.String() != "10.0.0.1" {
		t.Errorf("no trusted proxies: got %s", got)
	}
}

func TestForwardedFor(t *testing.T) {
	got := ForwardedFor([]string{`for=192.0.2.60;proto=http;by=203.0.113.43`, `For="[2001:db8:cafe::17]:4711", for=unknown`})
	if len(got) != 1 || got[0] != "192.0.2.60, 2001:db8:cafe::17, unknown" {
		t.Fatalf("%q", got)
	}
	r := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	if c, _ := r.Resolve(netip.MustParseAddr("10.0.0.1"), ForwardedFor([]string{"for=198.51.100.7"})); c.String() != "198.51.100.7" {
		t.Fatalf("Forwarded from a trusted proxy: %s", c)
	}
	if c, _ := r.Resolve(netip.MustParseAddr("10.0.0.1"), ForwardedFor([]string{"for=198.51.100.7, for=unknown"})); c.String() != "10.0.0.1" {
		t.Fatalf("unknown right-most entry: %s", c)
	}
}

func TestKey(t *testing.T) {
	for _, c := range []struct {
		in   string
		bits int
		want string
	}{
		{"192.0.2.7", 64, "192.0.2.7"},
		{"::ffff:192.0.2.7", 64, "192.0.2.7"},
		{"2001:db8:1:2:aaaa::1", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::9", 0, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::9", 48, "2001:db8:1::/48"},
		{"2001:db8::1", 128, "2001:db8::1"},
	} {
		if got := KeyString(Key(netip.MustParseAddr(c.in), c.bits)); got != c.want {
			t.Errorf("Key(%s, %d) = %s, want %s", c.in, c.bits, got, c.want)
		}
	}
	if KeyString(Key(netip.Addr{}, 64)) != "" {
		t.Error("the invalid address has a key")
	}
}

func TestParseKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"192.0.2.7/32", "192.0.2.7"},
		{"2001:db8:1:2::99", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::/64", "2001:db8:1:2::/64"},
	} {
		k, err := ParseKey(c.in, 64)
		if err != nil || KeyString(k) != c.want {
			t.Errorf("ParseKey(%s) = %s, %v; want %s", c.in, KeyString(k), err, c.want)
		}
	}
	for _, bad := range []string{"2001:db8::/48", "192.0.2.0/24", "nope", "2001:db8::/129"} {
		if _, err := ParseKey(bad, 64); err == nil {
			t.Errorf("ParseKey(%s) accepted a key state is never kept under", bad)
		}
	}
}
