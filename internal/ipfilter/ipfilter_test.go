package ipfilter

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

func compile(t *testing.T, a *config.Access) *Rules {
	t.Helper()
	r, err := Compile(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRules: deny wins over allow, an allow list refuses everyone else,
// and every spelling of an address (IPv4-mapped IPv6, a zone id) meets
// the rule written for it.
func TestRules(t *testing.T) {
	r := compile(t, &config.Access{
		Allow: []string{"10.0.0.0/8", "2001:db8::/32", "::ffff:192.0.2.0/120"},
		Deny:  []string{"10.6.6.0/24", "2001:db8:bad::/48"},
	})
	for ip, want := range map[string]bool{
		"10.1.2.3":             true,
		"10.6.6.7":             false, // denied inside the allowed /8
		"::ffff:10.1.2.3":      true,  // IPv4-mapped: the IPv4 rules apply
		"::ffff:10.6.6.7":      false,
		"192.0.2.9":            true, // allowed by a rule written as a mapped prefix
		"198.51.100.1":         false,
		"2001:db8:1::1":        true,
		"2001:db8:bad::1":      false,
		"2001:db8:bad::1%eth0": false, // a zone changes nothing
		"fe80::1%eth0":         false,
		"2001:db9::1":          false,
		"::1":                  false,
	} {
		if got := r.Allowed(netip.MustParseAddr(ip)); got != want {
			t.Errorf("%s: allowed %v, want %v", ip, got, want)
		}
	}
	if r.Allowed(netip.Addr{}) {
		t.Error("an unknown client address passes an allow list")
	}
	if e := r.Check(netip.MustParseAddr("198.51.100.1")); e == nil || !strings.Contains(e.Error(), "not allowed") {
		t.Errorf("refusal: %v", e)
	}
	deny := compile(t, &config.Access{Deny: []string{"203.0.113.66"}})
	if !deny.Allowed(netip.Addr{}) || !deny.Allowed(netip.MustParseAddr("203.0.113.67")) || deny.Allowed(netip.MustParseAddr("203.0.113.66")) {
		t.Error("a deny list alone")
	}
	if r, _ := Compile(&config.Access{}, nil); r != nil || !r.Allowed(netip.MustParseAddr("1.2.3.4")) {
		t.Error("an empty section compiles to no rules, which allow everything")
	}
}

// TestListFiles: a list file's entries apply; an error names the file
// and line; a changed file is picked up while running, and a file that
// turns invalid keeps the lists in force and is reported.
func TestListFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "blocklist.txt")
	write := func(s string) {
		// A new file by rename, so the watcher sees a whole file.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("# a feed\n198.51.100.0/24\n\n203.0.113.66 # one host\n")
	var mu sync.Mutex
	var reported []error
	r, err := Compile(&config.Access{DenyFiles: []string{path}}, func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	r.poll = 20 * time.Millisecond
	r.Start()
	defer r.Close()
	if r.Allowed(netip.MustParseAddr("198.51.100.9")) || r.Allowed(netip.MustParseAddr("203.0.113.66")) || !r.Allowed(netip.MustParseAddr("203.0.113.67")) {
		t.Fatal("file entries not applied")
	}
	write("203.0.113.67\n")
	waitFor(t, func() bool {
		return !r.Allowed(netip.MustParseAddr("203.0.113.67")) && r.Allowed(netip.MustParseAddr("198.51.100.9"))
	})
	write("203.0.113.67\nnot-an-address\n")
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(reported) > 0 })
	mu.Lock()
	if !strings.Contains(reported[0].Error(), path+":2:") {
		t.Errorf("error does not name file and line: %v", reported[0])
	}
	mu.Unlock()
	if r.Allowed(netip.MustParseAddr("203.0.113.67")) {
		t.Error("an invalid file replaced the lists in force")
	}
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("10.0.0.0/8\n10.0.0.0/99\n"), 0o600)
	if _, err := Compile(&config.Access{AllowFiles: []string{bad}}, nil); err == nil || !strings.Contains(err.Error(), bad+":2:") {
		t.Errorf("bad file at compile: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkAllowedBlocklist: a client checked against a feed of 100,000
// addresses and prefixes.
func BenchmarkAllowedBlocklist(b *testing.B) {
	var a config.Access
	for i := 0; i < 100000; i++ {
		a.Deny = append(a.Deny, fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		if i%1000 == 0 {
			a.Deny = append(a.Deny, fmt.Sprintf("172.%d.0.0/16", i/1000%256))
		}
	}
	r, err := Compile(&a, nil)
	if err != nil {
		b.Fatal(err)
	}
	ip := netip.MustParseAddr("198.51.100.7")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !r.Allowed(ip) {
			b.Fatal("refused")
		}
	}
}
