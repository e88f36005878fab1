package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/testpki"
)

// TestCertificateFilesWatched: a renewed certificate written over the
// files (as cert-manager or a cron job does, without touching the config)
// is served within seconds, with handshakes going on all the while and
// none failing.
func TestCertificateFilesWatched(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	ca := testpki.NewCA(t, "watch test ca")
	certDir := filepath.Join(dir, "tls")
	os.Mkdir(certDir, 0o700)
	first := ca.Server(t, "api.rampart.test")
	cert, key := first.WriteFiles(t, certDir, "api")
	addr := freePort(t)
	cfg := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
listeners:
  - name: public
    address: %s
    tls: {cert_file: %s, key_file: %s}
upstreams: [{name: app, allow_plaintext: true, targets: [{url: "%s"}]}]
routes: [{id: app, prefix: /, upstream: app, public: true}]
`, addr, cert, key, up.URL)), 0o600)
	start(t, "run", "--config", cfg)
	waitListening(t, addr)
	serial := func() (string, error) {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "api.rampart.test", RootCAs: ca.Pool()})
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
	}
	before, err := serial()
	if err != nil {
		t.Fatal(err)
	}
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	wait := repeat(3, stop, func(int) {
		if _, err := serial(); err != nil {
			failed.Add(1)
		} else {
			ok.Add(1)
		}
	})
	// The renewal: key, then certificate, each replaced by a rename.
	renewed := ca.Server(t, "api.rampart.test")
	tmp := t.TempDir()
	newCert, newKey := renewed.WriteFiles(t, tmp, "api")
	os.Rename(newKey, key)
	os.Rename(newCert, cert)
	deadline := time.Now().Add(10 * time.Second)
	var after string
	for time.Now().Before(deadline) {
		if after, _ = serial(); after != "" && after != before {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wait()
	if after == before || failed.Load() != 0 {
		t.Fatalf("renewed certificate served: %v; %d handshakes, %d failed", after != before, ok.Load(), failed.Load())
	}
	t.Logf("renewed certificate served after a file change; %d handshakes meanwhile, none failed", ok.Load())
}
