// Package observe holds what the gateway reports about traffic: the access
// log (and, in later issues, security events, metrics and traces).
package observe

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// BufferedWriter batches log lines: one write system call per flush
// instead of one per request, and never on a request's goroutine. Write
// appends to a pending buffer; a background goroutine swaps it for an
// empty one and writes it out, when FlushAt bytes are pending or every
// FlushEvery. A request waits only when MaxPending bytes are pending (the
// output cannot keep up): lines are not dropped.
type BufferedWriter struct {
	mu      sync.Mutex
	room    sync.Cond // signalled when pending shrinks
	pending []byte
	kicked  bool         // a flush has been requested and not yet started
	out     io.Writer    // guarded by flushMu
	close   func() error // guarded by flushMu
	path    string       // the file, for Reopen; "" for stdout/stderr
	kick    chan struct{}
	flushMu sync.Mutex // one flush at a time (the loop, Flush, Close, Reopen)
	spare   []byte     // guarded by flushMu
	stop    chan struct{}
	done    chan struct{}
}

const (
	// FlushEvery is the longest a log line waits in the buffer.
	FlushEvery = 200 * time.Millisecond
	// FlushAt is the pending size that triggers a flush.
	FlushAt = 64 << 10
	// MaxPending bounds the memory of a stalled output; writers wait
	// beyond it.
	MaxPending = 4 << 20
)

// OpenOutput opens an access log output: "stdout", "stderr" or a file path
// (created 0600 if missing, appended).
func OpenOutput(spec string) (*BufferedWriter, error) {
	switch spec {
	case "stdout":
		return NewBufferedWriter(os.Stdout, nil), nil
	case "stderr":
		return NewBufferedWriter(os.Stderr, nil), nil
	}
	f, err := openAppend(spec)
	if err != nil {
		return nil, err
	}
	b := NewBufferedWriter(f, f.Close)
	b.path = spec
	return b, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log output: %w", err)
	}
	return f, nil
}

// Reopen writes out what is pending and reopens the output file by its
// path, for log rotation (logrotate renames the file, then signals):
// lines written before go to the old file, later ones to the new. It does
// nothing for stdout and stderr. On error the old file stays in use.
func (b *BufferedWriter) Reopen() error {
	if b.path == "" {
		return nil
	}
	b.Flush()
	f, err := openAppend(b.path)
	if err != nil {
		return err
	}
	b.flushMu.Lock()
	oldClose := b.close
	b.out, b.close = f, f.Close
	b.flushMu.Unlock()
	if oldClose != nil {
		return oldClose()
	}
	return nil
}

// NewBufferedWriter starts a writer over out; closeFn (optional) closes out.
func NewBufferedWriter(out io.Writer, closeFn func() error) *BufferedWriter {
	b := &BufferedWriter{pending: make([]byte, 0, 2*FlushAt), spare: make([]byte, 0, 2*FlushAt), out: out, close: closeFn,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	b.room.L = &b.mu
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
		case <-b.kick:
		case <-b.stop:
			return
		}
		b.Flush()
	}
}

// Write implements io.Writer. It copies p and returns; the output is
// written by the background goroutine.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	for len(b.pending) >= MaxPending {
		b.kickLocked()
		b.room.Wait()
	}
	b.pending = append(b.pending, p...)
	if len(b.pending) >= FlushAt {
		b.kickLocked()
	}
	b.mu.Unlock()
	return len(p), nil
}

func (b *BufferedWriter) kickLocked() {
	if !b.kicked {
		b.kicked = true
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// Flush writes the pending lines out.
func (b *BufferedWriter) Flush() {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	buf := b.pending
	b.pending, b.spare = b.spare[:0], nil
	b.kicked = false
	b.room.Broadcast()
	b.mu.Unlock()
	if len(buf) > 0 {
		_, _ = b.out.Write(buf) // under flushMu: Reopen swaps out under it too
	}
	if cap(buf) > 4*FlushAt {
		buf = make([]byte, 0, 2*FlushAt) // a burst's buffer is not kept
	}
	b.spare = buf[:0]
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
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	if b.close != nil {
		return b.close()
	}
	return nil
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

// fragmentsByFirst lists the sensitive fragments by their first letter.
var fragmentsByFirst = func() (t [26][]string) {
	for _, f := range sensitiveFragments {
		t[f[0]-'a'] = append(t[f[0]-'a'], f)
	}
	return t
}()

// mentionsSensitive reports whether s contains a sensitive name fragment
// in any letter case, in one pass and without allocating.
func mentionsSensitive(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			continue
		}
		for _, frag := range fragmentsByFirst[c-'a'] {
			if len(s)-i >= len(frag) && strings.EqualFold(s[i:i+len(frag)], frag) {
				return true
			}
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

// AccessRecord is one access-log line.
type AccessRecord struct {
	Time                                    time.Time
	RequestID, Listener, Method, Host, Path string
	RawQuery                                string // redacted when written
	Proto, Route                            string
	Status                                  int
	Duration                                time.Duration
	Bytes                                   int64
	ClientIP, Upstream, Code, Subject, Auth string
	Error                                   string
	Attrs                                   []slog.Attr // added by stages
}

// AccessLog writes access records as JSON lines, encoded straight into a
// pooled buffer: no slog.Record, no attribute slice per request.
type AccessLog struct {
	w    io.Writer
	pool sync.Pool
}

// NewAccessLog writes to w, one Write per record; w must be safe for
// concurrent use (a BufferedWriter is).
func NewAccessLog(w io.Writer) *AccessLog {
	return &AccessLog{w: w, pool: sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}}
}

// Log writes rec.
func (l *AccessLog) Log(rec *AccessRecord) {
	bp := l.pool.Get().(*[]byte)
	b := AppendAccess((*bp)[:0], rec)
	_, _ = l.w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		l.pool.Put(bp)
	}
}

// AppendAccess appends rec as one JSON line, in the field order of the
// access log (see docs/operations.md).
func AppendAccess(b []byte, r *AccessRecord) []byte {
	str := func(k, v string) {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		b = pipeline.AppendJSONString(b, v)
	}
	b = append(b, `{"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","msg":"access"`...)
	str("request_id", r.RequestID)
	str("listener", r.Listener)
	str("method", r.Method)
	str("host", r.Host)
	str("path", r.Path)
	if r.RawQuery != "" {
		str("query", RedactQuery(r.RawQuery))
	}
	str("proto", r.Proto)
	str("route", r.Route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, r.Duration.Microseconds())
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, r.Bytes, 10)
	str("client_ip", r.ClientIP)
	// Fields without a value are left out, as in the security events: the
	// upstream of a request never forwarded, the code of one served.
	if r.Upstream != "" {
		str("upstream", r.Upstream)
	}
	if r.Code != "" {
		str("code", r.Code)
	}
	if r.Subject != "" || r.Auth != "" {
		str("subject", r.Subject)
		str("auth", r.Auth)
	}
	if r.Error != "" {
		str("error", r.Error)
	}
	for _, a := range r.Attrs {
		n := len(b)
		b = append(b, ',')
		m := len(b)
		if b = appendAttr(b, a); len(b) == m {
			b = b[:n] // an empty attribute writes nothing
		}
	}
	return append(b, '}', '\n')
}

// appendMillis appends us microseconds as milliseconds with up to three
// decimals and no trailing zeros: what strconv.AppendFloat(us/1000, 'f',
// -1) prints, without the shortest-float search.
func appendMillis(b []byte, us int64) []byte {
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return b
	}
	d := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for d[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, d[:n]...)
}
