package race

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/redisbatch"
	"github.com/rampart-gw/rampart/internal/testredis"
)

// Both counters count within a window that starts with the first request,
// and start again after it.
func TestCounters(t *testing.T) {
	srv := testredis.Start(t, "")
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	batch := redisbatch.New(c, time.Second)
	t.Cleanup(batch.Close)
	now := time.Now()
	local := NewLocal(2, func() time.Time { return now })
	ctx := context.Background()
	for name, ctr := range map[string]Counter{"local": local, "redis": NewRedis(batch, "t:")} {
		for i, want := range []int64{1, 2, 3} {
			if n, err := ctr.Add(ctx, "k", 300*time.Millisecond); err != nil || n != want {
				t.Fatalf("%s: add %d: %d %v", name, i, n, err)
			}
		}
	}
	now = now.Add(time.Second)
	time.Sleep(350 * time.Millisecond)
	for name, ctr := range map[string]Counter{"local": local, "redis": NewRedis(batch, "t:")} {
		if n, _ := ctr.Add(ctx, "k", time.Second); n != 1 {
			t.Fatalf("%s: after the window: %d", name, n)
		}
	}
	// The local counter holds at most its bound: two keys per shard here.
	local = NewLocal(2*localShards, func() time.Time { return now })
	same := keysOfOneShard(3)
	a, b, c3 := same[0], same[1], same[2]
	local.Add(ctx, a, time.Minute)
	local.Add(ctx, b, time.Minute)
	if sh := &local.shards[pipeline.Key32(a)[0]%localShards]; sh.size != 2 || len(sh.byKey) != 2 {
		t.Fatalf("%d keys", sh.size)
	}
	// Over its bound, the oldest window goes first; a live key counts on.
	if n, _ := local.Add(ctx, b, time.Minute); n != 2 {
		t.Fatalf("b counted %d", n)
	}
	local.Add(ctx, c3, time.Minute)
	if n, _ := local.Add(ctx, a, time.Minute); n != 1 {
		t.Fatalf("a, evicted by c, counted %d", n)
	}
}

// keysOfOneShard returns n keys that fall in one shard of a Local.
func keysOfOneShard(n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprint("key", i)
		if pipeline.Key32(k)[0]%localShards == 0 {
			out = append(out, k)
		}
	}
	return out
}

// A local counter's memory follows its keys: a shard's ring starts
// small and doubles up to its bound, the counts kept in order across
// each growth.
func TestLocalGrowsWithItsKeys(t *testing.T) {
	now := time.Now()
	local := NewLocal(1000*localShards, func() time.Time { return now })
	ctx := context.Background()
	sh := &local.shards[0]
	if len(sh.ring) != 0 {
		t.Fatalf("an unused shard holds %d counts", len(sh.ring))
	}
	keys := keysOfOneShard(1500)
	for _, k := range keys[:300] {
		local.Add(ctx, k, time.Minute)
	}
	if len(sh.ring) != 512 || sh.size != 300 {
		t.Fatalf("300 keys: ring of %d, %d counts", len(sh.ring), sh.size)
	}
	for _, k := range keys[:300] {
		if n, _ := local.Add(ctx, k, time.Minute); n != 2 {
			t.Fatalf("%s counted %d after the ring grew", k, n)
		}
	}
	for _, k := range keys[300:] {
		local.Add(ctx, k, time.Minute)
	}
	if len(sh.ring) != 1000 || sh.size != 1000 || len(sh.byKey) != 1000 {
		t.Fatalf("1500 keys: ring of %d, %d counts, %d indexed", len(sh.ring), sh.size, len(sh.byKey))
	}
	// The oldest 500 went first; the newest count on.
	if n, _ := local.Add(ctx, keys[0], time.Minute); n != 1 {
		t.Fatalf("the oldest key counted %d", n)
	}
	if n, _ := local.Add(ctx, keys[1499], time.Minute); n != 2 {
		t.Fatalf("the newest key counted %d", n)
	}
}
