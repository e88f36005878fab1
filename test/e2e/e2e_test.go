// Package e2e drives the built rampart binary as a user would: quickstart,
// check, run with reloads by SIGHUP and by file change, and SIGTERM drain.
package e2e

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rampart-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "rampart")
	build := exec.Command("go", "build", "-trimpath", "-o", binary, "../../cmd/rampart") // as releases are built
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		panic("build rampart: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a running rampart process with its output captured.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	p.cmd.Stdout = lockedWriter{&p.mu, &p.stdout}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	launch(t, p)
	return p
}

// launch starts p's command, and kills it at the end of the test if it
// is still running.
func launch(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// repeat calls fn in n goroutines, each until stop is closed (or a
// bound of 200,000 calls); the returned wait waits for them.
func repeat(n int, stop <-chan struct{}, fn func(worker int)) (wait func()) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200000 {
				select {
				case <-stop:
					return
				default:
				}
				fn(i)
			}
		}()
	}
	return wg.Wait
}

func (p *proc) output() (string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String(), p.stderr.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// bearerGet sends a GET with an optional bearer token and returns the
// status.
func bearerGet(t *testing.T, url, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitListening(t *testing.T, addr string) {
	waitFor(t, addr+" to listen", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func do(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func rawGet(t *testing.T, addr, target string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, addr)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

// guideRevocation follows the guide's admin API step: a generated master
// key, every token of alice revoked (401 at once), kept encrypted in the
// state directory, lifted again.
// guidePosture: the grade the guide prints is the one the admin API's
// posture reports and the one `rampart audit --quickstart` gives.
func guidePosture(t *testing.T, admin, guide string) {
	t.Helper()
	printed := regexp.MustCompile(`Audit of this demo config: grade ([A-F]) \((\d+)/100\)`).FindStringSubmatch(guide)
	adminTok := regexp.MustCompile(`Admin token \(sign in with it; new at every start\): ([0-9a-f]{64})`).FindStringSubmatch(guide)
	if printed == nil || adminTok == nil || !strings.Contains(guide, "/api/v1/posture") || !strings.Contains(guide, " audit --quickstart") {
		t.Fatalf("the guide shows no audit:\n%s", guide)
	}
	req, _ := http.NewRequest("GET", "http://"+admin+"/api/v1/posture", nil)
	req.Header.Set("Authorization", "Bearer "+adminTok[1])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var posture struct {
		Report struct {
			Grade     string
			Score     int
			Practices []struct{ Practice, Grade string }
			Findings  []struct{ Rule string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&posture); err != nil || resp.StatusCode != 200 {
		t.Fatalf("posture: %d %v", resp.StatusCode, err)
	}
	r := posture.Report
	if r.Grade != printed[1] || fmt.Sprint(r.Score) != printed[2] || len(r.Practices) != 8 || len(r.Findings) == 0 {
		t.Errorf("posture %s (%d), %d practices, %d findings; the guide says %s (%s)", r.Grade, r.Score, len(r.Practices), len(r.Findings), printed[1], printed[2])
	}
	out, _ := exec.Command(binary, "audit", "--quickstart", "--format", "json").Output()
	var cli struct{ Grade string }
	if err := json.Unmarshal(out, &cli); err != nil || cli.Grade != r.Grade {
		t.Errorf("rampart audit --quickstart: %q %v, the running quickstart: %s", cli.Grade, err, r.Grade)
	}
}

func guideRevocation(t *testing.T, base, admin, token, guide, stateDir string) {
	t.Helper()
	if !strings.Contains(guide, "Generated a master key") || !strings.Contains(guide, filepath.Join(stateDir, "master.key")) {
		t.Errorf("the guide does not say it generated the master key in %s:\n%s", stateDir, guide)
	}
	adminTok := regexp.MustCompile(`Admin token \(sign in with it; new at every start\): ([0-9a-f]{64})`).FindStringSubmatch(guide)
	issuer := regexp.MustCompile(`"issuer":"([^"]+)","subject":"alice"`).FindStringSubmatch(guide)
	if adminTok == nil || issuer == nil {
		t.Fatalf("guide lacks the revocation step:\n%s", guide)
	}
	call := func(method, url, body string) int {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminTok[1])
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	api := "http://" + admin + "/api/v1/revocations"
	if c := call("POST", api, `{"issuer":"`+issuer[1]+`","subject":"alice","for":"1h"}`); c != 201 {
		t.Fatalf("revoke alice: %d", c)
	}
	if c := bearerGet(t, base+"/orders/7", token); c != 401 {
		t.Errorf("alice's token after the revocation: %d", c)
	}
	raw, err := os.ReadFile(filepath.Join(stateDir, "runtime.state"))
	if err != nil || strings.Contains(string(raw), "alice") || !strings.HasPrefix(string(raw), "RAMPART") {
		t.Errorf("runtime state not kept encrypted: %v %q", err, raw)
	}
	if c := call("DELETE", api+"?issuer="+url.QueryEscape(issuer[1])+"&subject=alice", ""); c != 204 {
		t.Fatalf("lift: %d", c)
	}
	if c := bearerGet(t, base+"/orders/7", token); c != 200 {
		t.Errorf("alice's token after the lift: %d", c)
	}
}

// TestQuickstartGuide runs `rampart quickstart` and performs every request
// its printed guide suggests, checking that each shows what it says.
func TestQuickstartGuide(t *testing.T) {
	addr, admin := freePort(t), freePort(t)
	stateHome := t.TempDir()
	t.Setenv("XDG_STATE_HOME", stateHome)
	p := start(t, "quickstart", "--addr", addr, "--admin", admin)
	waitListening(t, addr)
	waitListening(t, admin)
	base := "http://" + addr
	stdout, _ := p.output()
	for _, want := range []string{"curl -i " + base + "/hello", "/echo/../admin", "%2e%2e", binary + " traffic --target " + base, base + "/api-docs/"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("guide lacks %q:\n%s", want, stdout)
		}
	}
	if code, _, body := do(t, "GET", base+"/api-docs/openapi.json"); code != 200 || !strings.Contains(body, `"/orders/{id}"`) || strings.Contains(body, `"/admin"`) {
		t.Errorf("the quickstart's API document: %d %.300s", code, body)
	}
	if code, _, body := do(t, "GET", base+"/api-docs/"); code != 200 || !strings.Contains(body, "swagger-ui") {
		t.Errorf("the quickstart's docs portal: %d", code)
	}
	if code, _, body := do(t, "GET", base+"/hello"); code != 200 || !strings.Contains(body, "hello from the demo upstream") {
		t.Errorf("/hello: %d %s", code, body)
	}
	if code, _, body := do(t, "GET", base+"/users/42"); code != 200 || !strings.Contains(body, `"id": "42"`) {
		t.Errorf("/users/42: %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", base+"/echo", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Real-IP", "6.6.6.6")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var echo struct{ Headers map[string]string }
	json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if echo.Headers["X-Forwarded-For"] != "127.0.0.1" || echo.Headers["X-Real-Ip"] != "127.0.0.1" || echo.Headers["X-Request-Id"] == "" {
		t.Errorf("echo headers: %v", echo.Headers)
	}
	code, hdr, body := do(t, "GET", base+"/admin")
	if code != 404 || hdr.Get("Content-Type") != "application/problem+json" || strings.Contains(body, "secret") {
		t.Errorf("/admin: %d %s", code, body)
	}
	if line := rawGet(t, addr, "/echo/../admin"); !strings.Contains(line, " 404 ") {
		t.Errorf("/echo/../admin: %q", line)
	}
	if line := rawGet(t, addr, "/echo/%2e%2e/admin"); !strings.Contains(line, " 400 ") {
		t.Errorf("encoded traversal: %q", line)
	}
	if code, hdr, _ := do(t, "DELETE", base+"/hello"); code != 405 || hdr.Get("Allow") != "GET, HEAD" {
		t.Errorf("DELETE /hello: %d Allow=%q", code, hdr.Get("Allow"))
	}
	// Authentication: the printed tokens do what the guide says.
	token := regexp.MustCompile(`TOKEN=(\S+)`).FindStringSubmatch(stdout)
	wrong := regexp.MustCompile(`Bearer (ey\S+)"`).FindStringSubmatch(stdout)
	if token == nil || wrong == nil {
		t.Fatalf("guide lacks tokens:\n%s", stdout)
	}
	authGet := func(tok string) int { return bearerGet(t, base+"/orders/7", tok) }
	if c := authGet(""); c != 401 {
		t.Errorf("/orders/7 without a token: %d", c)
	}
	if c := authGet(token[1]); c != 200 {
		t.Errorf("/orders/7 with the printed token: %d", c)
	}
	if c := authGet(wrong[1]); c != 401 {
		t.Errorf("/orders/7 with the other-audience token: %d", c)
	}
	guidePractices(t, base, stdout)
	guideRevocation(t, base, admin, token[1], stdout, filepath.Join(stateHome, "rampart", "quickstart"))
	guidePosture(t, admin, stdout)
	// The JSON access log is on stdout, one parseable line per request.
	waitFor(t, "access log lines", func() bool {
		out, _ := p.output()
		return strings.Count(out, `"msg":"access"`) >= 10
	})
	out, _ := p.output()
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") || strings.Contains(line, `"log":"security"`) {
			continue // security events are checked below
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("access log line is not JSON: %q", line)
			continue
		}
		for _, k := range []string{"time", "request_id", "method", "host", "path", "route", "status", "duration_ms", "bytes", "client_ip"} {
			if _, ok := m[k]; !ok {
				t.Errorf("access log line lacks %q: %s", k, line)
			}
		}
		if _, ok := m["code"]; ok && m["status"].(float64) < 400 {
			t.Errorf("access log line of a served request with a code: %s", line)
		}
		if route, _ := m["route"].(string); strings.HasPrefix(route, "rampart.") {
			continue // the gateway's own answers (its API document, the JWKS)
		}
		if _, ok := m["upstream"]; !ok && m["code"] == nil {
			t.Errorf("access log line: neither forwarded nor refused: %s", line)
		}
	}
	// The refusals above are on the security event stream.
	if !strings.Contains(out, `"log":"security","event":"refusal","stage":"router","code":"router.not_found"`) {
		t.Errorf("no security event for the 404 in:\n%s", out)
	}

	// The dashboard and metrics: the guide prints the URL and a token.
	dash := regexp.MustCompile(`Live security dashboard: (http://\S+/dashboard/)`).FindStringSubmatch(stdout)
	adminTok := regexp.MustCompile(`Admin token \(sign in with it; new at every start\): ([0-9a-f]{64})`).FindStringSubmatch(stdout)
	if dash == nil || adminTok == nil || !strings.Contains(dash[1], admin) {
		t.Fatalf("guide lacks the dashboard URL or admin token:\n%s", stdout)
	}
	if code, _, body := do(t, "GET", dash[1]); code != 200 || !strings.Contains(body, "Admin token") {
		t.Errorf("dashboard sign-in page: %d", code)
	}
	metrics := func() string {
		req, _ := http.NewRequest("GET", "http://"+admin+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+adminTok[1])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("metrics with the printed token: %d", resp.StatusCode)
		}
		return string(b)
	}
	if m := metrics(); !strings.Contains(m, `rampart_requests_total{method="GET",route="hello",status_class="2xx"}`) {
		t.Errorf("metrics lack the /hello requests")
	}

	// The traffic generator the guide suggests: attacks get blocked and
	// attackers banned.
	tr := start(t, "traffic", "--target", base, "--duration", "16s", "--rate", "60")
	select {
	case <-tr.done:
	case <-time.After(30 * time.Second):
		t.Fatal("rampart traffic did not stop after its duration")
	}
	trOut, _ := tr.output()
	if !strings.Contains(trOut, "done:") {
		t.Errorf("traffic output: %s", trOut)
	}
	m := metrics()
	for _, want := range []string{`code="waf.`, `code="authn.unauthorized"`, `code="abuse.banned"`} {
		if !strings.Contains(m, want) {
			t.Errorf("after the traffic run, metrics lack %s", want)
		}
	}
	if !regexp.MustCompile(`(?m)^rampart_active_bans [1-9]`).MatchString(m) {
		t.Errorf("no active ban after the traffic run")
	}
	guideDetectors(t, p)
	// The discovery report the guide shows: what the traffic used, and
	// the personal data the demo's /users answers carry.
	req, _ = http.NewRequest("GET", "http://"+admin+"/api/v1/discovery/report", nil)
	req.Header.Set("Authorization", "Bearer "+adminTok[1])
	if resp, err := http.DefaultClient.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"/users/{userId}"`) || !strings.Contains(string(b), `"class":"email"`) {
			t.Errorf("discovery report after the traffic run: %d %s", resp.StatusCode, b)
		}
	}

	// Last, as in the guide: probing unknown paths gets this client banned.
	banned := 0
	for i := 0; i < 10 && banned == 0; i++ {
		if code, hdr, body := do(t, "GET", fmt.Sprintf("%s/probe-%d", base, i)); code == 403 && strings.Contains(body, "abuse.banned") && hdr.Get("Retry-After") != "" {
			banned = i + 1
		}
	}
	if banned == 0 {
		t.Error("ten probes of unknown paths did not get a ban")
	} else if code, _, _ := do(t, "GET", base+"/hello"); code != 403 {
		t.Errorf("a banned client still reaches /hello: %d", code)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("quickstart did not stop on SIGTERM")
	}
}

// guidePractices performs the guide's steps for authorization, rate
// limiting and input validation.
func guidePractices(t *testing.T, base, guide string) {
	t.Helper()
	noScope := regexp.MustCompile(`without the orders:read scope \(403\)\n\s+curl -i -H "Authorization: Bearer (ey\S+)"`).FindStringSubmatch(guide)
	if noScope == nil {
		t.Fatalf("guide lacks the token without the scope:\n%s", guide)
	}
	if c := bearerGet(t, base+"/orders/7", noScope[1]); c != 403 {
		t.Errorf("/orders/7 without the scope: %d", c)
	}
	post := func(path, ctype, body string) (int, http.Header, string) {
		t.Helper()
		resp, err := http.Post(base+path, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	const form = "application/x-www-form-urlencoded"
	for i := 0; i < 5; i++ {
		if code, _, _ := post("/login", form, "user=alice&password=guess"); code != 401 {
			t.Errorf("login attempt %d: %d, want 401", i+1, code)
		}
	}
	code, hdr, _ := post("/login", form, "user=alice&password=guess")
	if code != 429 || hdr.Get("Retry-After") == "" || hdr.Get("Ratelimit") == "" || hdr.Get("Ratelimit-Policy") == "" {
		t.Errorf("6th login attempt: %d %v", code, hdr)
	}
	for _, tc := range []struct {
		ctype, body string
		want        int
	}{
		{"text/plain", "hi", 415},
		{"application/json", `{"a":1,"a":2}`, 400},
		{"application/json", `"` + strings.Repeat("a", 2000) + `"`, 413},
		{"application/json", `{"a":1}`, 200},
	} {
		if code, _, body := post("/echo", tc.ctype, tc.body); code != tc.want {
			t.Errorf("POST /echo %s %.20q: %d, want %d (%s)", tc.ctype, tc.body, code, tc.want, body)
		}
	}
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`version: 1
listeners:
  - name: public
    address: 127.0.0.1:8080
upstreams:
  - name: orders
    allow_plaintext: true
    targets: [{url: "http://127.0.0.1:9000"}]
routes:
  - id: a
    path: /a
    upstream: orders
    public: true
  - id: b
    path: /b
    upstream: orders
    public: true
  - id: c
    path: /c
    upstream: ordrs
    public: true
  - id: d
    path: /d
    upstream: orders
`), 0o600)
	out, err := exec.Command(binary, "check", "--config", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	for _, want := range []string{
		bad + `:20: routes[2].upstream: unknown upstream "ordrs" (did you mean "orders"?)`,
		bad + `:22: routes[3]: route "d" declares no authentication`,
		"2 problem(s)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("version: 1\nlisteners: [{name: l, address: \"127.0.0.1:0\"}]\nupstreams: [{name: u, targets: [{url: \"https://u.internal\"}], credential: {header: X-Key, value: literal-key}}]\nroutes: [{id: r, prefix: /, upstream: u, public: true}]\n"), 0o600)
	// A literal secret is an error, unless development mode says otherwise.
	out, err = exec.Command(binary, "check", "--config", good).CombinedOutput()
	if err == nil || !strings.Contains(string(out), good+":3: upstreams[0].credential.value: literal secret in config") {
		t.Fatalf("literal secret: %v\n%s", err, out)
	}
	out, err = exec.Command(binary, "check", "--config", good, "--allow-literal-secrets").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") || !strings.Contains(string(out), "warning: "+good+":3: upstreams[0].credential.value: literal secret") {
		t.Fatalf("good config with --allow-literal-secrets: %v\n%s", err, out)
	}
	out, _ = exec.Command(binary, "version").CombinedOutput()
	if !regexp.MustCompile(`^rampart v\d+\.\d+\.\d+\S* \(go`).Match(out) {
		t.Errorf("version: %q", out)
	}
}

func writeConfig(t *testing.T, path, listen, upstream, body string) {
	t.Helper()
	cfg := fmt.Sprintf(`version: 1
listeners:
  - name: public
    address: %s
upstreams:
  - name: svc
    allow_plaintext: true
    targets: [{url: "http://%s"}]
routes:
  - id: api
    prefix: /api
    upstream: svc
    public: true
%s`, listen, upstream, body)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // atomic, like editors and ConfigMaps
		t.Fatal(err)
	}
}

// TestRunReloadAndDrain: SIGHUP and a file change both reload; a bad file
// is rejected (logged with file:line) while the old config keeps serving;
// SIGTERM drains an in-flight request before exit.
func TestRunReloadAndDrain(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/slow" {
			<-release
		}
		io.WriteString(w, "up "+r.URL.Path)
	}))
	defer up.Close()
	upAddr := strings.TrimPrefix(up.URL, "http://")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "rampart.yaml")
	addr := freePort(t)
	writeConfig(t, cfgPath, addr, upAddr, "")
	p := start(t, "run", "--config", cfgPath)
	waitListening(t, addr)
	base := "http://" + addr
	if code, _, _ := do(t, "GET", base+"/new"); code != 404 {
		t.Fatalf("/new before reload: %d", code)
	}

	// Reload by file change.
	writeConfig(t, cfgPath, addr, upAddr, "  - id: new\n    path: /new\n    upstream: svc\n    public: true\n")
	waitFor(t, "file-change reload", func() bool { c, _, _ := do(t, "GET", base+"/new"); return c == 200 })

	// A bad config is rejected; the old one keeps serving.
	os.WriteFile(cfgPath, []byte("version: 1\nlisteners:\n  - name: public\n    address: "+addr+"\n    bogus: 1\n"), 0o600)
	waitFor(t, "rejected reload logged", func() bool {
		_, errOut := p.output()
		return strings.Contains(errOut, "reload rejected") && strings.Contains(errOut, cfgPath+":5: listeners[0].bogus: unknown key")
	})
	if c, _, _ := do(t, "GET", base+"/new"); c != 200 {
		t.Fatalf("old config not serving after a bad reload: %d", c)
	}

	// Reload by SIGHUP (watching disabled would be the same path).
	writeConfig(t, cfgPath, addr, upAddr, "")
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "SIGHUP reload", func() bool { c, _, _ := do(t, "GET", base+"/new"); return c == 404 })

	// SIGTERM drains the in-flight request.
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/api/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	time.Sleep(200 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	select {
	case <-p.done:
		t.Fatal("exited before the in-flight request finished")
	default:
	}
	close(release)
	if b := <-got; b != "up /api/slow" {
		t.Fatalf("in-flight request: %q", b)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after drain")
	}
	if p.err != nil {
		t.Fatalf("exit: %v", p.err)
	}
}

// TestDrainTimeout: with requests in flight longer than --drain-timeout,
// SIGTERM waits the timeout, then ends them with 503 gateway.shutdown
// (answered, not cut; logged as such, not as 499 client.closed), flushes
// the logs and exits 0: the drain ran its course.
func TestDrainTimeout(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(3 * time.Second):
		}
		io.WriteString(w, "late")
	}))
	defer up.Close()
	defer close(release)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "rampart.yaml")
	addr := freePort(t)
	writeConfig(t, cfgPath, addr, strings.TrimPrefix(up.URL, "http://"), "")
	p := start(t, "run", "--config", cfgPath, "--drain-timeout", "1s")
	waitListening(t, addr)
	type answer struct {
		code int
		body string
		err  error
	}
	got := make(chan answer, 2)
	for i := 0; i < 2; i++ {
		go func() {
			resp, err := http.Get("http://" + addr + "/api/slow")
			if err != nil {
				got <- answer{err: err}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got <- answer{code: resp.StatusCode, body: string(b)}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGTERM)
	for i := 0; i < 2; i++ {
		a := <-got
		if a.err != nil || a.code != 503 || !strings.Contains(a.body, `"code":"gateway.shutdown"`) {
			t.Errorf("request in flight at the drain deadline: %d %q %v, want 503 gateway.shutdown", a.code, a.body, a.err)
		}
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after the drain timeout")
	}
	if p.err != nil {
		t.Errorf("exit after a drain that ran its course: %v, want status 0", p.err)
	}
	out, errOut := p.output()
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"msg":"access"`) && strings.Contains(line, `"status":503`) && strings.Contains(line, `"code":"gateway.shutdown"`) {
			n++
		}
	}
	if n != 2 || strings.Contains(out, `"status":499`) {
		t.Errorf("access log of the cut requests (%d lines with 503):\n%s", n, out)
	}
	if strings.Contains(errOut, "deadline exceeded") {
		t.Errorf("flushing shared the spent drain deadline:\n%s", errOut)
	}
}

// TestTokenCommand: `rampart token` mints a token that a gateway with the
// matching public key accepts.
func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(priv)
	keyFile := filepath.Join(dir, "signing.key")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pubFile := filepath.Join(dir, "signing.pub")
	os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600)
	out, err := exec.Command(binary, "token", "--key", keyFile, "--kid", "k1", "--iss", "https://idp.test", "--aud", "api", "--sub", "carol", "--ttl", "5m").Output()
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(out))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	addr := freePort(t)
	cfg := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
listeners: [{name: l, address: "%s"}]
upstreams: [{name: u, allow_plaintext: true, targets: [{url: "%s"}]}]
authn:
  jwt:
    - name: idp
      issuer: https://idp.test
      audiences: [api]
      algorithms: [ES256]
      require_type: at+jwt
      keys: [{kid: k1, algorithm: ES256, file: %s}]
routes: [{id: r, prefix: /, upstream: u, auth: {jwt: [idp]}, authorize: any_authenticated}]
`, addr, up.URL, pubFile)), 0o600)
	start(t, "run", "--config", cfg)
	waitListening(t, addr)
	req, _ := http.NewRequest("GET", "http://"+addr+"/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("minted token: %d", resp.StatusCode)
	}
}

// TestKeysCreate: `rampart keys create` prints a key once, stores only its
// keyed hash, and the key opens the route after a reload.
func TestKeysCreate(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "keys.json")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	addr := freePort(t)
	cfg := filepath.Join(dir, "rampart.yaml")
	writeCfg := func(state string) {
		os.WriteFile(cfg+".new", []byte(fmt.Sprintf(`version: 1
listeners: [{name: l, address: "%s"}]
upstreams: [{name: u, allow_plaintext: true, targets: [{url: "%s"}]}]
authn:
  api_keys: {secret: "${env:E2E_API_KEY_SECRET}", file: %s}
routes: [{id: r, prefix: /, upstream: u, auth: {api_key: true}, authorize: any_authenticated}]
%s`, addr, up.URL, store, state)), 0o600)
		os.Rename(cfg+".new", cfg)
	}
	t.Setenv("E2E_API_KEY_SECRET", "e2e-api-key-secret-0123456789abcdef")
	t.Setenv("E2E_MASTER_1", strings.Repeat("11", 32))
	t.Setenv("E2E_MASTER_2", strings.Repeat("22", 32))
	writeCfg("state: {master_key: '${env:E2E_MASTER_1}'}\n")
	p := start(t, "run", "--config", cfg, "--watch=false")
	waitListening(t, addr)
	out, err := exec.Command(binary, "keys", "create", "--config", cfg, "--consumer", "reports-job", "--scopes", "reports:read", "--ttl", "1d").Output()
	if err != nil {
		t.Fatalf("keys create: %v", err)
	}
	key := strings.TrimSpace(string(out))
	if !strings.HasPrefix(key, "rpk_") {
		t.Fatalf("key %q", key)
	}
	raw, _ := os.ReadFile(store)
	if strings.Contains(string(raw), key) || strings.Contains(string(raw), strings.SplitN(key, "_", 3)[2]) || strings.Contains(string(raw), "reports-job") {
		t.Fatal("the store is readable on disk")
	}
	if st, _ := os.Stat(store); st.Mode().Perm() != 0o600 {
		t.Errorf("store mode %v", st.Mode().Perm())
	}
	send := func(k string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/x", nil)
		req.Header.Set("X-Api-Key", k)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := send(key); c != 401 {
		t.Fatalf("before reload: %d", c)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "reload with the new key", func() bool { return send(key) == 200 })

	// A new master key: rekey with the old one as previous, then drop it,
	// under traffic: no request fails while the files are rewritten and
	// the gateway reloads.
	stop := make(chan struct{})
	failed, sent := make(chan int, 1), make(chan int, 1)
	go func() {
		n, bad := 0, 0
		for ; n < 20000; n++ {
			select {
			case <-stop:
				failed <- bad
				sent <- n
				return
			default:
			}
			if send(key) != 200 {
				bad++
			}
		}
		failed <- bad
		sent <- n
	}()
	writeCfg("state: {master_key: '${env:E2E_MASTER_2}', previous_master_keys: ['${env:E2E_MASTER_1}']}\n")
	if out, err := exec.Command(binary, "store", "rekey", "--config", cfg).CombinedOutput(); err != nil || !strings.Contains(string(out), "rewrote 1 state file") {
		t.Fatalf("store rekey: %v\n%s", err, out)
	}
	writeCfg("state: {master_key: '${env:E2E_MASTER_2}'}\n")
	if out, err := exec.Command(binary, "check", "--config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("check with only the new master key: %v\n%s", err, out)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	if bad, n := <-failed, <-sent; bad != 0 || n == 0 {
		t.Fatalf("%d of %d requests failed during rekey and reload", bad, n)
	}
	if c := send(key); c != 200 {
		t.Fatalf("after rekey and reload: %d", c)
	}
	// The old key alone no longer opens it: a clear error, not an empty store.
	writeCfg("state: {master_key: '${env:E2E_MASTER_1}'}\n")
	if out, err := exec.Command(binary, "check", "--config", cfg).CombinedOutput(); err == nil || !strings.Contains(string(out), "keys.json") {
		t.Fatalf("check with a master key that did not write the store: %v\n%s", err, out)
	}
}

// TestOperationalLogStaysJSON: with Redis down, go-redis's dial failures
// reach the operational log as JSON records (its default logger prints
// plain text), throttled to one per interval however many requests fail.
func TestOperationalLogStaysJSON(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "rampart.yaml")
	addr, deadRedis := freePort(t), freePort(t) // nothing listens on deadRedis
	writeConfig(t, cfgPath, addr, strings.TrimPrefix(up.URL, "http://"),
		"    rate_limits: [{key: [client_ip], rate: 1000, per: 1s, store: redis, on_store_error: fail_open}]\n"+
			"rate_limiting:\n  redis: {addresses: [\""+deadRedis+"\"]}\naccess_log: {enabled: false}\n")
	p := start(t, "run", "--config", cfgPath, "--watch=false")
	waitListening(t, addr)
	for i := 0; i < 20; i++ {
		if code, _, _ := do(t, "GET", "http://"+addr+"/api/x"); code != 200 {
			t.Fatalf("request %d with Redis down and fail_open: %d", i, code)
		}
	}
	waitFor(t, "the Redis failure in the log", func() bool { _, e := p.output(); return strings.Contains(e, "failed to dial") })
	_, errOut := p.output()
	redisLines := 0
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("operational log line is not JSON: %q", line)
			continue
		}
		if rec["source"] == "redis" {
			redisLines++
		}
	}
	if redisLines != 1 {
		t.Errorf("%d Redis lines for 20 failed requests, want 1 (throttled):\n%s", redisLines, errOut)
	}
}

// TestLogRotation: after logrotate-style renames, SIGUSR1 makes rampart
// write the access log and the event stream to new files at their paths;
// earlier lines stay in the renamed files.
func TestLogRotation(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	dir := t.TempDir()
	cfgPath, accessPath, eventsPath := filepath.Join(dir, "rampart.yaml"), filepath.Join(dir, "access.log"), filepath.Join(dir, "events.log")
	addr := freePort(t)
	writeConfig(t, cfgPath, addr, strings.TrimPrefix(up.URL, "http://"),
		"access_log: {output: "+accessPath+"}\nsecurity_events: {output: "+eventsPath+"}\n")
	p := start(t, "run", "--config", cfgPath, "--watch=false")
	waitListening(t, addr)
	do(t, "GET", "http://"+addr+"/api/before")
	do(t, "GET", "http://"+addr+"/nothing-before") // a refusal: one event
	read := func(path string) string { b, _ := os.ReadFile(path); return string(b) }
	waitFor(t, "lines before rotation", func() bool {
		return strings.Contains(read(accessPath), "/api/before") && strings.Contains(read(eventsPath), "/nothing-before")
	})
	for _, f := range []string{accessPath, eventsPath} {
		if err := os.Rename(f, f+".1"); err != nil {
			t.Fatal(err)
		}
	}
	p.cmd.Process.Signal(syscall.SIGUSR1)
	waitFor(t, "reopen logged", func() bool { _, e := p.output(); return strings.Contains(e, "log files reopened") })
	do(t, "GET", "http://"+addr+"/api/after")
	do(t, "GET", "http://"+addr+"/nothing-after")
	waitFor(t, "lines after rotation in the new files", func() bool {
		return strings.Contains(read(accessPath), "/api/after") && strings.Contains(read(eventsPath), "/nothing-after")
	})
	if a, e := read(accessPath), read(eventsPath); strings.Contains(a, "/api/before") || strings.Contains(e, "/nothing-before") {
		t.Errorf("lines from before the rotation in the new files:\n%s\n%s", a, e)
	}
	if a, e := read(accessPath+".1"), read(eventsPath+".1"); strings.Contains(a, "/api/after") || strings.Contains(e, "/nothing-after") {
		t.Errorf("lines from after the rotation in the rotated files:\n%s\n%s", a, e)
	}
}

// TestExamplesPassCheck: with the environment examples/README.md sets,
// `rampart check` passes every example config as shipped, and no
// example reads a variable the README does not set.
func TestExamplesPassCheck(t *testing.T) {
	readme, err := os.ReadFile("../../examples/README.md")
	if err != nil {
		t.Fatal(err)
	}
	env := os.Environ()
	set := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+export (RAMPART_\w+)=("[^"]*"|\S+)$`).FindAllStringSubmatch(string(readme), -1) {
		env = append(env, m[1]+"="+strings.Trim(m[2], `"`))
		set[m[1]] = true
	}
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) < 5 || len(set) == 0 {
		t.Fatalf("%d examples, %d variables in the README", len(files), len(set))
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		for _, m := range regexp.MustCompile(`\$\{env:(\w+)\}`).FindAllStringSubmatch(string(raw), -1) {
			if !set[m[1]] {
				t.Errorf("%s reads %s, which examples/README.md does not set", f, m[1])
			}
		}
		cmd := exec.Command(binary, "check", "--config", f)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), ": OK (") || strings.Contains(string(out), "warning") {
			t.Errorf("rampart check %s: %v\n%s", f, err, out)
		}
	}
	if left, _ := filepath.Glob("../../examples/state/*.key"); len(left) > 0 {
		t.Errorf("check wrote files: %v", left)
	}
}

