package gateway

import (
	"bytes"
	"crypto/tls"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rampart-gw/rampart/internal/testpki"
)

// h2Exchange opens an HTTP/2 connection over TLS and sends one request
// with the given header fields, returning the response :status ("" if
// the stream was reset or nothing came back).
func h2Exchange(t *testing.T, addr string, ca *testpki.CA, fields []hpack.HeaderField) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatal("h2 not negotiated")
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range fields {
		_ = enc.WriteField(f)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return ""
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			hf, _ := dec.DecodeFull(f.HeaderBlockFragment())
			for _, h := range hf {
				if h.Name == ":status" {
					return h.Value
				}
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			return ""
		}
	}
}

// TestH2AuthorityHostConflict: over HTTP/2, a Host header that disagrees
// with :authority is refused (RFC 9113 §8.3.1), and nothing is forwarded.
func TestH2AuthorityHostConflict(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "h2-ca")
	cert, key := ca.Server(t).WriteFiles(t, dir, "server")
	up := newUpstream(t, nil)
	_, addr := startGateway(t, tlsGatewayConfig(up.hostPort(), cert, key))
	base := []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":path", Value: "/api/x"}, {Name: ":authority", Value: "gw.example"}}
	if got := h2Exchange(t, addr, ca, base); got != "200" {
		t.Fatalf("plain h2 request: status %q", got)
	}
	conflict := append(append([]hpack.HeaderField(nil), base...), hpack.HeaderField{Name: "host", Value: "admin.internal"})
	if got := h2Exchange(t, addr, ca, conflict); got != "400" {
		t.Fatalf(":authority/Host conflict: status %q, want 400", got)
	}
	traversal := []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":path", Value: "/api/%2e%2e/admin"}, {Name: ":authority", Value: "gw.example"}}
	if got := h2Exchange(t, addr, ca, traversal); got != "400" {
		t.Fatalf("h2 encoded traversal: status %q, want 400", got)
	}
	if n := len(up.received()); n != 1 {
		t.Fatalf("upstream received %d requests, want only the plain one", n)
	}
}
