// Package redisbatch coalesces the gateway's Redis commands: whatever
// commands requests are waiting to send when the previous batch returns
// go to Redis together, pipelined, one write and one read for all of
// them. Under load that amortises a round trip's system calls and
// wake-ups over many requests: the rate limiter's checks, the
// idempotency claims and the race detector's counts of concurrent
// requests share them. A command may also be sent without waiting for
// its reply (storing an answer after the response left).
package redisbatch

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Batcher sends the commands of one Redis client in batches.
type Batcher struct {
	client  redis.UniversalClient
	conn    *redis.Conn // the loop's own connection (one server), nil until the first batch
	timeout time.Duration
	ops     chan *op
	stop    chan struct{}
	exited  chan struct{} // closed when the loop has returned
}

// Queue adds an operation's commands to a pipeline; the commands it
// returns are read by the caller once Do returns.
type Queue func(ctx context.Context, p redis.Pipeliner)

type op struct {
	queue   Queue
	scripts []*redis.Script // loaded again if Redis lost them
	done    chan struct{}   // nil: nobody waits
	queued  time.Time
	cmds    []redis.Cmder
	err     error // not sent: queued longer than the timeout
}

// maxBatch bounds the commands of one pipeline; queued bounds those
// waiting for the next.
const (
	maxBatch = 128
	queued   = 4096
)

// New starts a batcher on client; each batch times out after timeout.
func New(client redis.UniversalClient, timeout time.Duration) *Batcher {
	b := &Batcher{client: client, timeout: timeout, ops: make(chan *op, queued), stop: make(chan struct{}), exited: make(chan struct{})}
	go b.loop()
	return b
}

// Close stops the batcher, once its batch in flight returned (at most
// its timeout), so that the client can be closed after it; operations
// queued after are not sent.
func (b *Batcher) Close() {
	close(b.stop)
	select {
	case <-b.exited:
	case <-time.After(2 * b.timeout): // a client without read timeouts
	}
}

func (b *Batcher) closed() bool {
	select {
	case <-b.stop:
		return true
	default:
		return false
	}
}

// Client is the batcher's Redis client.
func (b *Batcher) Client() redis.UniversalClient { return b.client }

// ErrClosed is returned by an operation given to a closed batcher.
var ErrClosed = errors.New("redis batcher closed")

// Do queues an operation and waits until its batch returned (or ctx
// ends; when Redis does not answer, at most about twice the batcher's
// timeout: the batch before it, then its own): the commands q queued
// then hold their replies. scripts are the Lua scripts q runs by hash,
// loaded again if Redis restarted and lost them.
func (b *Batcher) Do(ctx context.Context, q Queue, scripts ...*redis.Script) error {
	if b.closed() {
		return ErrClosed
	}
	o := &op{queue: q, scripts: scripts, done: make(chan struct{}), queued: time.Now()}
	if err := b.enqueue(ctx, o); err != nil {
		return err
	}
	// No timer of its own: the loop fails an operation queued longer than
	// the timeout, and a batch lasts at most the timeout.
	select {
	case <-o.done:
		if o.err != nil {
			return o.err
		}
		return firstErr(o.cmds)
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return ErrClosed
	}
}

// Send queues an operation without waiting for its reply: it waits only
// while the queue is full (at most the batcher's timeout).
func (b *Batcher) Send(q Queue, scripts ...*redis.Script) error {
	if b.closed() {
		return ErrClosed
	}
	return b.enqueue(context.Background(), &op{queue: q, scripts: scripts, queued: time.Now()})
}

// enqueue hands o to the loop, waiting while the queue is full (at most
// the timeout).
func (b *Batcher) enqueue(ctx context.Context, o *op) error {
	select {
	case b.ops <- o:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	select {
	case b.ops <- o:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return ErrClosed
	}
}

func (b *Batcher) loop() {
	defer func() {
		if b.conn != nil {
			_ = b.conn.Close()
		}
		close(b.exited)
	}()
	batch := make([]*op, 0, maxBatch)
	for {
		select {
		case <-b.stop:
			return
		case o := <-b.ops:
			batch = append(batch[:0], o)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case o := <-b.ops:
				batch = append(batch, o)
			default:
				break drain
			}
		}
		b.run(batch)
		clear(batch)
	}
}

// run sends a batch; the operations that failed because Redis lost a
// script are sent once more after loading it.
func (b *Batcher) run(batch []*op) {
	// An operation whose caller waits and has waited past the timeout is
	// failed, not sent; what was sent without waiting is always sent (a
	// kept answer lost would leave its key in flight).
	now := time.Now()
	live := batch[:0:0]
	for _, o := range batch {
		if o.done != nil && now.Sub(o.queued) > b.timeout {
			o.err = context.DeadlineExceeded
		} else {
			live = append(live, o)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	b.exec(ctx, live)
	var again []*op
	for _, o := range live {
		if isNoScript(firstErr(o.cmds)) {
			again = append(again, o)
		}
	}
	if len(again) > 0 && b.load(ctx, again) == nil {
		b.exec(ctx, again)
	}
	for _, o := range batch {
		if o.done != nil {
			close(o.done)
		}
	}
}

// exec sends the operations in one pipeline; each keeps its commands
// (a transport error is in every command).
func (b *Batcher) exec(ctx context.Context, batch []*op) {
	pipe := b.pipeline()
	for _, o := range batch {
		n := pipe.Len()
		o.queue(ctx, pipe)
		o.cmds = nil
		if added := pipe.Len() - n; added > 0 {
			o.cmds = make([]redis.Cmder, added)
		}
	}
	cmds, err := pipe.Exec(ctx)
	var reply redis.Error
	if err != nil && !errors.As(err, &reply) && b.conn != nil {
		// The connection failed (a restart, a failover): it stays
		// failed, so the next batch opens another.
		_ = b.conn.Close()
		b.conn = nil
	}
	i := 0
	for _, o := range batch {
		i += copy(o.cmds, cmds[i:])
	}
}

// pipeline starts a batch: on the loop's own connection when the
// client talks to one server (a batch then skips the pool, whose health
// check costs a system call each time), else through the client
// (Cluster: a batch may go to several nodes).
func (b *Batcher) pipeline() redis.Pipeliner {
	c, ok := b.client.(*redis.Client)
	if !ok {
		return b.client.Pipeline()
	}
	if b.conn == nil {
		b.conn = c.Conn()
	}
	return b.conn.Pipeline()
}

// load loads the scripts of ops.
func (b *Batcher) load(ctx context.Context, ops []*op) error {
	seen := map[*redis.Script]bool{}
	for _, o := range ops {
		for _, s := range o.scripts {
			if !seen[s] {
				seen[s] = true
				if err := s.Load(ctx, b.client).Err(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func firstErr(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
