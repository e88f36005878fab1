// Package testredis runs a private redis-server for a test, on a free
// loopback port, and stops it (by its own process, never by name) when
// the test ends. scripts/test.sh installs redis-server; without it a test
// is skipped, unless RAMPART_REQUIRE_REDIS=1 (CI), where that fails it.
package testredis

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Server is one running redis-server.
type Server struct {
	// Addr is host:port.
	Addr string
	cmd  *exec.Cmd
}

// Start runs redis-server on addr ("" for a free port) until the test
// ends; calling it again with a stopped server's Addr restarts it there.
func Start(t testing.TB, addr string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("RAMPART_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server not found")
		}
		t.Skip("redis-server not installed (scripts/test.sh installs it)")
	}
	if addr == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr().String()
		l.Close()
	}
	_, port, _ := net.SplitHostPort(addr)
	s := &Server{Addr: addr}
	s.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	WaitDial(t, addr, "redis-server")
	return s
}

// Stop kills the server (a crash, for the tests of a Redis going away).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// WaitDial waits until addr accepts connections, up to 5 s.
func WaitDial(t testing.TB, addr, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not start on %s", what, addr)
}
