// Package upgrade hands a running gateway's listening sockets to its
// successor over a Unix socket, so that a new binary (or a restart with a
// new config) takes over without refusing or resetting a connection.
//
// The old process offers its sockets on a Unix socket only its own user
// may use (the peer's uid is checked). A new process started with the
// same socket path connects, receives every listening socket (SCM_RIGHTS)
// and starts serving on them: both processes now accept from the same
// kernel queues, so nothing queued is lost. When the new process is
// ready it says so; the old one then stops accepting, drains its
// requests in flight and exits, and the new one offers the sockets in
// turn. If the new process fails before it is ready, the old one keeps
// serving as if nothing happened.
//
// Why not SO_REUSEPORT: two sockets bound with it have separate accept
// queues, and connections waiting in the old socket's queue when it
// closes are reset. Handing over the one socket leaves one queue.
package upgrade

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// hello is what the old process sends with the sockets.
type hello struct {
	PID   int      `json:"pid"`
	Names []string `json:"names"`
}

// Message sizes: a hello is small; names are listener names.
const maxMessage = 64 << 10

// Offer serves the hand-off on a Unix socket.
type Offer struct {
	ln       *net.UnixListener
	files    func() (map[string]*os.File, error)
	handed   chan int // the successor's pid, once it is ready
	errs     func(error)
	closedLn chan struct{}
}

// Listen offers the sockets that files returns (called at each request,
// so that they are current) on a Unix socket at path, replacing a stale
// socket file. errs is told of failed hand-offs (the caller logs them).
func Listen(path string, files func() (map[string]*os.File, error), errs func(error)) (*Offer, error) {
	_ = os.Remove(path)
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("upgrade socket %s: %w", path, err)
	}
	// Only this user connects (and the peer's uid is checked as well).
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("upgrade socket %s: %w", path, err)
	}
	// The successor replaces the file; closing this listener must not
	// remove the successor's.
	ln.SetUnlinkOnClose(false)
	o := &Offer{ln: ln, files: files, handed: make(chan int, 1), errs: errs, closedLn: make(chan struct{})}
	go o.serve()
	return o, nil
}

// HandedOff delivers the successor's pid once it serves on the sockets:
// the caller then drains and exits.
func (o *Offer) HandedOff() <-chan int { return o.handed }

// Close stops offering (the socket file stays for a successor to replace).
func (o *Offer) Close() {
	select {
	case <-o.closedLn:
	default:
		close(o.closedLn)
		_ = o.ln.Close()
	}
}

func (o *Offer) serve() {
	for {
		c, err := o.ln.AcceptUnix()
		if err != nil {
			return
		}
		pid, err := o.handOff(c)
		c.Close()
		if err != nil {
			o.errs(err)
			continue
		}
		o.handed <- pid
		return
	}
}

// handOff sends the sockets to one peer and waits for it to be ready.
func (o *Offer) handOff(c *net.UnixConn) (int, error) {
	peer, err := peerCred(c)
	if err != nil {
		return 0, err
	}
	if int(peer.Uid) != os.Getuid() {
		return 0, fmt.Errorf("upgrade: refused a peer running as uid %d", peer.Uid)
	}
	files, err := o.files()
	if err != nil {
		return 0, err
	}
	h := hello{PID: os.Getpid()}
	var fds []int
	for name, f := range files {
		fd, err := rawFD(f)
		if err != nil {
			return 0, err
		}
		h.Names = append(h.Names, name)
		fds = append(fds, fd)
	}
	defer func() {
		for _, f := range files {
			f.Close() // duplicates: the sockets stay open here and there
		}
	}()
	b, _ := json.Marshal(h)
	if _, _, err := c.WriteMsgUnix(b, syscall.UnixRights(fds...), nil); err != nil {
		return 0, fmt.Errorf("upgrade: sending the sockets: %w", err)
	}
	// The successor compiles its config and starts: give it time, but not
	// forever.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil {
		return 0, fmt.Errorf("upgrade: the new process did not start (%w); still serving", err)
	}
	var ready struct {
		Ready bool   `json:"ready"`
		Error string `json:"error"`
	}
	if json.Unmarshal(buf[:n], &ready) != nil || !ready.Ready {
		return 0, fmt.Errorf("upgrade: the new process failed: %s; still serving", ready.Error)
	}
	// Stop offering before saying so, so that the successor can take the
	// socket path.
	o.Close()
	_, _ = c.Write([]byte(`{"ok":true}`))
	return int(peer.Pid), nil
}

// rawFD is f's descriptor. Not f.Fd(): that makes the descriptor
// blocking, and the mode belongs to the socket shared with the running
// listeners, whose accepts would then block and take connections after
// their listener closed.
func rawFD(f *os.File) (int, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var fd int
	err = raw.Control(func(d uintptr) { fd = int(d) })
	return fd, err
}

func peerCred(c *net.UnixConn) (*syscall.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Ucred
	var cerr error
	err = raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err == nil {
		err = cerr
	}
	return cred, err
}

// Taken are the sockets received from a running process.
type Taken struct {
	// From is the pid of the process that offered them.
	From int
	// Listeners by name (listener names, and "admin").
	Listeners map[string]net.Listener
	c         *net.UnixConn
}

// Take receives the sockets offered at path; nil and no error when no
// process offers any there (a first start).
func Take(path string) (*Taken, error) {
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil
		}
		return nil, fmt.Errorf("upgrade socket %s: %w", path, err)
	}
	buf, oob := make([]byte, maxMessage), make([]byte, syscall.CmsgSpace(64*4))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("upgrade: receiving the sockets: %w", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	fds, err := parseRights(oob[:oobn])
	var h hello
	if err == nil {
		err = json.Unmarshal(buf[:n], &h)
	}
	if err == nil && len(fds) != len(h.Names) {
		err = fmt.Errorf("%d sockets for %d names", len(fds), len(h.Names))
	}
	if err != nil {
		closeFDs(fds)
		c.Close()
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	t := &Taken{From: h.PID, Listeners: map[string]net.Listener{}, c: c}
	for i, name := range h.Names {
		f := os.NewFile(uintptr(fds[i]), name)
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			t.Abort(err)
			return nil, fmt.Errorf("upgrade: socket %s: %w", name, err)
		}
		t.Listeners[name] = ln
	}
	return t, nil
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		f, err := syscall.ParseUnixRights(&m)
		if err != nil {
			return nil, err
		}
		fds = append(fds, f...)
	}
	return fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		_ = syscall.Close(fd)
	}
}

// Ready tells the old process that this one serves: it stops accepting
// and drains. It returns once the old process stopped offering, so that
// this one may offer at the same path.
func (t *Taken) Ready() error {
	defer t.c.Close()
	if _, err := t.c.Write([]byte(`{"ready":true}`)); err != nil {
		return err
	}
	_ = t.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	_, err := t.c.Read(buf)
	return err
}

// Abort tells the old process this one failed (it keeps serving) and
// closes the sockets received that are not in use.
func (t *Taken) Abort(cause error) {
	b, _ := json.Marshal(map[string]any{"ready": false, "error": cause.Error()})
	_, _ = t.c.Write(b)
	t.c.Close()
}
