package idempotency

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"hash/maphash"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/redisbatch"
	"github.com/rampart-gw/rampart/internal/store"
	"github.com/rampart-gw/rampart/internal/testredis"
)

func TestParseKey(t *testing.T) {
	for in, want := range map[string]string{`"abc"`: "abc", "abc": "abc", ` "a-b_c.9" `: "a-b_c.9", `""`: "", "": "",
		strings.Repeat("x", 256): "", `a"b`: "", "a\\b": "", "ключ": "", "a\x7fb": ""} {
		got, ok := parseKey([]string{in})
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v", in, got, ok)
		}
	}
	if _, ok := parseKey([]string{"a", "b"}); ok {
		t.Error("two header lines accepted")
	}
}

// The local store holds at most max keys (oldest out first), forgets
// expired ones, and a caller flooding keys evicts only its own.
func TestLocalStoreBounds(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLocal(3, 3, 1<<20, func() time.Time { return now })
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "d"} {
		if ok, _, _ := l.Claim(ctx, "o"+k, k, []byte(k), time.Minute); !ok {
			t.Fatal(k)
		}
	}
	if l.Len() != 3 {
		t.Fatalf("%d keys", l.Len())
	}
	if ok, _, _ := l.Claim(ctx, "oa", "a", []byte("a2"), time.Minute); !ok {
		t.Fatal("the oldest key was not evicted")
	}
	if ok, held, _ := l.Claim(ctx, "od", "d", []byte("x"), time.Minute); ok || string(held) != "d" {
		t.Fatal("a held key was claimed again")
	}
	now = now.Add(2 * time.Minute)
	if ok, _, _ := l.Claim(ctx, "od", "d", []byte("x"), time.Minute); !ok {
		t.Fatal("an expired key is still held")
	}

	// A victim's record survives a flood of keys by one attacker.
	l = NewLocal(1000, 10, 1<<20, time.Now)
	l.Claim(ctx, "victim", "victim-key", []byte("v"), time.Hour)
	for i := range 100000 {
		l.Claim(ctx, "mallory", fmt.Sprint("k", i), []byte("m"), time.Hour)
	}
	if ok, held, _ := l.Claim(ctx, "victim", "victim-key", []byte("again"), time.Hour); ok || string(held) != "v" {
		t.Fatal("the victim's record was evicted by another caller's flood")
	}
	if l.Len() != 11 {
		t.Fatalf("%d keys held", l.Len())
	}

	// Large answers from many callers cycle the store within its bytes:
	// keys alone would let 1,000 answers of 100 KiB hold 100 MiB.
	l = NewLocal(1000, 10, 1<<20, time.Now)
	for i := range 200 {
		l.Put(ctx, fmt.Sprint("caller", i%50), fmt.Sprint("big", i), make([]byte, 100<<10), time.Hour)
		if l.Bytes() > 1<<20 {
			t.Fatalf("after %d answers the store holds %d bytes", i+1, l.Bytes())
		}
	}
	if l.Len() != 10 {
		t.Fatalf("%d answers of 100 KiB held in 1 MiB", l.Len())
	}
}

// Redis: one of many parallel claims wins.
func TestRedisClaimIsExclusive(t *testing.T) {
	srv := testredis.Start(t, "")
	r := NewRedis(testBatcher(t, srv.Addr), "test:")
	var won atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _, err := r.Claim(context.Background(), "o", "k", []byte("v"), time.Minute); err == nil && ok {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d claims won", won.Load())
	}
}

