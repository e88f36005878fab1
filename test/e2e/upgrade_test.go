package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/testpki"
)

// TestUpgradeWithoutDroppedRequests replaces the running gateway three
// times (twice by starting a new process, once by SIGUSR2) under
// continuous traffic over plain HTTP and TLS, with and without keep-alive:
// no request fails, no connection is reset, and each replaced process
// drains and exits 0.
func TestUpgradeWithoutDroppedRequests(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // requests are in flight at each hand-over
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	ca := testpki.NewCA(t, "upgrade test ca")
	cert, key := ca.Server(t, "api.rampart.test").WriteFiles(t, dir, "api")
	plain, secure := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
listeners:
  - {name: web, address: %s}
  - name: public
    address: %s
    tls: {cert_file: %s, key_file: %s}
upstreams: [{name: app, allow_plaintext: true, targets: [{url: "%s"}]}]
routes: [{id: app, prefix: /, upstream: app, public: true}]
`, plain, secure, cert, key, up.URL)), 0o600)
	sock := filepath.Join(dir, "upgrade.sock")
	args := []string{"run", "--config", cfg, "--watch=false", "--upgrade-socket", sock}
	// Output to files, not pipes: a successor started by the gateway
	// inherits its output, and exec's pipe copying would wait for it too.
	cur := startLogged(t, dir, args...)
	waitListening(t, plain)
	waitListening(t, secure)

	var ok, failed atomic.Int64
	var errMu sync.Mutex
	var errs []string
	var clients []func() error
	for _, c := range []struct {
		url       string
		keepAlive bool
	}{{"http://" + plain + "/", true}, {"http://" + plain + "/", false}, {"https://" + secure + "/", true}, {"https://" + secure + "/", false}} {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: !c.keepAlive,
			TLSClientConfig: &tls.Config{ServerName: "api.rampart.test", RootCAs: ca.Pool()}}}
		clients = append(clients, func() error {
			resp, err := client.Get(c.url)
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok" {
				return fmt.Errorf("status %d %q", resp.StatusCode, b)
			}
			return nil
		})
	}
	stop := make(chan struct{})
	var stopOnce sync.Once
	wait := repeat(len(clients), stop, func(i int) {
		if err := clients[i](); err != nil {
			failed.Add(1)
			errMu.Lock()
			errs = append(errs, fmt.Sprintf("%s client %d: %v", time.Now().Format("15:04:05.000000"), i, err))
			errMu.Unlock()
			return
		}
		ok.Add(1)
	})
	t.Cleanup(func() { stopOnce.Do(func() { close(stop) }); wait() })
	time.Sleep(300 * time.Millisecond)
	for round := 1; round <= 3; round++ {
		before, began := ok.Load(), time.Now()
		var next loggedProc
		if round == 3 {
			cur.cmd.Process.Signal(syscall.SIGUSR2) // the running gateway starts its successor
		} else {
			next = startLogged(t, dir, args...)
		}
		select {
		case <-cur.done:
		case <-time.After(20 * time.Second):
			stderr := cur.log()
			t.Fatalf("round %d: the replaced gateway did not exit\n%s", round, stderr)
		}
		exited := time.Now()
		stderr := cur.log()
		if cur.err != nil || !regexp.MustCompile(`the new gateway serves`).MatchString(stderr) {
			t.Fatalf("round %d: replaced gateway: %v\n%s", round, cur.err, stderr)
		}
		if round == 3 {
			m := regexp.MustCompile(`"msg":"started the new gateway; it takes over when ready","pid":(\d+)`).FindStringSubmatch(stderr)
			if m == nil {
				t.Fatalf("no successor started:\n%s", stderr)
			}
			pid, _ := strconv.Atoi(m[1])
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) }) // the test started it, through the gateway
		} else {
			cur = next
		}
		time.Sleep(300 * time.Millisecond)
		if ok.Load() <= before {
			t.Fatalf("round %d: no request served since the hand-over", round)
		}
		t.Logf("round %d (began %s, old exited by %s): handed over; %d requests so far, %d failed", round, began.Format("15:04:05.000000"), exited.Format("15:04:05.000000"), ok.Load(), failed.Load())
	}
	stopOnce.Do(func() { close(stop) })
	wait()
	if failed.Load() != 0 {
		logs, _ := filepath.Glob(filepath.Join(dir, "rampart-*.log"))
		for _, f := range logs {
			b, _ := os.ReadFile(f)
			t.Logf("%s:\n%s", filepath.Base(f), b)
		}
		t.Fatalf("%d of %d requests failed across three upgrades: %v", failed.Load(), ok.Load()+failed.Load(), errs[:min(len(errs), 10)])
	}
	t.Logf("%d requests across three upgrades, none failed", ok.Load())
}

// loggedProc is a gateway whose output goes to a file.
type loggedProc struct {
	*proc
	file string
}

func (p loggedProc) log() string {
	b, _ := os.ReadFile(p.file)
	return string(b)
}

var logSeq atomic.Int64

// startLogged starts the binary with its output in a file of dir.
func startLogged(t *testing.T, dir string, args ...string) loggedProc {
	t.Helper()
	file := filepath.Join(dir, fmt.Sprintf("rampart-%d.log", logSeq.Add(1)))
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &proc{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	launch(t, p)
	return loggedProc{proc: p, file: file}
}
