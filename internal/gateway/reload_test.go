package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/observe"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

func reloadConfig(upA, upB, which string, extraRoute bool) string {
	s := `version: 1
listeners:
  - name: public
    address: 127.0.0.1:0
upstreams:
  - name: a
    allow_plaintext: true
    targets: [{url: "http://` + upA + `"}]
  - name: b
    allow_plaintext: true
    targets: [{url: "http://` + upB + `"}]
routes:
  - id: api
    prefix: /api
    upstream: ` + which + `
    public: true
`
	if extraRoute {
		s += "  - id: extra\n    path: /extra\n    upstream: a\n    public: true\n"
	}
	return s
}

// TestReloadUnderLoad: continuous traffic across 20 reloads sees zero
// failed requests, and every reload takes effect.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	upA := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "A") })
	upB := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "B") })
	g, addr := startGateway(t, reloadConfig(upA.hostPort(), upB.hostPort(), "a", false))
	// The listener address is fixed at start; reloads keep 127.0.0.1:0 in
	// the config, which is the same config value.
	client := &http.Client{Timeout: 5 * time.Second}
	stop := underLoad(4, 0, func() string {
		resp, err := client.Get("http://" + addr + "/api/x")
		if err != nil {
			return err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || (string(b) != "A" && string(b) != "B") {
			return fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		return ""
	})
	for i := 0; i < 20; i++ {
		which := "a"
		if i%2 == 0 {
			which = "b"
		}
		cfg, err := config.Parse([]byte(reloadConfig(upA.hostPort(), upB.hostPort(), which, i%3 == 0)), "reload.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Reload(cfg); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(25 * time.Millisecond)
		_, body := get(t, "http://"+addr+"/api/check", nil)
		if want := strings.ToUpper(which); body != want {
			t.Fatalf("reload %d: served by %q, want %q", i, body, want)
		}
	}
	r := stop()
	if r.failed != 0 {
		t.Fatalf("%d of %d requests failed across reloads: %v", r.failed, r.failed+r.ok, r.failures)
	}
	if r.ok < 100 {
		t.Fatalf("only %d requests ran", r.ok)
	}
	t.Logf("%d requests across 20 reloads, 0 failed", r.ok)
}

// TestBadReloadKeepsOldPlan: a config that fails to compile is rejected
// with its problems and the old plan keeps serving.
func TestBadReloadKeepsOldPlan(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	g, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	bad := baseConfig(up.hostPort(), "") + `  - id: broken
    path: /broken
    upstream: svc
    public: true
    retries: {attempts: 99}
`
	if _, err := config.Parse([]byte(bad), "bad.yaml"); err == nil {
		t.Fatal("bad config loaded")
	}
	// A config that loads but does not compile (a CA bundle that holds no
	// certificate; a missing one is refused at load, with its line).
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600)
	withCA := func(ca string) string {
		return strings.Replace(baseConfig(up.hostPort(), ""), "- url: http://"+up.hostPort(), "- url: https://"+up.hostPort()+"\n    tls: {ca_file: "+ca+"}", 1)
	}
	if _, err := config.Parse([]byte(withCA("/nonexistent/ca.pem")), "bad.yaml"); err == nil || !strings.Contains(err.Error(), "upstreams[0].tls.ca_file: /nonexistent/ca.pem does not exist") {
		t.Fatalf("missing CA file at load: %v", err)
	}
	cfgBad, err := config.Parse([]byte(withCA(notPEM)), "bad.yaml")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	err = g.Reload(cfgBad)
	if fe := config.FieldErrors(err); len(fe) != 1 || fe[0].Path != "upstreams[0]" || fe[0].Line == 0 || !strings.Contains(fe[0].Msg, notPEM) {
		t.Fatalf("compile error not located: %v", err)
	}
	if resp, _ := get(t, "http://"+addr+"/api/x", nil); resp.StatusCode != 200 {
		t.Fatalf("old plan not serving after a rejected reload: %d", resp.StatusCode)
	}
	unset := strings.Replace(baseConfig(up.hostPort(), ""), "    allow_plaintext: true\n", "    allow_plaintext: true\n    credential: {header: X-Key, value: \"${env:RAMPART_TEST_UNSET_VAR}\"}\n", 1)
	if _, err := config.Parse([]byte(unset), "bad.yaml"); err == nil || !strings.Contains(err.Error(), "RAMPART_TEST_UNSET_VAR") {
		t.Fatalf("unset secret not reported: %v", err)
	}
	changed := strings.Replace(baseConfig(up.hostPort(), ""), "address: 127.0.0.1:0", "address: 127.0.0.1:1", 1)
	cfg, err := config.Parse([]byte(changed), "moved.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(cfg); !errors.Is(err, ErrListenersChanged) {
		t.Fatalf("listener change: %v", err)
	}
	if resp, _ := get(t, "http://"+addr+"/api/x", nil); resp.StatusCode != 200 {
		t.Fatalf("old plan not serving: %d", resp.StatusCode)
	}
}

// TestReloadKeepsPoolState: an unchanged upstream keeps its pool (and so
// its breaker, ejections and health) across a reload.
func TestReloadKeepsPoolState(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, nil)
	g, _ := startGateway(t, baseConfig(up.hostPort(), ""))
	before := g.Plan().Pools().Get("svc")
	cfg, err := config.Parse([]byte(baseConfig(up.hostPort(), "  - id: more\n    path: /more\n    upstream: svc\n    public: true\n")), "r.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if g.Plan().Pools().Get("svc") != before {
		t.Fatal("unchanged upstream got a new pool")
	}
}

