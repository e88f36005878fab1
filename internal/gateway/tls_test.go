package gateway

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/testpki"
)

func tlsGatewayConfig(up, cert, key string) string {
	return `version: 1
listeners:
  - name: secure
    address: 127.0.0.1:0
    tls:
      cert_file: ` + cert + `
      key_file: ` + key + `
upstreams:
  - name: svc
    allow_plaintext: true
    targets:
      - url: http://` + up + `
routes:
  - id: api
    prefix: /api
    upstream: svc
    public: true
`
}

func TestTLSListener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test-ca")
	cert, key := ca.Server(t).WriteFiles(t, dir, "server")
	up := newUpstream(t, nil)
	_, addr := startGateway(t, tlsGatewayConfig(up.hostPort(), cert, key))

	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}}
	resp, err := h2.Get("https://" + addr + "/api/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "ok /api/x" {
		t.Fatalf("proto %s body %q, want HTTP/2", resp.Proto, body)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("HSTS = %q", got)
	}
	if fwd := up.received()[0].Header.Get("X-Forwarded-Proto"); fwd != "https" {
		t.Errorf("X-Forwarded-Proto = %q", fwd)
	}

	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}}}}
	resp, err = h1.Get("https://" + addr + "/api/y")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("HTTP/1.1 over TLS: %s, HSTS %q", resp.Proto, resp.Header.Get("Strict-Transport-Security"))
	}
	// HTTP/1.1 over TLS still goes through the framing checks.
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	raw, _ := io.ReadAll(conn)
	conn.Close()
	if c := statusLines(string(raw)); len(c) != 1 || c[0] != "400" {
		t.Fatalf("CL.TE over TLS: %v", c)
	}

	refused := []struct {
		name string
		conf *tls.Config
	}{
		{"TLS 1.1", &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11}},
		{"CBC suites only", &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}}},
		{"RSA key exchange", &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}}},
	}
	for _, tc := range refused {
		if c, err := tls.Dial("tcp", addr, tc.conf); err == nil {
			c.Close()
			t.Errorf("%s: handshake succeeded", tc.name)
		}
	}
	// Plain HTTP on the TLS port is refused, never served.
	if resp := rawExchange(t, addr, "GET /api/x HTTP/1.1\r\nHost: gw\r\n\r\n"); strings.Contains(resp, "200 OK") {
		t.Fatal("plaintext request served on TLS listener")
	}
}

// TestUpstreamMTLS: the gateway verifies the service against the configured
// CA and presents its client certificate; a service that requires client
// certificates accepts it.
func TestUpstreamMTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "internal-ca")
	svc := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	svc.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t).TLS}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	svc.StartTLS()
	defer svc.Close()
	caFile := ca.WriteCA(t, dir, "ca")
	cert, key := ca.Client(t, "rampart-gateway").WriteFiles(t, dir, "client")
	cfg := `version: 1
listeners:
  - name: public
    address: 127.0.0.1:0
upstreams:
  - name: svc
    targets:
      - url: ` + svc.URL + `
    tls:
      ca_file: ` + caFile + `
      server_name: localhost
      cert_file: ` + cert + `
      key_file: ` + key + `
  - name: wrong-ca
    targets:
      - url: ` + svc.URL + `
routes:
  - id: api
    prefix: /api
    upstream: svc
    public: true
  - id: bad
    prefix: /bad
    upstream: wrong-ca
    public: true
`
	_, addr := startGateway(t, cfg)
	resp, body := get(t, "http://"+addr+"/api/x", nil)
	if resp.StatusCode != 200 || body != "hello rampart-gateway" {
		t.Fatalf("mTLS upstream: %d %q", resp.StatusCode, body)
	}
	// The system pool does not trust the test CA: refused, 502.
	if resp, _ := get(t, "http://"+addr+"/bad/x", nil); resp.StatusCode != 502 {
		t.Fatalf("untrusted upstream certificate: status %d, want 502", resp.StatusCode)
	}
}

