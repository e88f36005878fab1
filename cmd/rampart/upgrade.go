package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"

	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/upgrade"
)

// handOver is a run's side of upgrades without downtime: the sockets it
// took from the process it replaces, and its offer to its successor.
type handOver struct {
	path  string
	taken *upgrade.Taken
	offer *upgrade.Offer
	log   *slog.Logger
}

// takeOver receives the listening sockets of the gateway running at path
// (none: a first start) and gives them to g.
func takeOver(path string, g *gateway.Gateway, log *slog.Logger) (*handOver, error) {
	h := &handOver{path: path, log: log}
	if path == "" {
		return h, nil
	}
	t, err := upgrade.Take(path)
	if err != nil || t == nil {
		return h, err
	}
	log.Info("taking over the listening sockets of the running gateway", "pid", t.From, "sockets", len(t.Listeners))
	h.taken = t
	socks := map[string]net.Listener{}
	for n, ln := range t.Listeners {
		socks[n] = ln
	}
	g.Inherit(socks)
	return h, nil
}

// started reports the gateway's start to the process it replaces (which
// then drains and exits, or keeps serving if err) and to systemd, then
// offers the sockets to a successor.
func (h *handOver) started(g *gateway.Gateway, err error) error {
	if err != nil {
		if h.taken != nil {
			h.taken.Abort(err)
		}
		return err
	}
	if h.taken != nil {
		// The replaced process names this one systemd's main process.
		if err := h.taken.Ready(); err != nil {
			h.log.Warn("the replaced gateway did not confirm the hand-over", "error", err.Error())
		}
	} else {
		notifySystemd("READY=1")
	}
	if h.path == "" {
		return nil
	}
	o, err := upgrade.Listen(h.path, g.SocketFiles, func(err error) {
		h.log.Warn("upgrade not done; still serving", "error", err.Error())
	})
	if err != nil {
		return err
	}
	h.offer = o
	return nil
}

// handedOff delivers the successor's pid once it serves (never without an
// upgrade socket); under systemd, call succeeded with it.
func (h *handOver) handedOff() <-chan int {
	if h.offer == nil {
		return nil
	}
	return h.offer.HandedOff()
}

// spawn starts the successor: this binary's path (a new binary in its
// place is what runs) with the same arguments; it takes the sockets over.
func (h *handOver) spawn() {
	if h.offer == nil {
		h.log.Warn("SIGUSR2 ignored: run with --upgrade-socket to upgrade without downtime")
		return
	}
	cmd := exec.Command(selfPath(), os.Args[1:]...)
	cmd.Stdout, cmd.Stderr, cmd.Env = os.Stdout, os.Stderr, os.Environ()
	if err := cmd.Start(); err != nil {
		h.log.Error("starting the new gateway failed; still serving", "error", err.Error())
		return
	}
	h.log.Info("started the new gateway; it takes over when ready", "pid", cmd.Process.Pid)
	go func() { _ = cmd.Wait() }() // reaped if it fails before taking over
}

// succeeded tells systemd that the successor is the service's main
// process now (NotifyAccess=main accepts it from this, the current one).
func (h *handOver) succeeded(pid int) { notifySystemd(fmt.Sprintf("MAINPID=%d", pid)) }

// close stops offering.
func (h *handOver) close() {
	if h.offer != nil {
		h.offer.Close()
	}
}

// selfPath is the path this binary was started from (not /proc/self/exe,
// which still names the replaced file).
func selfPath() string {
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		return p
	}
	return os.Args[0]
}

// notifySystemd sends a notification to systemd (Type=notify units); a
// no-op elsewhere.
func notifySystemd(state string) {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}
