package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/testacme"
)

// TestACME runs the gateway with ACME certificates from Pebble: both
// names of its routes are obtained (tls-alpn-01 on the TLS listener,
// http-01 on the plain one), requests are served with them, an unknown
// name is refused, and a restart serves the stored certificates without
// a new order.
func TestACME(t *testing.T) {
	web, public := freePort(t), freePort(t)
	httpPort, _ := strconv.Atoi(strings.Split(web, ":")[1])
	tlsPort, _ := strconv.Atoi(strings.Split(public, ":")[1])
	p := testacme.Start(t, testacme.Options{HTTPPort: httpPort, TLSPort: tlsPort})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rampart.yaml")
	t.Setenv("E2E_ACME_MASTER", strings.Repeat("ab", 32))
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
state: {master_key: '${env:E2E_ACME_MASTER}'}
listeners:
  - {name: web, address: %s}
  - name: public
    address: %s
    tls:
      acme: {email: ops@rampart.test, ca: %s, ca_root_file: %s}
upstreams: [{name: app, allow_plaintext: true, targets: [{url: "%s"}]}]
routes:
  - {id: app, prefix: /, upstream: app, public: true, listeners: [public], hosts: [api.rampart.test, www.rampart.test]}
`, web, public, p.Directory, p.RootFile, up.URL)), 0o600)
	if out, err := runCheck(cfg); err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	g := start(t, "run", "--config", cfg, "--watch=false")
	waitListening(t, public)
	client := acmeClient(p.RootPEM(), public)
	for _, host := range []string{"api.rampart.test", "www.rampart.test"} {
		body := getWithin(t, client, "https://"+host+"/", 30*time.Second, g)
		if body != "hello" {
			t.Fatalf("%s: %q", host, body)
		}
	}
	// A name the routes do not serve gets no certificate, and no default
	// one either.
	if _, err := tls.Dial("tcp", public, &tls.Config{ServerName: "internal.rampart.test", InsecureSkipVerify: true}); err == nil {
		t.Fatal("handshake for an unknown name succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "acme")); err != nil {
		t.Fatalf("storage next to the config: %v", err)
	}
	orders := p.Orders()
	g.cmd.Process.Signal(syscall.SIGTERM)
	<-g.done

	start(t, "run", "--config", cfg, "--watch=false")
	waitListening(t, public)
	client = acmeClient(p.RootPEM(), public)
	if body := getWithin(t, client, "https://api.rampart.test/", 10*time.Second, nil); body != "hello" || p.Orders() != orders {
		t.Fatalf("after restart: %q, orders %d → %d", body, orders, p.Orders())
	}
}

func runCheck(cfg string) ([]byte, error) {
	return exec.Command(binary, "check", "--config", cfg).CombinedOutput()
}

// acmeClient trusts only the test CA and sends every request to addr.
func acmeClient(root []byte, addr string) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

func getWithin(t *testing.T, c *http.Client, url string, within time.Duration, g *proc) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			if g != nil {
				_, stderr := g.output()
				t.Log(stderr)
			}
			t.Fatalf("%s: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