// TestUpstreamIdentity: an upstream pinned by SPIFFE ID or by key accepts
// only the service with that identity; a service with a valid certificate
// from the same CA but another identity gets no request (502
// upstream.identity).
func TestUpstreamIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "mesh-ca")
	service := func(leaf *testpki.Leaf) (*httptest.Server, *atomic.Int32) {
		var hits atomic.Int32
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			io.WriteString(w, "orders")
		}))
		s.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
		s.StartTLS()
		t.Cleanup(s.Close)
		return s, &hits
	}
	ordersLeaf := ca.Workload(t, "spiffe://corp.example/orders")
	orders, _ := service(ordersLeaf)
	impostor, impostorHits := service(ca.Workload(t, "spiffe://corp.example/billing"))
	caFile := ca.WriteCA(t, dir, "ca")
	sum := sha256.Sum256(ordersLeaf.TLS.Leaf.RawSubjectPublicKeyInfo)
	pin := base64.StdEncoding.EncodeToString(sum[:])
	upstream := func(name, target, identity string) string {
		return "  - name: " + name + "\n    targets: [{url: " + target + "}]\n    tls: {ca_file: " + caFile + ", server_name: localhost, " + identity + "}\n"
	}
	cfg := "version: 1\nlisteners: [{name: public, address: 127.0.0.1:0}]\nupstreams:\n" +
		upstream("spiffe-ok", orders.URL, "spiffe_id: spiffe://corp.example/orders") +
		upstream("spiffe-wrong", impostor.URL, "spiffe_id: spiffe://corp.example/orders") +
		upstream("pin-ok", orders.URL, "spki_sha256: ["+pin+"]") +
		upstream("pin-wrong", impostor.URL, "spki_sha256: ["+pin+"]") +
		"routes:\n"
	for _, n := range []string{"spiffe-ok", "spiffe-wrong", "pin-ok", "pin-wrong"} {
		cfg += "  - {id: " + n + ", prefix: /" + n + ", upstream: " + n + ", public: true}\n"
	}
	_, addr := startGateway(t, cfg)
	for path, want := range map[string]int{"/spiffe-ok/x": 200, "/pin-ok/x": 200, "/spiffe-wrong/x": 502, "/pin-wrong/x": 502} {
		resp, body := get(t, "http://"+addr+path, nil)
		if resp.StatusCode != want || (want == 502 && !strings.Contains(body, "upstream.identity")) {
			t.Errorf("%s: %d %s, want %d", path, resp.StatusCode, body, want)
		}
	}
	if n := impostorHits.Load(); n != 0 {
		t.Fatalf("the impostor service got %d requests", n)
	}
}

// TestSNICertificates: a listener with certificates chosen by server
// name serves each to its names (a wildcard covers one label); a client
// naming no known host, or none, is refused while there is no default
// certificate, and served the default once a reload adds one; the
// connections of a reload that swaps certificates are not dropped.
func TestSNICertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "sni-ca")
	apiCert, apiKey := ca.Server(t, "api.example.test").WriteFiles(t, dir, "api")
	wildCert, wildKey := ca.Server(t, "*.internal.test").WriteFiles(t, dir, "wild")
	defCert, defKey := ca.Server(t, "default.example.test").WriteFiles(t, dir, "default")
	up := newUpstream(t, nil)
	listen := freeAddr(t)
	cfgFor := func(def string) string {
		return `version: 1
listeners:
  - name: public
    address: ` + listen + `
    tls:
` + def + `      certificates:
        - {cert_file: ` + apiCert + `, key_file: ` + apiKey + `}
        - {cert_file: ` + wildCert + `, key_file: ` + wildKey + `}
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
routes: [{id: api, prefix: /, upstream: svc, public: true}]
`
	}
	g, addr := startGateway(t, cfgFor(""))
	served := func(name string) (string, error) {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true}) // which certificate, not whether it verifies
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].DNSNames[1], nil // [0] is localhost
	}
	for name, want := range map[string]string{"api.example.test": "api.example.test", "db.internal.test": "*.internal.test"} {
		if got, err := served(name); err != nil || got != want {
			t.Errorf("SNI %s: %q %v, want %s", name, got, err, want)
		}
	}
	for _, name := range []string{"evil.example.test", "a.b.internal.test", ""} {
		if got, err := served(name); err == nil {
			t.Errorf("SNI %q served %s without a default certificate", name, got)
		}
	}
	// Under traffic, a reload adds a default certificate.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "api.example.test"}}}
	stop := underLoad(3, 2*time.Millisecond, func() string {
		resp, err := client.Get("https://" + addr + "/x")
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		return ""
	})
	time.Sleep(200 * time.Millisecond)
	cfg, err := config.Parse([]byte(cfgFor("      cert_file: "+defCert+"\n      key_file: "+defKey+"\n")), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if r := stop(); r.failed != 0 || r.ok == 0 {
		t.Fatalf("reload under traffic: %d ok, %d failed %v", r.ok, r.failed, r.failures)
	}
	if got, err := served("evil.example.test"); err != nil || got != "default.example.test" {
		t.Fatalf("unknown name after the reload: %q %v", got, err)
	}
}