// ClaimCounting: a fresh key is claimed and the counter counted in one
// round trip; a held key is not claimed and the counter is not counted;
// of sixteen parallel claims of one key, one wins and one count is made.
func TestRedisClaimCounting(t *testing.T) {
	srv := testredis.Start(t, "")
	batch := testBatcher(t, srv.Addr)
	c, r := batch.Client(), NewRedis(batch, "test:")
	ctx := context.Background()
	for i, want := range []int64{1, 2} {
		claimed, _, n, err := r.ClaimCounting(ctx, fmt.Sprint("key", i), []byte("claim"), time.Minute, "test:race:x", time.Second)
		if err != nil || !claimed || n != want {
			t.Fatalf("claim %d: %v %d %v", i, claimed, n, err)
		}
	}
	claimed, held, _, err := r.ClaimCounting(ctx, "key0", []byte("other"), time.Minute, "test:race:x", time.Second)
	if err != nil || claimed || string(held) != "claim" {
		t.Fatalf("a held key: %v %q %v", claimed, held, err)
	}
	if n, _ := c.Get(ctx, "test:race:x").Int64(); n != 2 {
		t.Fatalf("a held key was counted: %d", n)
	}
	if ttl := c.PTTL(ctx, "test:race:x").Val(); ttl <= 0 || ttl > time.Second {
		t.Fatalf("the count's window: %v", ttl)
	}
	var won, counted atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _, n, err := r.ClaimCounting(ctx, "contended", []byte("v"), time.Minute, "test:race:y", time.Minute); err == nil && ok {
				won.Add(1)
				counted.Store(n)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 || counted.Load() != 1 {
		t.Fatalf("%d claims won, count %d", won.Load(), counted.Load())
	}
}

// Stored responses are sealed: the store holds no response text.
func TestStoredResponsesSealed(t *testing.T) {
	k := make([]byte, store.MasterKeyBytes)
	rand.Read(k)
	seal, _ := store.New(k)
	local := NewLocal(10, 10, 1<<20, time.Now)
	mw := Stage(config.Route{ID: "pay", Idempotency: &config.Idempotency{TTL: config.Duration(time.Hour), Methods: []string{"POST"},
		MaxResponseBytes: 1024, MaxKeys: 10, MaxKeysPerCaller: 10}}, local, seal, nil)
	h := mw(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(201)
		w.Write([]byte(`{"card":"4111111111111111"}`))
		return nil
	})
	req := httptest.NewRequest(http.MethodPost, "/pay", strings.NewReader("{}"))
	req.Header.Set(Header, "k1")
	req = req.WithContext(pipeline.WithScope(req.Context(), &pipeline.Scope{}))
	if err := h(httptest.NewRecorder(), req); err != nil {
		t.Fatal(err)
	}
	sh := local.shards[0]
	for _, el := range sh.byKey {
		if e := sh.slots[el]; bytes.Contains(sh.ring[e.off:e.off+e.n], []byte("4111")) {
			t.Fatal("a stored response is in the clear")
		}
	}
	req2 := httptest.NewRequest(http.MethodPost, "/pay", strings.NewReader("{}"))
	req2.Header.Set(Header, "k1")
	req2 = req2.WithContext(pipeline.WithScope(req2.Context(), &pipeline.Scope{}))
	w := httptest.NewRecorder()
	if err := h(w, req2); err != nil || w.Code != 201 || !strings.Contains(w.Body.String(), "4111") || w.Header().Get(ReplayedHeader) != "true" {
		t.Fatalf("replay: %v %d %q", err, w.Code, w.Body.String())
	}
}

// Records round-trip; a damaged one is an error, never a replay.
func TestRecordEncoding(t *testing.T) {
	rec := &record{Fingerprint: strings.Repeat("\xff", 32), Done: true, Replayable: true, Status: 201,
		Header: http.Header{"Location": {"/x/1"}, "Set-Cookie": {"a=1", "b=2"}}, Body: []byte(`{"ok":true}`)}
	b := rec.marshal()
	got, err := unmarshal(b)
	if err != nil || got.Fingerprint != rec.Fingerprint || !got.Done || !got.Replayable || got.Status != 201 ||
		got.Header.Get("Location") != "/x/1" || len(got.Header["Set-Cookie"]) != 2 || string(got.Body) != `{"ok":true}` {
		t.Fatalf("%+v %v", got, err)
	}
	for cut := 0; cut < len(b); cut++ {
		if _, err := unmarshal(b[:cut]); err == nil {
			t.Fatalf("a record cut at %d decoded", cut)
		}
	}
	if _, err := unmarshal(append(b, 0)); err == nil {
		t.Fatal("trailing bytes accepted")
	}
	// A record of the first version (the body's length as a uvarint),
	// stored in Redis before an upgrade, still replays.
	v1 := []byte{1, 3, 0, 201, 2, 'f', 'p', 0, 4, 'b', 'o', 'd', 'y'}
	if got, err := unmarshal(v1); err != nil || got.Fingerprint != "fp" || got.Status != 201 || !got.Replayable || string(got.Body) != "body" {
		t.Fatalf("version 1: %+v %v", got, err)
	}
	if _, err := unmarshal(v1[:len(v1)-1]); err == nil {
		t.Fatal("a cut version 1 record decoded")
	}
}