// TestDrainOnShutdown: Shutdown lets an in-flight request finish.
func TestDrainOnShutdown(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "finished")
	})
	g, addr := startGateway(t, baseConfig(up.hostPort(), ""))
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/api/slow")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != "finished" {
		t.Fatalf("in-flight request got %q", got)
	}
	if _, err := http.Get("http://" + addr + "/api/x"); err == nil {
		t.Fatal("new request accepted after shutdown")
	}
}

// TestObservabilityOutputsReload: a reload applies a changed access_log
// or security_events section: what is written after it goes to the new
// file and none to the old one; turning the output off stops it; no
// restart warning is logged for these sections.
func TestObservabilityOutputsReload(t *testing.T) {
	for _, c := range []struct {
		section, other, path, status string
	}{
		{"access_log", "security_events: {enabled: false}", "/api/x", "200"},   // every request is logged
		{"security_events", "access_log: {enabled: false}", "/nothing", "404"}, // a refusal is an event
	} {
		t.Run(c.section, func(t *testing.T) {
			up := newUpstream(t, nil)
			dir := t.TempDir()
			a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
			parse := func(section string) *config.Config {
				cfg, err := config.Parse([]byte(baseConfig(up.hostPort(), "")+c.section+": "+section+"\n"+c.other+"\n"), "outputs.yaml")
				if err != nil {
					t.Fatal(err)
				}
				return cfg
			}
			var logs lockedBuffer
			g, addr := startConfig(t, parse("{output: "+a+"}"), pipeline.Deps{Now: time.Now, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
			send := func(n string) string {
				t.Helper()
				path := c.path + "/" + n
				if got := statusLines(rawExchange(t, addr, "GET "+path+" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); len(got) != 1 || got[0] != c.status {
					t.Fatalf("%s: %v", path, got)
				}
				return `"` + path + `"`
			}
			read := func(p string) string { s, _ := os.ReadFile(p); return string(s) }
			first := send("first")
			waitUntil(t, "the first record in a.log", func() bool { return strings.Contains(read(a), first) })
			if err := g.Reload(parse("{output: " + b + "}")); err != nil {
				t.Fatal(err)
			}
			second := send("second")
			waitUntil(t, "the second record in b.log", func() bool { return strings.Contains(read(b), second) })
			if strings.Contains(read(a), second) {
				t.Error("a record after the reload reached the old output")
			}
			if err := g.Reload(parse("{enabled: false}")); err != nil {
				t.Fatal(err)
			}
			third := send("third")
			time.Sleep(2 * observe.FlushEvery)
			if strings.Contains(read(a)+read(b), third) {
				t.Error("a record was written after the output was turned off")
			}
			if strings.Contains(logs.String(), c.section+" changed") {
				t.Errorf("restart warning for a reloadable section:\n%s", logs.String())
			}
		})
	}
}

// TestRejectedReloadsCounted: every rejected reload is counted in
// rampart_config_reloads_total{result="failure"} and reported as one
// config.reload_rejected event, whichever stage rejected it: YAML, an
// unknown key, a bad reference, a listener change, a file gone. The old
// config keeps serving throughout.
func TestRejectedReloadsCounted(t *testing.T) {
	t.Setenv("RAMPART_ADMIN_TOKEN", adminToken)
	up := newUpstream(t, nil)
	good := baseConfig(up.hostPort(), "admin: {address: 127.0.0.1:0, token: '${env:RAMPART_ADMIN_TOKEN}'}\n")
	path := filepath.Join(t.TempDir(), "rampart.yaml")
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessLog.Enabled = new(bool)
	rec := &pipeline.EventRecorder{}
	g, addr := startConfig(t, cfg, pipeline.Deps{Now: time.Now, Events: rec})
	bad := []string{
		"version: 1\nlisteners: [\n",                                                 // YAML
		good + "unknown_key: 1\n",                                                    // unknown key
		strings.Replace(good, "upstream: svc", "upstream: nowhere", 1),               // bad reference
		strings.Replace(good, "address: 127.0.0.1:0\n", "address: 127.0.0.1:1\n", 1), // listener change
	}
	for i, b := range bad {
		if err := os.WriteFile(path, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := g.ReloadFile(path, "test"); err == nil {
			t.Fatalf("bad config %d accepted", i)
		}
		if c := statusLines(rawExchange(t, addr, "GET /api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")); len(c) != 1 || c[0] != "200" {
			t.Fatalf("after rejected reload %d: %v", i, c)
		}
	}
	os.Remove(path)
	if _, err := g.ReloadFile(path, "test"); err == nil {
		t.Fatal("a missing file reloaded")
	}
	_, _, body := adminGet(t, g.AdminAddr().String(), "/metrics", adminToken)
	if !strings.Contains(body, `rampart_config_reloads_total{result="failure"} 5`) {
		t.Errorf("failures not counted:\n%s", grepLines(body, "config_reloads"))
	}
	n := 0
	for _, e := range rec.Events() {
		if e.Name == "config.reload_rejected" {
			n++
			if e.Attrs["trigger"] != "test" || e.Reason == "" {
				t.Errorf("event %+v", e)
			}
		}
	}
	if n != 5 {
		t.Errorf("%d config.reload_rejected events, want 5", n)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
