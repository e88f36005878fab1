package gateway

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

// TestWatchWaitsForSlowWrite: a tool writing the config in place, in two
// pieces 300 ms apart, where the first piece alone is valid YAML with
// fewer routes, is reloaded once, complete: the half-written file is
// never applied.
func TestWatchWaitsForSlowWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rampart.yaml")
	head := "version: 1\nlisteners: [{name: public, address: \"127.0.0.1:8080\"}]\nupstreams: [{name: svc, allow_plaintext: true, targets: [{url: \"http://127.0.0.1:9\"}]}]\nroutes:\n  - {id: a, prefix: /a, upstream: svc, public: true}\n"
	tail := "  - {id: b, prefix: /b, upstream: svc, public: true}\n"
	if err := os.WriteFile(path, []byte(head+tail), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var loaded []int
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := Watch(ctx, func() []string { return []string{path} }, slog.New(slog.DiscardHandler), func() {
		cfg, err := config.Load(path)
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			loaded = append(loaded, len(cfg.Routes))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(head)
	time.Sleep(300 * time.Millisecond)
	f.WriteString(tail)
	f.Close()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(loaded)
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(settle + 200*time.Millisecond) // any late second reload
	mu.Lock()
	defer mu.Unlock()
	if len(loaded) != 1 || loaded[0] != 2 {
		t.Fatalf("reloads saw routes %v, want one reload of the whole file (2 routes)", loaded)
	}
}