// TestLocalStoreLinks: after a random mix of claims, puts and releases
// of records of many sizes by a few owners, every key is on the order
// chain once and on its owner's chain once, the bounds hold, and every
// record is intact in the ring, in order, overlapping no other.
func TestLocalStoreLinks(t *testing.T) {
	now := time.Unix(1000, 0)
	local := NewLocal(50, 8, 4096, func() time.Time { return now })
	l := local.shards[0]
	ctx := context.Background()
	rng := mrand.New(mrand.NewPCG(1, 2))
	for i := range 20000 {
		owner, key := fmt.Sprint("o", rng.IntN(12)), fmt.Sprint("k", rng.IntN(200))
		rec := []byte(key + "|" + strings.Repeat("x", rng.IntN(600)))
		switch rng.IntN(4) {
		case 0:
			local.Release(ctx, key)
		case 1:
			local.Put(ctx, owner, key, rec, time.Minute)
		default:
			local.Claim(ctx, owner, key, rec, time.Minute)
		}
		if i%1000 == 0 {
			now = now.Add(30 * time.Second)
		}
		seen := map[int32]bool{}
		for j := l.order.head; j >= 0; j = l.slots[j].next {
			if seen[j] {
				t.Fatal("a cycle in the order chain")
			}
			seen[j] = true
		}
		owned := 0
		for o, oc := range l.byOwner {
			n := 0
			for j := oc.head; j >= 0; j = l.slots[j].onext {
				if l.slots[j].owner != o || !seen[j] {
					t.Fatal("an owner chain holds a stranger or a removed slot")
				}
				n++
			}
			if n != oc.n || n > 8 {
				t.Fatalf("owner chain of %d, counted %d", n, oc.n)
			}
			owned += n
		}
		var held int64
		for j := range seen {
			e := l.slots[j]
			held += int64(e.n)
			k, _, _ := strings.Cut(string(l.ring[e.off:e.off+e.n]), "|")
			if pipeline.Key32(k) != e.key {
				t.Fatalf("the record of slot %d was overwritten", j)
			}
		}
		checkRingOrder(t, l)
		if held != l.bytes || l.bytes > 4096 {
			t.Fatalf("records of %d bytes, counted %d", held, l.bytes)
		}
		if len(seen) != len(l.byKey) || owned != len(l.byKey) || len(l.byKey) > 50 {
			t.Fatalf("order %d, owned %d, keys %d", len(seen), owned, len(l.byKey))
		}
	}
}

// checkRingOrder: the records follow each other in the ring in the order
// they were stored, oldest first, wrapping at most once, and overlap
// neither each other nor the space after the newest.
func checkRingOrder(t *testing.T, l *shard) {
	t.Helper()
	wraps, end := 0, -1
	for j := l.order.head; j >= 0; j = l.slots[j].next {
		e := l.slots[j]
		if e.off+e.n > len(l.ring) {
			t.Fatalf("a record past the ring's end")
		}
		if end >= 0 && e.off < end {
			if wraps++; wraps > 1 {
				t.Fatalf("the ring wraps twice")
			}
		}
		end = e.off + e.n
	}
	if len(l.byKey) == 0 {
		return
	}
	if h := l.slots[l.order.head]; end > l.w && (wraps > 0 || h.off < l.w) {
		t.Fatalf("the newest record ends at %d, past where the next goes (%d)", end, l.w)
	}
	if h := l.slots[l.order.head]; wraps == 1 && h.off < l.w {
		t.Fatalf("the newest records overwrote the oldest")
	}
}

