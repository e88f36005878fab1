package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromium returns the headless browser for the dashboard test. The test
// command installs Debian's chromium and sets RAMPART_REQUIRE_CHROMIUM, so
// there a missing browser fails the test instead of skipping it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("RAMPART_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium not installed (scripts/test.sh installs it)")
	}
	t.Skip("chromium not installed")
	return ""
}

const (
	dashboardToken = "admin-token-0123456789abcdef0123456789abcdef"
	viewerToken    = "viewer-token-0123456789abcdef0123456789abcdef"
)

// TestDashboard drives the live dashboard of the real binary in real
// headless Chromium: sign in with the admin token, see live data from
// generated traffic (a brute-force attack that gets its client banned),
// find the ban listed, lift it with the button and see the client served
// again. The page must load without console errors (CSP violations
// included); a screenshot is saved as a test artifact.
func TestDashboard(t *testing.T) {
	browser := chromium(t)
	t.Setenv("RAMPART_E2E_HS_SECRET", "e2e-dashboard-secret-0123456789abcdef")
	t.Setenv("RAMPART_ADMIN_TOKEN", dashboardToken)
	t.Setenv("RAMPART_VIEWER_TOKEN", viewerToken)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	addr, adminAddr := freePort(t), freePort(t)
	cfg := filepath.Join(t.TempDir(), "rampart.yaml")
	// A ban of 10 minutes: only the button can lift it within the test.
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
listeners: [{name: public, address: "%s"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "%s"}]}]
authn:
  jwt:
    - {name: idp, issuer: "https://idp.test", audiences: [api], algorithms: [HS256], keys: [{kid: k, algorithm: HS256, secret: "${env:RAMPART_E2E_HS_SECRET}"}]}
abuse:
  ban_for: 10m
  brute_force: {threshold: 5, sensitive_threshold: 5, window: 1m}
routes:
  - {id: login, path: /login, upstream: svc, sensitive: true, auth: {jwt: [idp]}, authorize: any_authenticated}
  - {id: public, prefix: /public, upstream: svc, public: true}
admin:
  address: "%s"
  token: "${env:RAMPART_ADMIN_TOKEN}"
  principals: [{name: grafana, token: "${env:RAMPART_VIEWER_TOKEN}", role: viewer}]
