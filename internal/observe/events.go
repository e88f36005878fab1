package observe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// EventOptions configure the security event stream.
type EventOptions struct {
	// Output receives one JSON line per event (nil: none).
	Output io.Writer
	// QueueSize bounds the events waiting to be written; when full, new
	// events are dropped and counted, never waited for.
	QueueSize int
	// Webhook, when set, receives the events in batches.
	Webhook *WebhookOptions
	// Log receives the stream's own problems (drops, webhook failures).
	Log *slog.Logger
}

// WebhookOptions configure the webhook sink.
type WebhookOptions struct {
	URL     string
	Headers http.Header
	// BatchSize is the most events in one POST.
	BatchSize int
	// FlushInterval is the longest an event waits for its batch.
	FlushInterval time.Duration
	// MaxRetries of a failed POST (exponential backoff from 200 ms).
	MaxRetries int
	// Timeout of one POST.
	Timeout time.Duration
	// QueueSize bounds the events waiting for the webhook.
	QueueSize int
	// Client posts the batches (tests); nil: a client with Timeout.
	Client *http.Client
}

// Emitter is the security event stream: Emit queues without blocking; one
// goroutine writes JSON lines and another posts webhook batches.
type Emitter struct {
	queue   *queue[pipeline.Event]
	out     io.Writer
	hook    *webhook
	log     *slog.Logger
	dropped atomic.Uint64
	written atomic.Uint64
	done    chan struct{}
}

// NewEmitter starts the stream.
func NewEmitter(o EventOptions) *Emitter {
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
	}
	e := &Emitter{queue: newQueue[pipeline.Event](o.QueueSize), out: o.Output, log: o.Log, done: make(chan struct{})}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if o.Webhook != nil {
		e.hook = newWebhook(*o.Webhook, e.log)
	}
	go e.loop()
	return e
}

// Emit queues ev; when the queue is full the event is dropped and counted.
func (e *Emitter) Emit(ev pipeline.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	// A retired stream (a reload) refuses quietly what requests still
	// emit.
	if full, _ := e.queue.push(ev); full {
		e.dropped.Add(1)
	}
}

// Dropped is the number of events dropped because a queue was full.
func (e *Emitter) Dropped() uint64 {
	n := e.dropped.Load()
	if e.hook != nil {
		n += e.hook.dropped.Load()
	}
	return n
}

// Close stops accepting events, writes those queued and flushes the
// webhook, within ctx.
func (e *Emitter) Close(ctx context.Context) error {
	if !e.queue.close() {
		return nil
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if e.hook != nil {
		return e.hook.close(ctx)
	}
	return nil
}

func (e *Emitter) loop() {
	defer close(e.done)
	var buf []byte
	lastDrop := uint64(0)
	var batch []pipeline.Event
	for {
		var ok bool
		if batch, ok = e.queue.take(batch); !ok {
			return
		}
		for _, ev := range batch {
			buf = AppendEvent(buf[:0], ev)
			if e.out != nil {
				if _, err := e.out.Write(buf); err != nil {
					e.log.Error("security events: write failed", "error", err)
				}
			}
			if e.hook != nil {
				e.hook.add(bytes.TrimSuffix(buf, []byte("\n")))
			}
			e.written.Add(1)
		}
		if d := e.dropped.Load(); d != lastDrop {
			e.log.Warn("security events dropped: the queue was full", "dropped_total", d)
			lastDrop = d
		}
	}
}

// AppendEvent appends ev as one JSON line. Reason is passed through
// RedactText; the request summary carries no query values.
func AppendEvent(b []byte, ev pipeline.Event) []byte {
	b = append(b, `{"time":`...)
	b = pipeline.AppendJSONString(b, ev.Time.UTC().Format(time.RFC3339Nano))
	b = append(b, `,"log":"security","event":`...)
	b = pipeline.AppendJSONString(b, ev.Name)
	field := func(k, v string) {
		if v != "" {
			b = append(b, ',', '"')
			b = append(b, k...)
			b = append(b, '"', ':')
			b = pipeline.AppendJSONString(b, v)
		}
	}
	if ev.Code != "" {
		stage, _, _ := strings.Cut(ev.Code, ".")
		field("stage", stage)
	}
	field("code", ev.Code)
	if ev.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(ev.Status), 10)
	}
	field("request_id", ev.RequestID)
	field("route", ev.Route)
	field("client_ip", ev.ClientIP)
	field("subject", ev.Subject)
	field("auth", ev.Auth)
	if len(ev.Rules) > 0 {
		b = append(b, `,"rules":[`...)
		for i, r := range ev.Rules {
			if i > 0 {
				b = append(b, ',')
			}
			b = pipeline.AppendJSONString(b, r)
		}
		b = append(b, ']')
	}
	field("reason", RedactText(ev.Reason))
	if ev.Method != "" || ev.Path != "" {
		b = append(b, `,"request":{"method":`...)
		b = pipeline.AppendJSONString(b, ev.Method)
		b = append(b, `,"host":`...)
		b = pipeline.AppendJSONString(b, clipText(ev.Host, 256))
		b = append(b, `,"path":`...)
		b = pipeline.AppendJSONString(b, clipText(ev.Path, 512))
		if len(ev.QueryKeys) > 0 {
			b = append(b, `,"query_keys":[`...)
			for i, k := range ev.QueryKeys {
				if i == 32 {
					break
				}
				if i > 0 {
					b = append(b, ',')
				}
				b = pipeline.AppendJSONString(b, clipText(k, 64))
			}
			b = append(b, ']')
		}
		if ev.UserAgent != "" {
			b = append(b, `,"user_agent":`...)
			b = pipeline.AppendJSONString(b, clipText(RedactText(ev.UserAgent), 256))
		}
		b = append(b, '}')
	}
	for _, k := range slices.Sorted(maps.Keys(ev.Attrs)) {
		field(k, RedactText(ev.Attrs[k]))
	}
	return append(b, '}', '\n')
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// secretRe finds credential-shaped text: JWTs, bearer/basic credentials,
// key=value secrets and long opaque tokens.
var secretRe = regexp.MustCompile(`(?i)eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*` +
	`|\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+` +
	`|\b(password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|client[_-]?secret|session|cookie|authorization)(["']?\s*[:=]\s*["']?)[^\s&"',;]+` +
	`|[A-Za-z0-9_+/=-]{32,}`)

