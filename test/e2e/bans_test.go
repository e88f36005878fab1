package e2e

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/testredis"
)

// redisCLI runs redis-cli against addr.
func redisCLI(t *testing.T, addr string, args ...string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestBansLift: `rampart bans lift` removes a shared ban from the Redis of
// the config, for an IPv4 address and for an IPv6 address (its /64), and
// refuses a prefix state is never kept under.
func TestBansLift(t *testing.T) {
	addr := testredis.Start(t, "").Addr
	cfg := filepath.Join(t.TempDir(), "rampart.yaml")
	writeConfig(t, cfg, "127.0.0.1:1", "127.0.0.1:2", "rate_limiting:\n  redis: {addresses: [\""+addr+"\"]}\nabuse: {}\n")
	redisCLI(t, addr, "SET", "rampart:rl:abuse:ban:203.0.113.9", "9999999999 ban")
	redisCLI(t, addr, "SET", "rampart:rl:abuse:ban:2001:db8:1:2::/64", "9999999999 ban")
	for _, c := range []struct{ arg, key, said string }{
		{"203.0.113.9", "rampart:rl:abuse:ban:203.0.113.9", "ban on 203.0.113.9 lifted"},
		{"2001:db8:1:2::77", "rampart:rl:abuse:ban:2001:db8:1:2::/64", "ban on 2001:db8:1:2::/64 lifted"},
	} {
		out, err := exec.Command(binary, "bans", "lift", "--config", cfg, c.arg).CombinedOutput()
		if err != nil || !strings.Contains(string(out), c.said) {
			t.Fatalf("bans lift %s: %v %s", c.arg, err, out)
		}
		if got := redisCLI(t, addr, "EXISTS", c.key); got != "0" {
			t.Errorf("%s still in Redis after the lift", c.key)
		}
	}
	out, err := exec.Command(binary, "bans", "lift", "--config", cfg, "2001:db8::/48").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "keyed by") {
		t.Errorf("a /48 was accepted: %s", out)
	}
}
