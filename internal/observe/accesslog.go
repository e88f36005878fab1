// Package observe holds what the gateway reports about traffic: the access
// log (and, in later issues, security events, metrics and traces).
package observe

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// BufferedWriter batches log lines: one write system call per flush
// instead of one per request. Lines reach the output within FlushEvery.
type BufferedWriter struct {
	mu    sync.Mutex
	w     *bufio.Writer
	out   io.Writer
	close func() error
	stop  chan struct{}
	done  chan struct{}
}

// FlushEvery is the longest a log line waits in the buffer.
const FlushEvery = 200 * time.Millisecond

// OpenOutput opens an access log output: "stdout", "stderr" or a file path
// (created 0600 if missing, appended).
func OpenOutput(spec string) (*BufferedWriter, error) {
	switch spec {
	case "stdout":
		return NewBufferedWriter(os.Stdout, nil), nil
	case "stderr":
		return NewBufferedWriter(os.Stderr, nil), nil
	}
	f, err := os.OpenFile(spec, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	return NewBufferedWriter(f, f.Close), nil
}

// NewBufferedWriter starts a writer over out; closeFn (optional) closes out.
func NewBufferedWriter(out io.Writer, closeFn func() error) *BufferedWriter {
	b := &BufferedWriter{w: bufio.NewWriterSize(out, 64<<10), out: out, close: closeFn, stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

func (b *BufferedWriter) loop() {
	defer close(b.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Write implements io.Writer.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes buffered lines out.
func (b *BufferedWriter) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.w.Flush()
}

// Close flushes and stops the writer.
func (b *BufferedWriter) Close() error {
	select {
	case <-b.stop:
		return nil
	default:
	}
	close(b.stop)
	<-b.done
	b.Flush()
	if b.close != nil {
		return b.close()
	}
	return nil
}

// NewAccessLogger returns the slog logger of the access log: one JSON
// object per line with "time", "msg" ("access") and the request's fields.
func NewAccessLogger(w io.Writer) *slog.Logger {
	return slog.New(NewLineHandler(w))
}

// sensitiveFragments are the name fragments of credential-like query
// parameters.
var sensitiveFragments = []string{"token", "key", "secret", "pass", "pwd", "auth", "sig", "session", "code", "credential", "jwt", "bearer", "assertion", "ticket", "nonce"}

// sensitiveParam reports query parameter names whose values are
// credentials (tokens, keys, signatures, passwords, codes) and are never
// logged.
func sensitiveParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range sensitiveFragments {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// mentionsSensitive reports whether s contains a sensitive name fragment
// in any letter case, without allocating.
func mentionsSensitive(s string) bool {
	for _, frag := range sensitiveFragments {
		if containsFold(s, frag) {
			return true
		}
	}
	return false
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// RedactQuery returns raw with the values of credential-like parameters
// replaced by REDACTED. Unparsable pairs are dropped entirely.
func RedactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	if !strings.Contains(raw, "%") && !mentionsSensitive(raw) {
		return raw // nothing to redact or drop (the common case)
	}
	var b strings.Builder
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, _, hasV := strings.Cut(pair, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		if sensitiveParam(dk) {
			b.WriteString("=REDACTED")
		} else if hasV {
			b.WriteString(pair[len(k):])
		}
	}
	return b.String()
}
