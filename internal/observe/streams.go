package observe

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// openEvents starts the security event stream of the config.
func openEvents(c config.SecurityEvents, log *slog.Logger) (*eventStream, error) {
	if !*c.Enabled {
		return nil, nil
	}
	o := EventOptions{QueueSize: c.QueueSize, Log: log}
	var out *BufferedWriter
	if c.Output != "off" {
		var err error
		if out, err = OpenOutput(c.Output); err != nil {
			return nil, err
		}
		o.Output = out
	}
	if w := c.Webhook; w != nil {
		h := http.Header{}
		for _, c := range w.Headers {
			h.Set(c.Header, c.Value.Reveal())
		}
		o.Webhook = &WebhookOptions{URL: w.URL, Headers: h, BatchSize: w.BatchSize, FlushInterval: w.FlushInterval.D(),
			MaxRetries: w.MaxRetries, Timeout: w.Timeout.D(), QueueSize: w.QueueSize}
	}
	return &eventStream{em: NewEmitter(o), out: out}, nil
}

// eventStream is one opened security event stream: its emitter and file
// (or stdout) output.
type eventStream struct {
	em  *Emitter
	out *BufferedWriter // nil with output: off
}

// close drains the queue (until ctx ends) and closes the output; nil: no-op.
func (s *eventStream) close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	err := s.em.Close(ctx)
	if s.out != nil {
		_ = s.out.Close()
	}
	return err
}

// ownEvents sends to the gateway's current event stream, which a reload
// replaces when security_events changed (a new webhook, a rotated token):
// the compiled stages keep this one value.
type ownEvents struct {
	cur     atomic.Pointer[eventStream] // nil while the stream is off
	retired atomic.Uint64               // events dropped by replaced streams
}

func (o *ownEvents) Emit(ev pipeline.Event) {
	if s := o.cur.Load(); s != nil {
		s.em.Emit(ev)
	}
}

func (o *ownEvents) current() *eventStream {
	if o == nil {
		return nil
	}
	return o.cur.Load()
}

// Dropped counts the events dropped by full queues, over every stream.
func (o *ownEvents) Dropped() uint64 {
	if o == nil {
		return 0
	}
	n := o.retired.Load()
	if s := o.cur.Load(); s != nil {
		n += s.em.Dropped()
	}
	return n
}

// swap puts s in service and retires the previous stream in the
// background (its queue is delivered for up to 5 s).
func (o *ownEvents) swap(s *eventStream) {
	old := o.cur.Swap(s)
	if old == nil {
		return
	}
	// The counter never goes back: the old stream's drops move to
	// retired now, and what it drops while closing follows.
	before := old.em.Dropped()
	o.retired.Add(before)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = old.close(ctx)
		o.retired.Add(old.em.Dropped() - before)
	}()
}

// Tee sends every event to a and then b.
func Tee(a, b pipeline.Events) pipeline.Events { return teeEvents{a, b} }

type teeEvents struct{ a, b pipeline.Events }

func (t teeEvents) Emit(ev pipeline.Event) {
	t.a.Emit(ev)
	t.b.Emit(ev)
}

// tracing is the tracer in service and whose trace context it trusts.
type tracing struct {
	t     *Tracer
	trust string // tracing.trust_incoming
}

// openTracing starts a tracer for c; nil (and no error) without one.
func openTracing(c *config.Tracing) (*tracing, error) {
	if c == nil {
		return nil, nil
	}
	h := map[string]string{}
	for _, cr := range c.Headers {
		h[cr.Header] = cr.Value.Reveal()
	}
	t, err := NewTracer(context.Background(), TracingOptions{Endpoint: c.Endpoint, Protocol: c.Protocol,
		Insecure: c.AllowPlaintext, Headers: h, SampleRatio: *c.SampleRatio, ServiceName: c.ServiceName})
	if err != nil {
		return nil, err
	}
	return &tracing{t: t, trust: c.TrustIncoming}, nil
}

// trusts reports whether a request's own trace context is continued.
func (t *tracing) trusts(trustedPeer bool) bool {
	return t.trust == "all" || t.trust == "trusted_proxies" && trustedPeer
}

// shutdown exports the queued spans and stops the exporter (nil: no-op).
func (t *tracing) shutdown() {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.t.Shutdown(ctx)
}

// accessLog is the access log in service and its output.
type accessLog struct {
	log *AccessLog
	out *BufferedWriter
}

// openAccessLog opens c's output; nil (and no error) when the log is off.
func openAccessLog(c config.AccessLog) (*accessLog, error) {
	if !*c.Enabled {
		return nil, nil
	}
	out, err := OpenOutput(c.Output)
	if err != nil {
		return nil, err
	}
	return &accessLog{log: NewAccessLog(out), out: out}, nil
}

// newOwnEvents serves s (nil: the stream is off).
func newOwnEvents(s *eventStream) *ownEvents {
	o := &ownEvents{}
	o.cur.Store(s)
	return o
}
