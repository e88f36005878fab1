package redisbatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/testredis"
)

// pipelines counts the pipelines a client sends.
type pipelines struct{ n atomic.Int64 }

func (h *pipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *pipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *pipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

func start(t *testing.T) (*Batcher, *redis.Client, *pipelines) {
	srv := testredis.Start(t, "")
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	hook := &pipelines{}
	c.AddHook(hook)
	b := New(c, 2*time.Second)
	t.Cleanup(func() { b.Close(); c.Close() })
	return b, c, hook
}

var incrScript = redis.NewScript(`return redis.call("INCRBY", KEYS[1], ARGV[1])`)

// Concurrent operations share pipelines, and each gets its own replies.
func TestCoalescesConcurrentOperations(t *testing.T) {
	b, _, hook := start(t)
	const n = 400
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cmd *redis.Cmd
			err := b.Do(context.Background(), func(ctx context.Context, p redis.Pipeliner) {
				cmd = incrScript.EvalSha(ctx, p, []string{fmt.Sprint("k", i)}, i+1)
			}, incrScript)
			if v, _ := cmd.Int(); err != nil || v != i+1 {
				errs <- fmt.Errorf("operation %d: %d %v", i, v, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The first batch finds the script missing: it is loaded and that
	// batch sent again.
	if got := hook.n.Load(); got >= n {
		t.Fatalf("%d operations took %d pipelines", n, got)
	}
}

// A script Redis lost (a restart, SCRIPT FLUSH) is loaded again and
// the operation succeeds.
func TestReloadsLostScripts(t *testing.T) {
	b, c, _ := start(t)
	ctx := context.Background()
	for round := range 2 {
		var cmd *redis.Cmd
		err := b.Do(ctx, func(ctx context.Context, p redis.Pipeliner) { cmd = incrScript.EvalSha(ctx, p, []string{"s"}, 1) }, incrScript)
		if v, _ := cmd.Int(); err != nil || v != round+1 {
			t.Fatalf("round %d: %d %v", round, v, err)
		}
		c.ScriptFlush(ctx)
	}
}

// What is sent without waiting reaches Redis before what is queued after
// it.
func TestSendIsOrderedBeforeLaterOperations(t *testing.T) {
	b, _, _ := start(t)
	ctx := context.Background()
	for i := range 100 {
		key := fmt.Sprint("o", i)
		if err := b.Send(func(ctx context.Context, p redis.Pipeliner) { p.Set(ctx, key, "v", time.Minute) }); err != nil {
			t.Fatal(err)
		}
		var get *redis.StringCmd
		if err := b.Do(ctx, func(ctx context.Context, p redis.Pipeliner) { get = p.Get(ctx, key) }); err != nil || get.Val() != "v" {
			t.Fatalf("%d: %q %v", i, get.Val(), err)
		}
	}
}

// A missing key is not an error; a command's own error is that
// operation's alone.
func TestErrorsBelongToTheirOperation(t *testing.T) {
	b, _, _ := start(t)
	ctx := context.Background()
	var get *redis.StringCmd
	if err := b.Do(ctx, func(ctx context.Context, p redis.Pipeliner) { get = p.Get(ctx, "missing") }); err != nil || !errors.Is(get.Err(), redis.Nil) {
		t.Fatalf("%v %v", err, get.Err())
	}
	var wg sync.WaitGroup
	var bad, good error
	wg.Add(2)
	go func() {
		defer wg.Done()
		bad = b.Do(ctx, func(ctx context.Context, p redis.Pipeliner) { p.Do(ctx, "NOSUCHCOMMAND") })
	}()
	go func() {
		defer wg.Done()
		good = b.Do(ctx, func(ctx context.Context, p redis.Pipeliner) { p.Set(ctx, "x", 1, time.Minute) })
	}()
	wg.Wait()
	if bad == nil || good != nil {
		t.Fatalf("bad: %v, good: %v", bad, good)
	}
}

// A Redis that accepts and never answers: the caller gets an error
// within the timeout, not a hang; a closed batcher refuses at once.
func TestTimeoutAndClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	c := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), Protocol: 2, ReadTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	b := New(c, 200*time.Millisecond)
	t0 := time.Now()
	err = b.Do(context.Background(), func(ctx context.Context, p redis.Pipeliner) { p.Get(ctx, "k") })
	if err == nil || time.Since(t0) > 2*time.Second {
		t.Fatalf("%v after %v", err, time.Since(t0))
	}
	b.Close()
	if err := b.Do(context.Background(), func(ctx context.Context, p redis.Pipeliner) { p.Get(ctx, "k") }); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// When Redis drops the batcher's own connection (a CLIENT KILL, a
// failover) or goes away and comes back (a restart), the batches fail
// meanwhile and succeed again once it answers.
func TestReconnectsAfterTheConnectionDrops(t *testing.T) {
	srv := testredis.Start(t, "")
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2, MaxRetries: -1})
	b := New(c, time.Second)
	t.Cleanup(func() { b.Close(); c.Close() })
	ctx := context.Background()
	set := func() error {
		return b.Do(ctx, func(ctx context.Context, p redis.Pipeliner) { p.Set(ctx, "k", "v", time.Minute) })
	}
	recovers := func(what string) {
		t.Helper()
		var err error
		for range 20 {
			if err = set(); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no batch succeeded after %s: %v", what, err)
	}
	recovers("the start")
	killer := redis.NewClient(&redis.Options{Addr: srv.Addr})
	if err := killer.ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	killer.Close()
	recovers("CLIENT KILL")
	srv.Stop()
	if err := set(); err == nil {
		t.Fatal("a batch succeeded with Redis stopped")
	}
	testredis.Start(t, srv.Addr)
	recovers("a restart")
}

// Behind a batch that hangs, an operation whose caller waits fails once
// it has waited longer than the timeout, without being sent; what was
// sent without waiting is still sent when Redis answers again.
func TestStaleOperations(t *testing.T) {
	_, c, _ := start(t)
	b := New(c, time.Second)
	t.Cleanup(b.Close)
	ctx := context.Background()
	blocker := redis.NewClient(&redis.Options{Addr: c.Options().Addr})
	defer blocker.Close()
	// A script busy for 2.5 s holds Redis (this batcher's timeout is
	// 1 s): the first batch hangs, the operations behind it grow stale.
	go blocker.Eval(ctx, `local t = redis.call("TIME") local s = t[1] + t[2] / 1e6
while true do local n = redis.call("TIME") if n[1] + n[2] / 1e6 - s > 2.5 then return 1 end end`, nil)
	time.Sleep(100 * time.Millisecond)
	go b.Do(ctx, func(ctx context.Context, p redis.Pipeliner) { p.Get(ctx, "first") })
	time.Sleep(100 * time.Millisecond)
	if err := b.Send(func(ctx context.Context, p redis.Pipeliner) { p.Set(ctx, "kept", "answer", time.Minute) }); err != nil {
		t.Fatal(err)
	}
	err := b.Do(ctx, func(ctx context.Context, p redis.Pipeliner) { p.Set(ctx, "stale", "x", time.Minute) })
	if err == nil {
		t.Fatal("an operation queued past the timeout succeeded")
	}
	for range 50 {
		if v, _ := c.Get(ctx, "kept").Result(); v == "answer" {
			if n, _ := c.Exists(ctx, "stale").Result(); n != 0 {
				t.Fatal("a stale operation was sent")
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("what was sent without waiting was dropped")
}
