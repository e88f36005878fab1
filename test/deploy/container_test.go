package deploy

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestContainerImage builds the image with scripts/build-image.sh
// (buildah, FROM scratch) into private storage and checks what it holds:
// the static binary and the CA bundle only (no shell), a numeric non-root
// user, the health check. The binary then runs from the image's file
// system, chrooted, as that user: `version`, and `health` against a live
// /healthz. (Running the image with podman needs a container runtime this
// test machine's cgroup setup does not support; see docs/deploy.md.)
func TestContainerImage(t *testing.T) {
	if _, err := exec.LookPath("buildah"); err != nil {
		if os.Getenv("RAMPART_REQUIRE_BUILDAH") != "" {
			t.Fatal("buildah not installed (scripts/test.sh installs it)")
		}
		t.Skip("buildah not installed")
	}
	store := t.TempDir()
	global := []string{"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"), "--storage-driver", "vfs"}
	buildah := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("buildah", append(global, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("buildah %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	build := exec.Command("../../scripts/build-image.sh", append([]string{"rampart-test:dev", "--"}, global...)...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-image.sh: %v\n%s", err, out)
	}
	var img struct {
		Docker struct {
			Config struct {
				User        string
				Entrypoint  []string
				Healthcheck struct{ Test []string }
			} `json:"config"`
		}
	}
	if err := json.Unmarshal([]byte(buildah("inspect", "--type", "image", "rampart-test:dev")), &img); err != nil {
		t.Fatal(err)
	}
	c := img.Docker.Config
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/rampart"}) ||
		!slices.Equal(c.Healthcheck.Test, []string{"CMD", "/rampart", "health"}) {
		t.Fatalf("image config: %+v", c)
	}
	ctr := buildah("from", "rampart-test:dev")
	t.Cleanup(func() { exec.Command("buildah", append(global, "rm", ctr)...).Run() })
	root := buildah("mount", ctr)
	t.Cleanup(func() { exec.Command("buildah", append(global, "umount", ctr)...).Run() })
	var files []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return err
	})
	slices.Sort(files)
	if !slices.Equal(files, []string{"etc/ssl/certs/ca-certificates.crt", "rampart"}) {
		t.Fatalf("the image holds %v", files)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command("/rampart", args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("version"); err != nil || !strings.Contains(out, "rampart") {
		t.Fatalf("version in the image: %v\n%s", err, out)
	}
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer healthy.Close()
	if out, err := run("health", "--url", healthy.URL+"/healthz"); err != nil {
		t.Fatalf("health in the image: %v\n%s", err, out)
	}
	if _, err := run("health", "--url", healthy.URL+"/nope"); err == nil {
		t.Fatal("health passed against a failing endpoint")
	}
}