`, addr, up.URL, adminAddr)), 0o600)
	start(t, "run", "--config", cfg)
	waitListening(t, addr)
	waitListening(t, adminAddr)
	admin := "http://" + adminAddr
	get := func(path, tok string) string { return fmt.Sprint(bearerGet(t, "http://"+addr+path, tok)) }
	for i := 0; i < 10; i++ {
		get("/public/item", "")
	}
	for i := 0; i < 5; i++ {
		get("/login", "bad.token.x")
	}
	if c := get("/public/item", ""); c != "403" {
		t.Fatalf("the attacker is not banned: %s", c)
	}

	ctx, log := newBrowser(t, browser)
	err := chromedp.Do(ctx,
		chromedp.Navigate(admin+"/dashboard/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), dashboardToken),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS("#conn.live")),
		chromedp.WaitVisible(chromedp.CSS(`#bans tr[data-ip="127.0.0.1"]`)),
	)
	if err != nil {
		t.Fatalf("dashboard: %v (problems: %v)", err, log.all())
	}
	text := func(sel string) string {
		v, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return v
	}
	reasons, clients, events, bans := text("#reasons tbody"), text("#clients tbody"), text("#events tbody"), text("#bans tbody")
	for _, want := range []string{"authn.unauthorized", "abuse.banned"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("blocked-by-reason lacks %s: %q", want, reasons)
		}
	}
	if !strings.Contains(clients, "127.0.0.1") || !strings.Contains(events, "abuse.banned") || !strings.Contains(bans, "ban") {
		t.Errorf("live data missing: clients %q, events %q, bans %q", clients, events, bans)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.ArtifactDir(), "dashboard.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))

	// Lift the ban from the page.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#bans tr[data-ip="127.0.0.1"] button.lift`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#bans tr[data-ip="127.0.0.1"]`)),
	)
	if err != nil {
		t.Fatalf("lifting the ban: %v (problems: %v)", err, log.all())
	}
	if c := get("/public/item", ""); c != "200" {
		t.Fatalf("after the lift: %s, want 200", c)
	}
	dashboardIdentityBan(t, ctx, get, log)
	dashboardOperations(t, ctx, get, up.Listener.Addr().String(), log)
	dashboardPosture(t, ctx, cfg, log)

	// A viewer sees no action at all.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), viewerToken),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS("#conn.live")),
		chromedp.WaitVisible(chromedp.CSS(`#revocations`)),
	)
	if err != nil {
		t.Fatalf("viewer sign-in: %v (problems: %v)", err, log.all())
	}
	actions, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("button.lift, button.drain, button.toggle, button.delete").length + [...document.querySelectorAll("form, #reload, #rotate")].filter((e) => !e.hidden).length`))
	if err != nil {
		t.Fatal(err)
	}
	if actions != 0 {
		t.Fatalf("a viewer is shown %d actions", actions)
	}
	if p := log.all(); len(p) > 0 {
		t.Fatalf("the page logged problems:\n%s", strings.Join(p, "\n"))
	}
}

// consoleLog collects what a page logs as an error or warning, CSP
// violations and uncaught exceptions included.
type consoleLog struct {
	mu       sync.Mutex
	problems []string
}

func (l *consoleLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problems = append(l.problems, s)
}

func (l *consoleLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.problems...)
}

// newBrowser starts headless Chromium for a test (60 s at most) and
// collects the page's problems.
func newBrowser(t *testing.T, browser string) (context.Context, *consoleLog) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	log := &consoleLog{}
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value))
				}
				log.add("console " + string(ev.Type) + ": " + strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			log.add("exception: " + ev.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				log.add("log " + string(ev.Entry.Level) + ": " + ev.Entry.Text + " " + ev.Entry.URL)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return ctx, log
}

// dashboardOperations uses the dashboard's operator and admin controls:
// drain and resume the upstream target (503, then 200 again), revoke a
// token and lift the revocation, reload the config.
func dashboardOperations(t *testing.T, ctx context.Context, get func(path, tok string) string, target string, log *consoleLog) {
	t.Helper()
	row := `#upstreams tr[data-target="svc ` + target + `"]`
	err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row+` button.drain`)),
		chromedp.WaitVisible(chromedp.CSS(row+` td.drained`)),
	)
	if err != nil {
		t.Fatalf("drain: %v (problems: %v)", err, log.all())
	}
	if c := get("/public/item", ""); c != "503" {
		t.Fatalf("a drained target: %s, want 503", c)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row+` button.drain`)),
		chromedp.WaitVisible(chromedp.CSS(row+` td.healthy`)),
		chromedp.SendKeys(chromedp.ID("rv-jti"), "e2e-leaked-jti"),
		chromedp.Click(chromedp.CSS(`#revoke-form button`)),
		chromedp.WaitVisible(chromedp.CSS(`#revocations button.lift`)),
		chromedp.Click(chromedp.CSS(`#revocations button.lift`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#revocations button.lift`)),
		chromedp.Click(chromedp.ID("reload")),
		chromedp.WaitVisible(chromedp.CSS(`#op-result`)),
	)
	if err != nil {
		t.Fatalf("operations: %v (problems: %v)", err, log.all())
	}
	if c := get("/public/item", ""); c != "200" {
		t.Fatalf("after resuming: %s, want 200", c)
	}
	var result string
	deadline := time.Now().Add(5 * time.Second)
	for result != "config reloaded" && time.Now().Before(deadline) {
		result, _ = chromedp.Run(ctx, chromedp.TextContent(chromedp.ID("op-result")))
		time.Sleep(50 * time.Millisecond)
	}
	if result != "config reloaded" {
		t.Fatalf("reload from the dashboard: %q", result)
	}
}