// TestJournal: a start, an API key created by the CLI, a reload and the
// stop are one hash chain sealed at shutdown, with no secret in it;
// `rampart journal verify` accepts it, and finds an edited record.
func TestJournal(t *testing.T) {
	dir := t.TempDir()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	addr := freePort(t)
	cfg := filepath.Join(dir, "rampart.yaml")
	t.Setenv("E2E_API_KEY_SECRET", "e2e-api-key-secret-0123456789abcdef")
	t.Setenv("E2E_JOURNAL_KEY", "e2e-journal-checkpoint-key-0123456789")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
listeners: [{name: l, address: "%s"}]
upstreams: [{name: u, allow_plaintext: true, targets: [{url: "%s"}]}]
authn:
  api_keys: {secret: "${env:E2E_API_KEY_SECRET}", file: keys.json}
routes: [{id: r, prefix: /, upstream: u, auth: {api_key: true}, authorize: any_authenticated}]
journal: {output: journal.jsonl, checkpoint_key: "${env:E2E_JOURNAL_KEY}"}
`, addr, up.URL)), 0o600)
	p := start(t, "run", "--config", cfg, "--watch=false")
	waitListening(t, addr)
	if out, err := exec.Command(binary, "keys", "create", "--config", cfg, "--consumer", "billing").CombinedOutput(); err != nil {
		t.Fatalf("keys create: %v\n%s", err, out)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	journal := filepath.Join(dir, "journal.jsonl")
	waitFor(t, "the reload in the journal", func() bool {
		b, _ := os.ReadFile(journal)
		return strings.Contains(string(b), `"config.reload"`)
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	raw, _ := os.ReadFile(journal)
	for _, want := range []string{`"startup"`, `"apikey.created"`, `"config.reload"`, `"shutdown"`, `"journal.checkpoint"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("journal lacks %s:\n%s", want, raw)
		}
	}
	if strings.Contains(string(raw), "e2e-api-key-secret") || strings.Contains(string(raw), "e2e-journal-checkpoint-key") || strings.Contains(string(raw), "rpk_") {
		t.Fatalf("a secret in the journal:\n%s", raw)
	}
	out, err := exec.Command(binary, "journal", "verify", "--config", cfg).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") || !strings.Contains(string(out), "sealed by a checkpoint") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	os.WriteFile(journal, []byte(strings.Replace(string(raw), `"consumer":"billing"`, `"consumer":"someone"`, 1)), 0o600)
	out, err = exec.Command(binary, "journal", "verify", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "BROKEN") || !strings.Contains(string(out), "was edited") {
		t.Fatalf("verify of an edited journal: %v\n%s", err, out)
	}
}

// guideDetectors checks that the traffic run made each detector fire, as
// the guide promises: its security events name them.
func guideDetectors(t *testing.T, p *proc) {
	t.Helper()
	out, _ := p.output()
	for _, want := range []string{
		`"detector":"brute_force","key":"address"`, `"detector":"brute_force","key":"session"`,
		`"detector":"scanning"`, `"detector":"fuzzing"`, `"detector":"scraping"`,
		`"code":"abuse.race"`, `"code":"abuse.anomaly","route":"hello"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("after the traffic run, no security event with %s", want)
		}
	}
	if strings.Contains(out, "stolen-session-7f3a") {
		t.Error("the session cookie's value was logged")
	}
}
