package observe

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAccessAttrsMatchJSONHandler: the attributes stages add are encoded
// as slog.JSONHandler would encode them, and the line is valid JSON.
func TestAccessAttrsMatchJSONHandler(t *testing.T) {
	attrs := []slog.Attr{
		slog.String("s", "plain"),
		slog.String("esc", "quote\" back\\ nl\n tab\t ctl\x01 <b>&amp; \u2028 bad\xff utf8 é 😀"),
		slog.Int("i", -42),
		slog.Uint64("u", 42),
		slog.Float64("f", 0.259),
		slog.Bool("b", true),
		slog.Duration("d", 1500*time.Millisecond),
		slog.Time("t", time.Date(2026, 11, 27, 3, 4, 5, 6, time.UTC)),
		slog.Any("any", map[string]int{"a": 1}),
		slog.Group("g", slog.String("x", "y"), slog.Int("n", 1)),
		slog.Group("empty"),
		{},
	}
	line := AppendAccess(nil, &AccessRecord{Time: time.Now(), RequestID: "r-1", Method: "GET", Path: "/x", Status: 200, Attrs: attrs})
	var std bytes.Buffer
	slog.New(slog.NewJSONHandler(&std, nil)).LogAttrs(nil, slog.LevelInfo, "access", attrs...)
	var got, want map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	if err := json.Unmarshal(std.Bytes(), &want); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if k == "time" || k == "level" || k == "msg" {
			continue
		}
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
	if got["request_id"] != "r-1" || got["status"] != 200.0 || got["msg"] != "access" {
		t.Errorf("record fields: %s", line)
	}
	if strings.Count(string(line), "\n") != 1 {
		t.Errorf("not one line: %q", line)
	}
}

// TestAccessRedactsQuery: credential-like query values never reach the log.
func TestAccessRedactsQuery(t *testing.T) {
	line := string(AppendAccess(nil, &AccessRecord{RawQuery: "q=shoes&access_token=eyJsecret"}))
	if strings.Contains(line, "eyJsecret") || !strings.Contains(line, `"query":"q=shoes\u0026access_token=REDACTED"`) {
		t.Fatalf("%s", line)
	}
}