// dashboardPosture reads the posture panel (the config's grades and
// findings), then changes the config file to expose an admin path
// publicly and, once it is reloaded, sees the panel report the lowered grade, the new finding and the
// security event.
func dashboardPosture(t *testing.T, ctx context.Context, cfg string, log *consoleLog) {
	t.Helper()
	text := func(sel string) string {
		v, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v (problems: %v)", sel, err, log.all())
		}
		return v
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#posture tbody tr`))); err != nil {
		t.Fatalf("posture panel: %v (problems: %v)", err, log.all())
	}
	grade, practices, findings := text("#posture-grade"), text("#posture tbody"), text("#posture-findings tbody")
	if !strings.Contains(grade, "/100") || !strings.Contains(practices, "authenticate") || !strings.Contains(practices, "document") ||
		!strings.Contains(findings, "RA-AUTHN-006") || strings.Contains(findings, "RA-AUTHN-001") {
		t.Fatalf("posture before: grade %q, practices %q, findings %q", grade, practices, findings)
	}
	src, _ := os.ReadFile(cfg)
	worse := strings.Replace(string(src), "routes:\n", "routes:\n  - {id: console, prefix: /admin, upstream: svc, public: true}\n", 1)
	if err := os.WriteFile(cfg, []byte(worse), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file change reloads the config (rampart run watches it).
	var change string
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(change, "lowered") && time.Now().Before(deadline) {
		change, _ = chromedp.Run(ctx, chromedp.TextContent(chromedp.ID("posture-change")))
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(change, "lowered: ") || !strings.Contains(change, "authenticate") || !strings.Contains(change, "5 new, 0 resolved") {
		t.Fatalf("posture after the reload: %q (problems: %v)", change, log.all())
	}
	if f := text("#posture-findings tbody"); !strings.Contains(f, "RA-AUTHN-001") {
		t.Fatalf("the new finding is not listed: %q", f)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#events tbody`))); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for events := ""; !strings.Contains(events, "config.audit_lowered"); {
		if time.Now().After(deadline) {
			t.Fatalf("no config.audit_lowered event on the dashboard: %q", events)
		}
		events = text("#events tbody")
		time.Sleep(100 * time.Millisecond)
	}
}

// dashboardIdentityBan bans an identity from the page (its token is then
// refused from any address), sees the row's kind and the categories the
// traffic fell in, and lifts it.
func dashboardIdentityBan(t *testing.T, ctx context.Context, get func(path, tok string) string, log *consoleLog) {
	t.Helper()
	tok := hs256(t, "e2e-dashboard-secret-0123456789abcdef", `{"iss":"https://idp.test","aud":"api","sub":"mallory","exp":`+fmt.Sprint(time.Now().Add(time.Hour).Unix())+`}`)
	if c := get("/login", tok); c != "200" {
		t.Fatalf("mallory before the ban: %s", c)
	}
	const key = "identity:mallory@https:%2F%2Fidp.test"
	row := `#bans tr[data-ip="` + key + `"]`
	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("ban-ip"), key),
		chromedp.Click(chromedp.CSS(`#ban-form button`)),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS(`#categories tr[data-category="login"]`)),
	)
	if err != nil {
		t.Fatalf("banning an identity: %v (problems: %v)", err, log.all())
	}
	kind, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(row+" td:nth-child(2)")))
	if err != nil || kind != "identity" {
		t.Fatalf("the ban's key kind: %q %v", kind, err)
	}
	cats, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS("#categories tbody")))
	if err != nil || !strings.Contains(cats, "static") {
		t.Fatalf("categories: %q %v", cats, err)
	}
	if c := get("/login", tok); c != "403" {
		t.Fatalf("the banned identity: %s, want 403", c)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row+` button.lift`)),
		chromedp.WaitNotPresent(chromedp.CSS(row)),
	)
	if err != nil {
		t.Fatalf("lifting the identity ban: %v (problems: %v)", err, log.all())
	}
	if c := get("/login", tok); c != "200" {
		t.Fatalf("mallory after the lift: %s, want 200", c)
	}
}

// hs256 signs a compact JWT with an HMAC secret.
func hs256(t *testing.T, secret, claims string) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	in := enc([]byte(`{"alg":"HS256","kid":"k","typ":"JWT"}`)) + "." + enc([]byte(claims))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	return in + "." + enc(m.Sum(nil))
}