// A record larger than the store's bound is kept alone, and the store
// then takes small records again.
func TestLocalStoreOversizedRecord(t *testing.T) {
	l := NewLocal(100, 100, 1000, time.Now)
	ctx := context.Background()
	for i := range 5 {
		l.Put(ctx, "o", fmt.Sprint("s", i), bytes.Repeat([]byte{'s'}, 100), time.Minute)
	}
	l.Put(ctx, "o", "big", bytes.Repeat([]byte{'b'}, 5000), time.Minute)
	if l.Len() != 1 || l.Bytes() != 5000 {
		t.Fatalf("%d keys, %d bytes", l.Len(), l.Bytes())
	}
	if ok, got, _ := l.Claim(ctx, "o", "big", nil, time.Minute); ok || len(got) != 5000 || got[4999] != 'b' {
		t.Fatalf("the large record: claimed %v, %d bytes", ok, len(got))
	}
	for i := range 5 {
		l.Put(ctx, "o", fmt.Sprint("t", i), bytes.Repeat([]byte{'t'}, 100), time.Minute)
	}
	if l.Len() != 5 || l.Bytes() != 500 {
		t.Fatalf("%d keys, %d bytes", l.Len(), l.Bytes())
	}
	checkRingOrder(t, l.shards[0])
}

// testBatcher is a batcher on a client of the Redis server at addr,
// closed with the test.
func testBatcher(t *testing.T, addr string) *redisbatch.Batcher {
	c := redis.NewClient(&redis.Options{Addr: addr})
	b := redisbatch.New(c, time.Second)
	t.Cleanup(func() { b.Close(); c.Close() })
	return b
}

// Redis: an answer is stored without waiting, yet a retry on the same
// instance right after it finds it (its claim is queued after the
// answer), never the claim it replaced.
func TestRedisPutThenRetry(t *testing.T) {
	srv := testredis.Start(t, "")
	r := NewRedis(testBatcher(t, srv.Addr), "test:")
	ctx := context.Background()
	for i := range 200 {
		key := fmt.Sprint("k", i)
		if ok, _, err := r.Claim(ctx, "o", key, []byte("claim"), time.Minute); !ok || err != nil {
			t.Fatalf("claim %d: %v %v", i, ok, err)
		}
		if err := r.Put(ctx, "o", key, []byte("answer"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if ok, held, err := r.Claim(ctx, "o", key, []byte("claim"), time.Minute); ok || err != nil || string(held) != "answer" {
			t.Fatalf("retry %d: claimed %v, held %q, %v", i, ok, held, err)
		}
	}
}

// A large store is split by caller: each caller's keys live in one
// shard, where its bound holds, and the store's bound holds in all.
func TestLocalStoreShards(t *testing.T) {
	l := NewLocal(800, 10, 64<<20, time.Now)
	if len(l.shards) != maxShards {
		t.Fatalf("%d shards", len(l.shards))
	}
	ctx := context.Background()
	for i := range 5000 {
		owner := fmt.Sprint("caller", i%150)
		l.Put(ctx, owner, fmt.Sprint(owner, "/", i), []byte("answer"), time.Minute)
	}
	if l.Len() > 800 {
		t.Fatalf("%d keys held", l.Len())
	}
	for i := range 150 {
		owner := fmt.Sprint("caller", i)
		_, home := l.of(owner)
		for _, s := range l.shards {
			oc := s.byOwner[maphash.String(l.seed, owner)]
			if s != home && oc.n > 0 || oc.n > 10 {
				t.Fatalf("%s: %d keys in a shard", owner, oc.n)
			}
		}
	}
	// A released key is gone, whichever shard held it.
	l.Put(ctx, "x", "released", []byte("a"), time.Minute)
	l.Release(ctx, "released")
	if ok, _, _ := l.Claim(ctx, "x", "released", []byte("b"), time.Minute); !ok {
		t.Fatal("a released key is still held")
	}
}
