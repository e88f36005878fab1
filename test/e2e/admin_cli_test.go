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
)

// TestAdminCLI drives a running gateway with `rampart admin`: read the
// plan, ban and unban a client, revoke and lift a token, drain and resume
// the target, reload; a wrong token and a viewer's change are refused
// with the problem's code and exit status 1.
func TestAdminCLI(t *testing.T) {
	const adminTok, viewerTok = "cli-admin-token-0123456789abcdef0123456789", "cli-viewer-token-0123456789abcdef012345678"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	addr, adminAddr := freePort(t), freePort(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rampart.yaml")
	t.Setenv("E2E_CLI_ADMIN", adminTok)
	t.Setenv("E2E_CLI_VIEWER", viewerTok)
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 1
listeners: [{name: public, address: "%s"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "%s"}]}]
routes: [{id: public, prefix: /, upstream: svc, public: true}]
abuse: {ban_for: 1m}
admin:
  address: "%s"
  token: "${env:E2E_CLI_ADMIN}"
  principals: [{name: grafana, token: "${env:E2E_CLI_VIEWER}", role: viewer}]
`, addr, up.URL, adminAddr)), 0o600)
	start(t, "run", "--config", cfg, "--watch=false")
	waitListening(t, addr)
	waitListening(t, adminAddr)
	tokenFile := filepath.Join(dir, "viewer.token")
	os.WriteFile(tokenFile, []byte(viewerTok+"\n"), 0o600)
	admin := func(token string, args ...string) (int, string, string) {
		return runRampart(t, []string{"RAMPART_ADMIN_URL=http://" + adminAddr, "RAMPART_ADMIN_TOKEN=" + token}, append([]string{"admin"}, args...)...)
	}
	target := strings.TrimPrefix(up.URL, "http://")
	for _, step := range []struct {
		args []string
		want string // in stdout
	}{
		{[]string{"plan"}, `"id": "public"`},
		{[]string{"posture"}, `"practice": "authenticate"`},
		{[]string{"ban", "203.0.113.77", "--for", "10m"}, `"banned": "203.0.113.77"`},
		{[]string{"bans"}, "203.0.113.77"},
		{[]string{"unban", "203.0.113.77"}, "ok"},
		{[]string{"revoke", "--jti", "cli-leaked", "--for", "1h"}, `"until"`},
		{[]string{"revocations"}, "cli-leaked"},
		{[]string{"unrevoke", "--jti", "cli-leaked"}, "ok"},
		{[]string{"drain", "svc", target}, "ok"},
		{[]string{"resume", "svc", target}, "ok"},
		{[]string{"reload"}, "ok"},
	} {
		code, out, errOut := admin(adminTok, step.args...)
		if code != 0 || !strings.Contains(out, step.want) {
			t.Fatalf("rampart admin %v: exit %d\n%s%s", step.args, code, out, errOut)
		}
	}
	if code, _, errOut := admin("wrong-token-0123456789abcdef0123456789abcdef", "plan"); code != 1 || !strings.Contains(errOut, "401 admin.unauthorized") {
		t.Fatalf("wrong token: exit %d %s", code, errOut)
	}
	if code, _, errOut := admin("", "ban", "203.0.113.78", "--token-file", tokenFile); code != 1 || !strings.Contains(errOut, "403 admin.forbidden") {
		t.Fatalf("a viewer bans: exit %d %s", code, errOut)
	}
	if code, _, errOut := admin(adminTok, "revoke", "--jti", "a", "--subject", "b"); code != 1 || !strings.Contains(errOut, "--jti") {
		t.Fatalf("a revocation naming both: exit %d %s", code, errOut)
	}
	if code, _, _ := admin(adminTok, "drain", "svc"); code != 2 {
		t.Fatalf("a missing argument: exit %d", code)
	}
}
