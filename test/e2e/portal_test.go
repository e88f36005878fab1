package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestDocsPortal opens the API docs portal of the real binary in headless
// Chromium: every public operation of the published document is listed,
// authentication requirements are shown, "Try it out" sends a request
// through the gateway and shows the service's answer, and the page runs
// under its strict CSP without a console error. A screenshot is saved.
func TestDocsPortal(t *testing.T) {
	browser := chromium(t)
	t.Setenv("RAMPART_E2E_HS_SECRET", "e2e-portal-secret-0123456789abcdef0123")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"greeting":"hello from the service"}`)
	}))
	defer up.Close()
	dir := t.TempDir()
	addr := freePort(t)
	os.WriteFile(filepath.Join(dir, "hello.yaml"), []byte(`openapi: 3.1.0
info: {title: Hello, version: "1"}
paths:
  /v1/hello:
    get:
      operationId: hello
      summary: Say hello
      responses:
        "200": {description: a greeting, content: {application/json: {schema: {type: object}}}}
`), 0o600)
	cfg := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
listeners: [{name: public, address: "%s"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "%s"}]}]
authn:
  jwt:
    - {name: corp, issuer: "https://idp.test", audiences: [api], algorithms: [HS256], keys: [{kid: k, algorithm: HS256, secret: "${env:RAMPART_E2E_HS_SECRET}"}]}
routes:
  - {id: hello, path: /v1/hello, methods: [GET], upstream: svc, public: true, openapi: {spec: hello.yaml}}
  - {id: orders, prefix: /v1/orders, methods: [GET, POST], upstream: svc, auth: {jwt: [corp]}, authorize: {scopes_all: ["orders:read"]}}
  - {id: secret-batch, prefix: /internal, upstream: svc, public: true, docs: hidden}
docs: {title: Portal Test API, listeners: [public]}
`, addr, up.URL)), 0o600)
	start(t, "run", "--config", cfg, "--watch=false")
	waitListening(t, addr)

	ctx, log := newBrowser(t, browser)
	err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+addr+"/api-docs"),
		chromedp.WaitVisible(chromedp.CSS(".opblock")),
		chromedp.WaitVisible(chromedp.CSS("button.authorize")),
	)
	if err != nil {
		t.Fatalf("portal: %v (problems: %v)", err, log.all())
	}
	ops, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".opblock-summary-path")].map((e) => e.textContent.replace(/\u200b/g, ""))`))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(ops, " ")
	if len(ops) != 3 || !strings.Contains(got, "/v1/hello") || !strings.Contains(got, "/v1/orders") || strings.Contains(got, "/internal") {
		t.Fatalf("operations listed: %q", ops)
	}
	locks, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".opblock .authorization__btn").length`))
	if locks != 2 {
		t.Errorf("%d operations show an authentication requirement, want the 2 of /v1/orders", locks)
	}
	// Try it out: the request goes through the gateway to the service.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#operations-default-hello .opblock-summary`)),
		chromedp.WaitVisible(chromedp.CSS(`#operations-default-hello .try-out__btn`)),
		chromedp.Click(chromedp.CSS(`#operations-default-hello .try-out__btn`)),
		chromedp.Click(chromedp.CSS(`#operations-default-hello .execute`)),
		chromedp.WaitVisible(chromedp.CSS(`#operations-default-hello .live-responses-table .response-col_status`)),
	)
	if err != nil {
		t.Fatalf("try it out: %v (problems: %v)", err, log.all())
	}
	answer, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#operations-default-hello .live-responses-table`)))
	if !strings.Contains(answer, "200") || !strings.Contains(answer, "hello from the service") {
		t.Fatalf("try it out answered: %q", answer)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(t.ArtifactDir(), "portal.png"), shot, 0o644)
	if p := log.all(); len(p) > 0 {
		t.Fatalf("the portal logged problems:\n%s", strings.Join(p, "\n"))
	}
}