func TestRedactQuery(t *testing.T) {
	cases := map[string]string{
		"a=1&access_token=abc&b=2":  "a=1&access_token=REDACTED&b=2",
		"api_key=k&apiKey=x&sig=s":  "api_key=REDACTED&apiKey=REDACTED&sig=REDACTED",
		"password=p&code=c&page=3":  "password=REDACTED&code=REDACTED&page=3",
		"%74oken=abc":               "%74oken=REDACTED",
		"flag&x=%zz&token":          "flag&x=%zz&token=REDACTED",
		"jwt=eyJhbGciOi&q=search":   "jwt=REDACTED&q=search",
		"X-Amz-Signature=abc&n=1":   "X-Amz-Signature=REDACTED&n=1",
		"session_id=s&SESSION=ABC":  "session_id=REDACTED&SESSION=REDACTED",
		"client_secret=s&state=xyz": "client_secret=REDACTED&state=xyz",
	}
	for in, want := range cases {
		if got := RedactQuery(in); got != want {
			t.Errorf("RedactQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkAccessLog: one access-log line, encoded and written.
func BenchmarkAccessLog(b *testing.B) {
	l := NewAccessLog(discard{})
	rec := &AccessRecord{Time: time.Now(), RequestID: "abc-1", Listener: "public", Method: "GET", Host: "api.example.com", Path: "/api/x",
		RawQuery: "page=2", Proto: "HTTP/1.1", Route: "api", Status: 200, Duration: 250 * time.Microsecond, Bytes: 1024, ClientIP: "127.0.0.1", Upstream: "10.0.0.5:8080"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.Log(rec)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestAppendMillis: the hand-written formatting prints what AppendFloat
// printed before it.
func TestAppendMillis(t *testing.T) {
	for _, us := range []int64{0, 1, 9, 10, 100, 250, 999, 1000, 1001, 1010, 1234, 60_000_000, 123_456_789, -1500} {
		want := strconv.FormatFloat(float64(us)/1000, 'f', -1, 64)
		if got := string(appendMillis(nil, us)); got != want {
			t.Errorf("appendMillis(%d) = %q, want %q", us, got, want)
		}
	}
}

// stallingWriter records what it is given; while gate is held its Write
// waits (a stalled disk or pipe).
type stallingWriter struct {
	gate sync.Mutex
	mu   sync.Mutex
	got  bytes.Buffer
	n    int // Write calls
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	w.gate.Lock()
	defer w.gate.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	return w.got.Write(p)
}

func (w *stallingWriter) snapshot() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.got.String(), w.n
}

// TestBufferedWriterStalledOutput: a request never waits for the output
// until MaxPending bytes are pending; then it waits, and no line is lost
// or reordered when the output recovers.
func TestBufferedWriterStalledOutput(t *testing.T) {
	out := &stallingWriter{}
	out.gate.Lock() // the output is stuck
	b := NewBufferedWriter(out, nil)
	line := []byte(strings.Repeat("x", 1000) + "\n")
	fast := make(chan int)
	go func() {
		n := 0
		for ; n*len(line) < MaxPending-2*FlushAt; n++ { // well below the bound: never waits
			b.Write(line)
		}
		fast <- n
	}()
	var n int
	select {
	case n = <-fast:
	case <-time.After(10 * time.Second):
		t.Fatal("writes below MaxPending waited for a stalled output")
	}
	// Past the bound a writer waits...
	blocked := make(chan struct{})
	go func() {
		for i := 0; i < 2*MaxPending/len(line); i++ {
			b.Write(line)
		}
		close(blocked)
	}()
	select {
	case <-blocked:
		t.Fatal("writer did not wait with twice MaxPending pending on a stalled output")
	case <-time.After(300 * time.Millisecond):
	}
	// ...until the output recovers; then everything arrives, in order.
	out.gate.Unlock()
	select {
	case <-blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("writer still waiting after the output recovered")
	}
	b.Write([]byte("last\n"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := out.snapshot()
	want := n + 2*MaxPending/len(line)
	if lines := strings.Count(got, "\n"); lines != want+1 || !strings.HasSuffix(got, "\nlast\n") {
		t.Fatalf("%d lines written, want %d, last %q", lines, want+1, got[max(0, len(got)-10):])
	}
}

// TestBufferedWriterFlushes: lines reach the output within FlushEvery
// without a Close.
func TestBufferedWriterFlushes(t *testing.T) {
	out := &stallingWriter{}
	b := NewBufferedWriter(out, nil)
	defer b.Close()
	b.Write([]byte("one\n"))
	deadline := time.Now().Add(5 * FlushEvery)
	for got, _ := out.snapshot(); got != "one\n"; got, _ = out.snapshot() {
		if time.Now().After(deadline) {
			t.Fatalf("line not flushed within %v: %q", 5*FlushEvery, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMentionsSensitive: the one-pass scan finds every fragment in any
// letter case and position, as a plain lower-case search does.
func TestMentionsSensitive(t *testing.T) {
	inputs := []string{"", "page=2&sort=asc", "q=book", "A=1&b=2", "x=%20y", "ÄÖÜ=é"}
	for _, f := range sensitiveFragments {
		up := strings.ToUpper(f)
		inputs = append(inputs, f+"=1", "x=1&My"+up+"=2", "a=b&"+up[:len(up)-1]+"="+f[len(f)-1:], "zz"+f[:len(f)-1])
	}
	for _, in := range inputs {
		want := false
		for _, f := range sensitiveFragments {
			want = want || strings.Contains(strings.ToLower(in), f)
		}
		if got := mentionsSensitive(in); got != want {
			t.Errorf("mentionsSensitive(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestBufferedWriterReopen: after the file is renamed (log rotation),
// Reopen sends later lines to a new file at the path; earlier lines stay
// in the renamed one and none is lost.
func TestBufferedWriterReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	b, err := OpenOutput(path)
	if err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("before\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("pending\n")) // buffered at the rotation: the old file
	if err := b.Reopen(); err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("after\n"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "before\npending\n" || string(cur) != "after\n" {
		t.Fatalf("rotated file %q, new file %q", old, cur)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new file %v %v, want mode 0600", fi, err)
	}
	// stdout has nothing to reopen.
	if err := NewBufferedWriter(io.Discard, nil).Reopen(); err != nil {
		t.Fatal(err)
	}
}
