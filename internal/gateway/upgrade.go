package gateway

import (
	"net"
	"os"
	"strings"

	"github.com/rampart-gw/rampart/internal/server"
)

// adminSocket names the admin listener's socket among the listeners'
// (a listener name cannot start with ':').
const adminSocket = ":admin"

// Inherit gives the gateway listening sockets handed over by the process
// it replaces, by listener name (and adminSocket); Start serves on them
// instead of binding. A socket whose address the config no longer has is
// closed and the address bound anew.
func (g *Gateway) Inherit(socks map[string]net.Listener) { g.inherited = socks }

// socket returns the inherited socket for a listener at addr, or nil.
func (g *Gateway) socket(name, addr string) net.Listener {
	ln := g.inherited[name]
	if ln == nil {
		return nil
	}
	delete(g.inherited, name)
	if !strings.HasSuffix(addr, ":0") && !sameAddr(ln.Addr().String(), addr) {
		g.deps.Log.Warn("handed-over socket not used: the listener's address changed", "listener", name,
			"was", ln.Addr().String(), "now", addr)
		ln.Close()
		return nil
	}
	return ln
}

// closeUninherited closes handed-over sockets no listener took.
func (g *Gateway) closeUninherited() {
	for name, ln := range g.inherited {
		g.deps.Log.Info("handed-over socket closed: the config has no such listener", "listener", name)
		ln.Close()
	}
	g.inherited = nil
}

// sameAddr compares a bound address with a configured one (":443" and
// "0.0.0.0:443" are the same).
func sameAddr(bound, configured string) bool {
	bh, bp, err1 := net.SplitHostPort(bound)
	ch, cp, err2 := net.SplitHostPort(configured)
	if err1 != nil || err2 != nil || bp != cp {
		return false
	}
	unspecified := func(h string) bool { ip := net.ParseIP(h); return h == "" || (ip != nil && ip.IsUnspecified()) }
	if unspecified(ch) {
		return unspecified(bh)
	}
	bip, cip := net.ParseIP(bh), net.ParseIP(ch)
	return bh == ch || (bip != nil && cip != nil && bip.Equal(cip))
}

// SocketFiles duplicates every listening socket (the listeners' and the
// admin listener's), to hand over to a successor process.
func (g *Gateway) SocketFiles() (map[string]*os.File, error) {
	out := map[string]*os.File{}
	fail := func(err error) (map[string]*os.File, error) {
		for _, f := range out {
			f.Close()
		}
		return nil, err
	}
	for _, l := range g.listeners {
		f, err := l.File()
		if err != nil {
			return fail(err)
		}
		out[l.Name] = f
	}
	if g.adminSock != nil {
		f, err := server.SocketFile(g.adminSock)
		if err != nil {
			return fail(err)
		}
		out[adminSocket] = f
	}
	return out, nil
}
