package server

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/testpki"
)

// tlsListener serves "ok" over TLS with a certificate for api.rampart.test
// only (no default), a 500 ms handshake limit.
func tlsListener(t *testing.T) (*Listener, *testpki.CA) {
	ca := testpki.NewCA(t, "test ca")
	cert, key := ca.Server(t, "api.rampart.test").WriteFiles(t, t.TempDir(), "api")
	cfg := config.Listener{Name: "public", Address: "127.0.0.1:0",
		TLS: &config.ListenerTLS{Certificates: []config.CertificateFiles{{CertFile: cert, KeyFile: key}}},
		Limits: config.ListenerLimits{ReadHeaderTimeout: config.Duration(500 * time.Millisecond), ReadTimeout: config.Duration(5 * time.Second),
			WriteTimeout: config.Duration(5 * time.Second), IdleTimeout: config.Duration(5 * time.Second), MaxHeaderBytes: 1 << 16, MaxConnections: 100}}
	l, err := Listen(cfg, Options{Base: context.Background(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	go l.Serve()
	t.Cleanup(l.Close)
	return l, ca
}

func goodHandshake(t *testing.T, l *Listener, ca *testpki.CA) {
	t.Helper()
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{ServerName: "api.rampart.test", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("a good client after the bad ones: %v", err)
	}
	c.Close()
}

// Each bad ClientHello is refused, counted by reason, and the listener
// keeps serving good clients, including while a slow one holds a
// connection open.
func TestBadClientHellos(t *testing.T) {
	l, ca := tlsListener(t)
	addr := l.Addr().String()
	// A slow client: connects and sends half a hello, then nothing.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.Write(clientHello(0x0303, "api.rampart.test", []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256})[:20])

	cases := []struct {
		name   string
		conf   *tls.Config
		raw    []byte
		reason string
	}{
		{"TLS 1.0 only", &tls.Config{ServerName: "api.rampart.test", MaxVersion: tls.VersionTLS10, MinVersion: tls.VersionTLS10, InsecureSkipVerify: true}, nil, HandshakeVersion},
		{"TLS 1.1 only", &tls.Config{ServerName: "api.rampart.test", MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS11, InsecureSkipVerify: true}, nil, HandshakeVersion},
		{"CBC and RSA key exchange only", &tls.Config{ServerName: "api.rampart.test", MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true,
			CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256}}, nil, HandshakeCipher},
		{"unknown server name", &tls.Config{ServerName: "internal.corp.example", InsecureSkipVerify: true}, nil, HandshakeServerName},
		{"no server name", &tls.Config{InsecureSkipVerify: true}, nil, HandshakeServerName},
		{"SSLv2-compatible hello", nil, sslv2Hello(), HandshakeVersion},
		{"SNI with control characters", nil, clientHello(0x0303, "api\x00\x1b[31m.rampart.test", []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}), ""},
		{"SNI of 300 bytes", nil, clientHello(0x0303, strings.Repeat("a", 300)+".test", []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}), ""},
		{"plain HTTP on the TLS port", nil, []byte("GET / HTTP/1.1\r\nHost: api.rampart.test\r\n\r\n"), HandshakeMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := l.HandshakeFailures()
			if c.conf != nil {
				conn, err := tls.Dial("tcp", addr, c.conf)
				if err == nil {
					conn.Close()
					t.Fatal("handshake succeeded")
				}
			} else {
				refusedRaw(t, addr, c.raw)
			}
			waitCounted(t, l, before, c.reason)
			goodHandshake(t, l, ca)
		})
	}
	// The slow client is cut at the handshake limit, counted as a timeout.
	slow.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := slow.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("slow handshake not cut by the server: %v", err)
	}
	for deadline := time.Now().Add(2 * time.Second); l.HandshakeFailures()[HandshakeTimeout] == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timeout not counted: %v", l.HandshakeFailures())
		}
	}
	goodHandshake(t, l, ca)
	t.Logf("failed handshakes by reason: %v", l.HandshakeFailures())
}

// refusedRaw sends raw bytes and expects the server to end the
// connection without completing a handshake.
func refusedRaw(t *testing.T, addr string, raw []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(raw)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, _ := io.ReadAll(c)
	if len(b) > 0 && b[0] == 0x16 { // a handshake record: the server answered with a ServerHello
		t.Fatalf("the server answered the hello: % x", b[:min(len(b), 16)])
	}
}

func waitCounted(t *testing.T, l *Listener, before map[string]uint64, reason string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		after := l.HandshakeFailures()
		total := func(m map[string]uint64) (n uint64) {
			for _, v := range m {
				n += v
			}
			return
		}
		if total(after) > total(before) {
			if reason != "" && after[reason] == before[reason] {
				t.Fatalf("counted as %v, want %s", after, reason)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("failure not counted")
}

// clientHello builds a TLS ClientHello record by hand (so that its server
// name can be what no TLS library would send).
func clientHello(version uint16, sni string, suites []uint16) []byte {
	var body []byte
	body = binary.BigEndian.AppendUint16(body, version)
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // no session id
	body = binary.BigEndian.AppendUint16(body, uint16(2*len(suites)))
	for _, s := range suites {
		body = binary.BigEndian.AppendUint16(body, s)
	}
	body = append(body, 1, 0) // null compression
	var ext []byte
	// server_name
	name := []byte(sni)
	sn := binary.BigEndian.AppendUint16(nil, uint16(len(name)+3))
	sn = append(sn, 0)
	sn = binary.BigEndian.AppendUint16(sn, uint16(len(name)))
	sn = append(sn, name...)
	ext = appendExt(ext, 0, sn)
	ext = appendExt(ext, 10, []byte{0, 4, 0, 0x1d, 0, 0x17}) // groups: x25519, P-256
	ext = appendExt(ext, 11, []byte{1, 0})                   // point formats
	ext = appendExt(ext, 13, []byte{0, 4, 4, 3, 8, 4})       // signature algorithms
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)
	hs := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	rec := []byte{0x16, 3, 1, byte(len(hs) >> 8), byte(len(hs))}
	return append(rec, hs...)
}

func appendExt(b []byte, typ uint16, data []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

// sslv2Hello is an SSLv2-format ClientHello offering SSL 3.0 (as very
// old clients and scanners send).
func sslv2Hello() []byte {
	body := []byte{1, 3, 0, 0, 3, 0, 0, 0, 16, 0x00, 0x00, 0x0a} // type, version 3.0, cipher len 3, session 0, challenge 16, one suite
	body = append(body, make([]byte, 16)...)
	return append([]byte{0x80 | byte(len(body)>>8), byte(len(body))}, body...)
}

// Session tickets resume within the kept keys and no longer once their
// key has rotated out.
func TestSessionTicketRotation(t *testing.T) {
	l, ca := tlsListener(t)
	keys := &ticketKeys{conf: l.acc.tlsConf}
	keys.rotate()
	cache := tls.NewLRUClientSessionCache(8)
	dial := func() bool {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{ServerName: "api.rampart.test", RootCAs: ca.Pool(),
			ClientSessionCache: cache, MaxVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().DidResume
	}
	if dial() {
		t.Fatal("first connection resumed")
	}
	if !dial() {
		t.Fatal("second connection did not resume")
	}
	for range TicketKeys - 1 {
		keys.rotate()
	}
	if !dial() {
		t.Fatal("a ticket of a key still kept did not resume")
	}
	for range TicketKeys {
		keys.rotate()
	}
	if dial() {
		t.Fatal("a ticket whose key rotated out resumed")
	}
}