// RedactText masks credential-shaped substrings of s: JWTs, bearer and
// basic credentials, name=secret pairs and opaque tokens of 32+ characters.
func RedactText(s string) string {
	if s == "" {
		return s
	}
	return secretRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := secretRe.FindStringSubmatch(m)
		switch {
		case sub[1] != "":
			return sub[1] + " [redacted]"
		case sub[2] != "":
			return sub[2] + sub[3] + "[redacted]"
		}
		return "[redacted]"
	})
}

// webhook posts batches of events as a JSON array.
type webhook struct {
	o       WebhookOptions
	log     *slog.Logger
	queue   chan []byte
	dropped atomic.Uint64
	sent    atomic.Uint64
	done    chan struct{}
	once    sync.Once
}

func newWebhook(o WebhookOptions, log *slog.Logger) *webhook {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	w := &webhook{o: o, log: log, queue: make(chan []byte, o.QueueSize), done: make(chan struct{})}
	go w.loop()
	return w
}

// add queues one encoded event; when the webhook falls behind, events
// are dropped and counted rather than held without bound.
func (w *webhook) add(line []byte) {
	select {
	case w.queue <- append([]byte(nil), line...):
	default:
		w.dropped.Add(1)
	}
}

func (w *webhook) close(ctx context.Context) error {
	w.once.Do(func() { close(w.queue) })
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *webhook) loop() {
	defer close(w.done)
	var batch [][]byte
	tick := time.NewTicker(w.o.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case line, ok := <-w.queue:
			if !ok {
				w.post(batch)
				return
			}
			batch = append(batch, line)
			if len(batch) >= w.o.BatchSize {
				w.post(batch)
				batch = nil
			}
		case <-tick.C:
			w.post(batch)
			batch = nil
		}
	}
}

// post sends one batch, retrying with exponential backoff; a batch that
// still fails is dropped (counted and logged).
func (w *webhook) post(batch [][]byte) {
	if len(batch) == 0 {
		return
	}
	body := append([]byte{'['}, bytes.Join(batch, []byte{','})...)
	body = append(body, ']')
	backoff := 200 * time.Millisecond
	var err error
	for attempt := 0; attempt <= w.o.MaxRetries; attempt++ {
		if attempt > 0 {
			time.Sleep(backoff)
			backoff *= 2
		}
		if err = w.send(body); err == nil {
			w.sent.Add(uint64(len(batch)))
			return
		}
	}
	w.dropped.Add(uint64(len(batch)))
	w.log.Error("security events: webhook batch dropped", "events", len(batch), "error", err)
}

func (w *webhook) send(body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range w.o.Headers {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.o.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}
