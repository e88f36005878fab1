package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/journal"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Outputs are the gateway's observability outputs in service, compiled
// from the access_log, security_events and tracing sections: each is
// swapped on reload when its section changed, while requests keep the
// one value they loaded.
type Outputs struct {
	log     *slog.Logger
	access  atomic.Pointer[accessLog] // nil while the access log is off
	events  *ownEvents                // the gateway's own event stream; nil when the caller supplies one
	tracing atomic.Pointer[tracing]   // nil without a tracing section
	journal *journal.Journal          // nil without a journal section; bound at start
}

// OpenOutputs opens the security event stream (when ownEvents: the
// caller supplies none) and the tracer of cfg. The access log is opened
// by OpenAccessLog. On error nothing stays open; the error names the
// config key.
func OpenOutputs(cfg *config.Config, log *slog.Logger, ownEvents bool) (*Outputs, error) {
	o := &Outputs{log: log}
	if ownEvents {
		s, err := openEvents(cfg.SecurityEvents, log)
		if err != nil {
			return nil, cfg.Problem("security_events.output", "%v", err)
		}
		o.events = newOwnEvents(s)
	}
	tr, err := openTracing(cfg.Tracing)
	if err != nil {
		o.Abandon()
		return nil, cfg.Problem("tracing", "%v", err)
	}
	o.tracing.Store(tr)
	if o.journal, err = journal.FromConfig(cfg.Journal, nil); err != nil {
		o.Abandon()
		return nil, cfg.Problem("journal.output", "%v", err)
	}
	return o, nil
}

// Record appends a change to the journal (no journal: nothing); a failed
// write is logged, never fatal to what was recorded.
func (o *Outputs) Record(event, actor string, attrs map[string]string) {
	if err := o.journal.Append(event, actor, attrs); err != nil {
		o.log.Error("journal write failed", "event", event, "error", err.Error())
	}
}

// OpenAccessLog opens cfg's access log.
func (o *Outputs) OpenAccessLog(cfg *config.Config) error {
	al, err := openAccessLog(cfg.AccessLog)
	if err != nil {
		return cfg.Problem("access_log.output", "%v", err)
	}
	o.access.Store(al)
	return nil
}

// Events is the gateway's own event stream (nil when the caller supplies
// one).
func (o *Outputs) Events() pipeline.Events {
	if o.events == nil {
		return nil
	}
	return o.events
}

// Dropped counts the events dropped by full queues, over every stream.
func (o *Outputs) Dropped() uint64 { return o.events.Dropped() }

// AccessLog is the access log in service (nil while it is off).
func (o *Outputs) AccessLog() *AccessLog {
	if al := o.access.Load(); al != nil {
		return al.log
	}
	return nil
}

// StartSpan starts a request's span when tracing is on (nil span
// otherwise); the request's own trace context is continued when the
// tracing section trusts it (trustedPeer: it came through a trusted proxy).
func (o *Outputs) StartSpan(ctx context.Context, h http.Header, trustedPeer bool) (context.Context, trace.Span) {
	tr := o.tracing.Load()
	if tr == nil {
		return ctx, nil
	}
	return tr.t.Start(ctx, h, tr.trusts(trustedPeer))
}

// Reopen reopens the access log and event stream files by their paths
// (log rotation). Outputs to stdout or stderr are left alone.
func (o *Outputs) Reopen() error {
	var errs []error
	if al := o.access.Load(); al != nil {
		if err := al.out.Reopen(); err != nil {
			errs = append(errs, fmt.Errorf("access_log: %w", err))
		}
	}
	if s := o.events.current(); s != nil && s.out != nil {
		if err := s.out.Reopen(); err != nil {
			errs = append(errs, fmt.Errorf("security_events: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Abandon stops the event stream and tracer at once (a start that failed).
func (o *Outputs) Abandon() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	o.tracing.Load().shutdown()
	_ = o.events.current().close(ctx)
}

// Close writes out and closes every output; ctx bounds the flush. The
// journal is sealed with a checkpoint.
func (o *Outputs) Close(ctx context.Context) error {
	var errs []error
	if err := o.journal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("journal: %w", err))
	}
	if al := o.access.Load(); al != nil {
		_ = al.out.Close()
	}
	if tr := o.tracing.Load(); tr != nil {
		if err := tr.t.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tracing: %w", err))
		}
	}
	if err := o.events.current().close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("security events: %w", err))
	}
	return errors.Join(errs...)
}

// OutputChange is what a reload opened for the sections that changed;
// the outputs in service stay until Commit.
type OutputChange struct {
	tracingChanged, eventsChanged, accessChanged bool
	tracing                                      *tracing     // nil: section removed
	events                                       *eventStream // nil: stream off
	access                                       *accessLog   // nil: log off
}

// Prepare opens new outputs for the tracing, security_events and
// access_log sections of next that differ from prev (a new sample ratio
// or collector, a rotated token, another file). On error nothing stays
// open.
func (o *Outputs) Prepare(prev, next *config.Config) (*OutputChange, error) {
	c := &OutputChange{
		tracingChanged: !reflect.DeepEqual(prev.Tracing, next.Tracing),
		eventsChanged:  o.events != nil && !reflect.DeepEqual(prev.SecurityEvents, next.SecurityEvents), // when the gateway owns the stream
		accessChanged:  !reflect.DeepEqual(prev.AccessLog, next.AccessLog),
	}
	var err error
	if c.tracingChanged {
		if c.tracing, err = openTracing(next.Tracing); err != nil {
			return nil, next.Problem("tracing", "%v", err)
		}
	}
	if c.eventsChanged {
		if c.events, err = openEvents(next.SecurityEvents, o.log); err != nil {
			c.Discard()
			return nil, next.Problem("security_events.output", "%v", err)
		}
	}
	if c.accessChanged {
		if c.access, err = openAccessLog(next.AccessLog); err != nil {
			c.Discard()
			return nil, next.Problem("access_log.output", "%v", err)
		}
	}
	return c, nil
}

// Discard closes what Prepare opened (a reload that failed later).
func (c *OutputChange) Discard() {
	c.tracing.shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.events.close(ctx)
	if c.access != nil {
		_ = c.access.out.Close()
	}
}

// Commit puts the changed outputs in service and retires the old ones:
// they write out what they hold and close. Spans of requests still in
// flight on an old tracer end after it and are dropped.
func (o *Outputs) Commit(c *OutputChange) {
	if c.eventsChanged {
		o.events.swap(c.events)
	}
	if c.accessChanged {
		if prev := o.access.Swap(c.access); prev != nil {
			// Requests that loaded the old log a moment ago still write
			// to it: close it once they are done.
			time.AfterFunc(time.Second, func() { _ = prev.out.Close() })
		}
	}
	if c.tracingChanged {
		go o.tracing.Swap(c.tracing).shutdown()
	}
}

// Tracer is the tracer in service (nil without a tracing section).
func (o *Outputs) Tracer() *Tracer {
	if tr := o.tracing.Load(); tr != nil {
		return tr.t
	}
	return nil
}
