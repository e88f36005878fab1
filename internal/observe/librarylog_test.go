package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLibraryLog: a library's lines become JSON log records, at most one
// per interval, with the number suppressed in between.
func TestLibraryLog(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	l := &LibraryLog{Log: slog.New(slog.NewJSONHandler(&buf, nil)), Source: "redis", Every: 10 * time.Second, Now: func() time.Time { return now }}
	for i := 0; i < 100; i++ { // a burst: one line
		l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s\n", 5, "dial tcp 127.0.0.1:1: connect: connection refused")
		now = now.Add(10 * time.Millisecond)
	}
	now = now.Add(10 * time.Second)
	l.Printf(context.Background(), "redis: %s", "still down")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	if json.Unmarshal([]byte(lines[0]), &first) != nil || json.Unmarshal([]byte(lines[1]), &second) != nil {
		t.Fatalf("not JSON:\n%s", buf.String())
	}
	if !strings.Contains(first["msg"].(string), "failed to dial after 5 attempts") || first["suppressed_since_last"] != 0.0 {
		t.Errorf("first line %v", first)
	}
	if second["suppressed_since_last"] != 99.0 || second["source"] != "redis" {
		t.Errorf("second line %v, want 99 suppressed", second)
	}
}
