package upgrade

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func filesOf(t *testing.T, lns map[string]net.Listener) func() (map[string]*os.File, error) {
	return func() (map[string]*os.File, error) {
		out := map[string]*os.File{}
		for n, ln := range lns {
			f, err := ln.(*net.TCPListener).File()
			if err != nil {
				return nil, err
			}
			out[n] = f
		}
		return out, nil
	}
}

// The sockets arrive by name, serve connections queued before the hand-over,
// and the offer ends only once the successor is ready.
func TestHandOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.sock")
	web := listen(t)
	var failures []error
	o, err := Listen(path, filesOf(t, map[string]net.Listener{"web": web}), func(err error) { failures = append(failures, err) })
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v", st.Mode().Perm())
	}
	// A client connects before the hand-over: it waits in the queue.
	c, err := net.Dial("tcp", web.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	taken, err := Take(path)
	if err != nil || taken == nil || taken.From != os.Getpid() {
		t.Fatalf("take: %+v %v", taken, err)
	}
	ln := taken.Listeners["web"]
	if ln == nil || ln.Addr().String() != web.Addr().String() {
		t.Fatalf("listeners %v", taken.Listeners)
	}
	web.Close() // the old process stops accepting; the queue stays
	go func() {
		s, err := ln.Accept()
		if err == nil {
			s.Write([]byte("new"))
			s.Close()
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(c); string(b) != "new" {
		t.Fatalf("queued connection: %q", b)
	}
	select {
	case <-o.HandedOff():
		t.Fatal("handed off before the successor was ready")
	default:
	}
	if err := taken.Ready(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-o.HandedOff():
	case <-time.After(5 * time.Second):
		t.Fatal("no hand-off")
	}
	ln.Close()
}

// A successor that fails leaves the old process serving, offering again.
func TestFailedSuccessor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.sock")
	failed := make(chan error, 1)
	o, err := Listen(path, filesOf(t, map[string]net.Listener{"web": listen(t)}), func(err error) { failed <- err })
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	taken, err := Take(path)
	if err != nil {
		t.Fatal(err)
	}
	taken.Abort(errors.New("config does not compile"))
	select {
	case err := <-failed:
		t.Log(err)
	case <-time.After(5 * time.Second):
		t.Fatal("failure not reported")
	}
	again, err := Take(path)
	if err != nil || again == nil {
		t.Fatalf("not offering again: %v", err)
	}
	again.Ready()
	<-o.HandedOff()
}

// Nothing offered at the path: a first start.
func TestNothingToTake(t *testing.T) {
	taken, err := Take(filepath.Join(t.TempDir(), "none.sock"))
	if taken != nil || err != nil {
		t.Fatalf("%v %v", taken, err)
	}
}
