package observe

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestLineHandlerMatchesJSONHandler: every line is valid JSON carrying the
// same values slog.JSONHandler would write (level aside).
func TestLineHandlerMatchesJSONHandler(t *testing.T) {
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
		slog.String("", "kept, as slog does"),
		{},
	}
	var fast, std bytes.Buffer
	slog.New(NewLineHandler(&fast)).With("pre", "p").LogAttrs(nil, slog.LevelInfo, "access", attrs...)
	slog.New(slog.NewJSONHandler(&std, nil)).With("pre", "p").LogAttrs(nil, slog.LevelInfo, "access", attrs...)
	var got, want map[string]any
	if err := json.Unmarshal(fast.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, fast.String())
	}
	if err := json.Unmarshal(std.Bytes(), &want); err != nil {
		t.Fatal(err)
	}
	delete(want, "level")
	delete(got, "time")
	delete(want, "time")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("differs from slog.JSONHandler:\n got %s\nwant %s", fast.String(), std.String())
	}
	if strings.Count(fast.String(), "\n") != 1 {
		t.Errorf("not one line: %q", fast.String())
	}
}

func TestLineHandlerGroups(t *testing.T) {
	var buf bytes.Buffer
	slog.New(NewLineHandler(&buf)).WithGroup("req").With("a", 1).Info("m", "b", 2)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	g, _ := m["req"].(map[string]any)
	if g["a"] != 1.0 || g["b"] != 2.0 {
		t.Errorf("group: %s", buf.String())
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

func BenchmarkLineHandler(b *testing.B) {
	l := slog.New(NewLineHandler(discard{}))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.LogAttrs(nil, slog.LevelInfo, "access", slog.String("request_id", "abc-1"), slog.String("method", "GET"), slog.String("path", "/api/x"),
			slog.Int("status", 200), slog.Float64("duration_ms", 0.25), slog.Int64("bytes", 1024), slog.String("client_ip", "127.0.0.1"))
	}
}

func BenchmarkSlogJSONHandler(b *testing.B) {
	l := slog.New(slog.NewJSONHandler(discard{}, nil))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.LogAttrs(nil, slog.LevelInfo, "access", slog.String("request_id", "abc-1"), slog.String("method", "GET"), slog.String("path", "/api/x"),
			slog.Int("status", 200), slog.Float64("duration_ms", 0.25), slog.Int64("bytes", 1024), slog.String("client_ip", "127.0.0.1"))
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
