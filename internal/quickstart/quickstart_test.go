package quickstart

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/plan"
)

// PrepareState generates a master key once (0600, in a 0700 directory)
// and keeps it afterwards; the embedded config loads and compiles with it.
func TestPrepareStateAndConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	created, err := PrepareState(dir)
	if err != nil || !created {
		t.Fatalf("first start: %v %v", created, err)
	}
	key, _ := os.ReadFile(filepath.Join(dir, MasterKeyFile))
	if st, _ := os.Stat(filepath.Join(dir, MasterKeyFile)); st.Mode().Perm() != 0o600 || len(key) != 65 {
		t.Fatalf("master key %v, %d bytes", st.Mode().Perm(), len(key))
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("state directory %v", st.Mode().Perm())
	}
	if created, err := PrepareState(dir); err != nil || created {
		t.Fatalf("second start: %v %v", created, err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, MasterKeyFile)); string(again) != string(key) {
		t.Fatal("the master key changed at the second start")
	}
	t.Setenv("RAMPART_QUICKSTART_ADMIN_TOKEN", "quickstart-admin-token-0123456789abcdef")
	cfg, err := config.Parse(Config("127.0.0.1:0", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:0", dir), "quickstart.yaml (embedded)")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.State == nil || cfg.State.RuntimeFile != filepath.Join(dir, "runtime.state") {
		t.Fatalf("state section: %+v", cfg.State)
	}
	if err := plan.Check(cfg); err != nil {
		t.Fatal(err)
	}
}
