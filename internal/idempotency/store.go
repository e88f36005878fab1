package idempotency

import (
	"bytes"
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/redisbatch"
	"github.com/redis/go-redis/v9"
)

// Store keeps records by scoped key, each owned by a caller. Claim
// stores rec only if the key is free (or expired) and reports whether it
// did; otherwise it returns the record there.
type Store interface {
	Claim(ctx context.Context, owner, key string, rec []byte, ttl time.Duration) (claimed bool, existing []byte, err error)
	Put(ctx context.Context, owner, key string, rec []byte, ttl time.Duration) error
	Release(ctx context.Context, key string) error
}

// Local keeps records in memory: at most perOwner for one caller (its
// oldest make room for its new ones, so a caller flooding keys evicts only
// its own), at most max in all and at most maxBytes of records (the
// oldest make room; one record over the bound is kept alone), all O(1)
// amortised. It is split in up to eight shards by caller, each with its
// share of max and maxBytes, so that concurrent requests rarely wait for
// each other.
type Local struct {
	seed   maphash.Seed
	shards []*shard
}

// shard is a part of a Local. Its records are copied into one ring of
// bytes in the order they were stored (the oldest are overwritten
// first, which is also the order of their expiry, since a route's keys
// share a TTL), and the entries that index them live in one slice
// linked by index, keyed by 32-byte arrays and owner hashes. Nothing in
// it holds a pointer: a full store is a few large objects the garbage
// collector need not scan, and storing a record allocates nothing once
// the ring has grown.
type shard struct {
	mu       sync.Mutex
	max      int
	perOwner int
	maxBytes int64
	bytes    int64 // of the records held
	ring     []byte
	w        int // where the next record goes in ring
	slots    []localEntry
	free     []int32
	order    chain                 // every entry, oldest first (so in ring order)
	byKey    map[[32]byte]int32    // → slot
	byOwner  map[uint64]ownerChain // → the owner's entries, oldest first
	now      func() time.Time
}

type localEntry struct {
	key          [32]byte
	owner        uint64
	expires      int64 // unix ns
	off, n       int   // the record: ring[off:off+n]
	prev, next   int32 // in order
	oprev, onext int32 // in the owner's chain
}

// maxShards bounds a Local's shards; each gets at least minShardBytes
// and room for perOwner keys.
const (
	maxShards     = 8
	minShardBytes = 1 << 20
)

// minRing is the ring's first size; it doubles up to maxBytes.
const minRing = 64 << 10

// chain is a doubly linked list of slots by index (-1: none).
type chain struct{ head, tail int32 }

type ownerChain struct {
	chain
	n int
}

// NewLocal returns a local store of at most max keys, perOwner per
// caller, maxBytes of records.
func NewLocal(limit, perOwner int, maxBytes int64, now func() time.Time) *Local {
	limit, perOwner = max(limit, 1), max(perOwner, 1)
	n := min(maxShards, limit/perOwner, int(maxBytes/minShardBytes))
	n = max(n, 1)
	l := &Local{seed: maphash.MakeSeed()}
	for range n {
		l.shards = append(l.shards, &shard{max: max(limit/n, 1), perOwner: perOwner, maxBytes: maxBytes / int64(n), order: chain{-1, -1},
			byKey: map[[32]byte]int32{}, byOwner: map[uint64]ownerChain{}, now: now})
	}
	return l
}

// of returns owner's hash and shard.
func (l *Local) of(owner string) (uint64, *shard) {
	h := maphash.String(l.seed, owner)
	return h, l.shards[h%uint64(len(l.shards))]
}

// Claim stores a copy of rec; the record it returns instead is a copy.
func (l *Local) Claim(_ context.Context, owner, key string, rec []byte, ttl time.Duration) (bool, []byte, error) {
	k := pipeline.Key32(key)
	o, s := l.of(owner)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	if i, ok := s.byKey[k]; ok {
		if e := &s.slots[i]; now < e.expires {
			return false, bytes.Clone(s.ring[e.off : e.off+e.n]), nil
		}
		s.remove(i)
	}
	s.insert(o, k, rec, now+int64(ttl))
	return true, nil, nil
}

// Put stores a copy of rec.
func (l *Local) Put(_ context.Context, owner, key string, rec []byte, ttl time.Duration) error {
	k := pipeline.Key32(key)
	o, s := l.of(owner)
	s.mu.Lock()
	defer s.mu.Unlock()
	expires := s.now().UnixNano() + int64(ttl)
	if i, ok := s.byKey[k]; ok && s.slots[i].owner == o {
		s.refresh(i, rec, expires) // the usual case: the answer replaces its claim
		return nil
	} else if ok {
		s.remove(i)
	}
	s.insert(o, k, rec, expires)
	return nil
}

// Release forgets key, whoever holds it.
func (l *Local) Release(_ context.Context, key string) error {
	k := pipeline.Key32(key)
	for _, s := range l.shards {
		s.mu.Lock()
		if i, ok := s.byKey[k]; ok {
			s.remove(i)
		}
		s.mu.Unlock()
	}
	return nil
}

func (l *shard) insert(owner uint64, key [32]byte, rec []byte, expires int64) {
	for oc := l.byOwner[owner]; oc.n >= l.perOwner; oc = l.byOwner[owner] {
		l.remove(oc.head)
	}
	for len(l.byKey) >= l.max || l.order.head >= 0 && l.bytes+int64(len(rec)) > l.maxBytes {
		l.remove(l.order.head)
	}
	off := l.place(len(rec))
	copy(l.ring[off:], rec)
	l.bytes += int64(len(rec))
	var i int32
	if n := len(l.free); n > 0 {
		i, l.free = l.free[n-1], l.free[:n-1]
	} else {
		l.slots = append(l.slots, localEntry{})
		i = int32(len(l.slots) - 1)
	}
	l.slots[i] = localEntry{key: key, owner: owner, expires: expires, off: off, n: len(rec), prev: l.order.tail, next: -1}
	l.link(&l.order, i, func(e *localEntry) *int32 { return &e.next })
	oc := l.byOwner[owner]
	if oc.n == 0 {
		oc.chain = chain{-1, -1}
	}
	l.slots[i].oprev, l.slots[i].onext = oc.tail, -1
	l.link(&oc.chain, i, func(e *localEntry) *int32 { return &e.onext })
	oc.n++
	l.byOwner[owner] = oc
	l.byKey[key] = i
}

// refresh gives slot i a new record, which as the newest goes to the end
// of the order and of the ring: the key's entry, its owner's chain and
// the maps are left as they are.
func (l *shard) refresh(i int32, rec []byte, expires int64) {
	e := &l.slots[i]
	l.bytes -= int64(e.n)
	l.unlink(&l.order, e.prev, e.next, func(x *localEntry) *int32 { return &x.next }, func(x *localEntry) *int32 { return &x.prev })
	for l.order.head >= 0 && l.bytes+int64(len(rec)) > l.maxBytes {
		l.remove(l.order.head)
	}
	off := l.place(len(rec)) // i is out of the order: place never frees it
	copy(l.ring[off:], rec)
	l.bytes += int64(len(rec))
	e = &l.slots[i]
	e.off, e.n, e.expires, e.prev, e.next = off, len(rec), expires, l.order.tail, -1
	l.link(&l.order, i, func(x *localEntry) *int32 { return &x.next })
}

// place finds n free bytes in the ring after the newest record, growing
// the ring while it has not wrapped, else overwriting the oldest records,
// and returns where they start.
func (l *shard) place(n int) int {
	if l.order.head < 0 {
		l.w = 0
		if n > len(l.ring) {
			l.ring = make([]byte, max(n, min(max(2*len(l.ring), minRing), int(l.maxBytes))))
		}
	}
	if l.w+n > len(l.ring) {
		if wrapped := l.order.head >= 0 && l.slots[l.order.head].off >= l.w; !wrapped && len(l.ring) < int(l.maxBytes) {
			grown := make([]byte, max(l.w+n, min(2*len(l.ring), int(l.maxBytes))))
			copy(grown, l.ring[:l.w])
			l.ring = grown
		}
		if l.w+n > len(l.ring) {
			// The records from the oldest to the ring's end are in the
			// way too.
			for l.order.head >= 0 && l.slots[l.order.head].off >= l.w {
				l.remove(l.order.head)
			}
			l.w = 0
		}
	}
	// The oldest record is the first in the ring after w: free the
	// records in the way.
	for l.order.head >= 0 {
		h := &l.slots[l.order.head]
		if h.off >= l.w+n || h.off+h.n <= l.w {
			break
		}
		l.remove(l.order.head)
	}
	if l.order.head < 0 && n > len(l.ring) {
		return l.place(n)
	}
	off := l.w
	l.w += n
	return off
}

// link appends slot i (its prev link already set) to c.
func (l *shard) link(c *chain, i int32, next func(*localEntry) *int32) {
	if c.tail >= 0 {
		*next(&l.slots[c.tail]) = i
	} else {
		c.head = i
	}
	c.tail = i
}

// unlink takes slot i out of c, given its links.
func (l *shard) unlink(c *chain, prev, next int32, prevNext func(*localEntry) *int32, nextPrev func(*localEntry) *int32) {
	if prev >= 0 {
		*prevNext(&l.slots[prev]) = next
	} else {
		c.head = next
	}
	if next >= 0 {
		*nextPrev(&l.slots[next]) = prev
	} else {
		c.tail = prev
	}
}

func (l *shard) remove(i int32) {
	e := l.slots[i]
	l.bytes -= int64(e.n)
	delete(l.byKey, e.key)
	l.unlink(&l.order, e.prev, e.next, func(x *localEntry) *int32 { return &x.next }, func(x *localEntry) *int32 { return &x.prev })
	oc := l.byOwner[e.owner]
	l.unlink(&oc.chain, e.oprev, e.onext, func(x *localEntry) *int32 { return &x.onext }, func(x *localEntry) *int32 { return &x.oprev })
	if oc.n--; oc.n == 0 {
		delete(l.byOwner, e.owner)
	} else {
		l.byOwner[e.owner] = oc
	}
	l.slots[i] = localEntry{}
	l.free = append(l.free, i)
}

// Bytes is the size of the records held (tests).
func (l *Local) Bytes() int64 {
	var n int64
	for _, s := range l.shards {
		s.mu.Lock()
		n += s.bytes
		s.mu.Unlock()
	}
	return n
}

// Len is the number of keys held (tests).
func (l *Local) Len() int {
	n := 0
	for _, s := range l.shards {
		s.mu.Lock()
		n += len(s.byKey)
		s.mu.Unlock()
	}
	return n
}

// Redis keeps records in Redis, shared by every instance. Its commands
// go through the shared batcher, pipelined with the other Redis commands
// of concurrent requests; an answer is stored without waiting for Redis
// (a retry on this instance is queued after it, so it finds it).
type Redis struct {
	batch  *redisbatch.Batcher
	prefix string
}

// NewRedis returns a Redis store under prefix.
func NewRedis(batch *redisbatch.Batcher, prefix string) *Redis {
	return &Redis{batch: batch, prefix: prefix + "idem:"}
}

// Claim sets the key if it is free and reads it, in one round trip.
func (r *Redis) Claim(ctx context.Context, _, key string, rec []byte, ttl time.Duration) (bool, []byte, error) {
	for range 3 { // the holder may expire between SET NX and GET
		var set *redis.BoolCmd
		var get *redis.StringCmd
		err := r.batch.Do(ctx, func(ctx context.Context, p redis.Pipeliner) {
			set = p.SetNX(ctx, r.prefix+key, rec, ttl)
			get = p.Get(ctx, r.prefix+key)
		})
		if err != nil {
			return false, nil, err
		}
		if set.Val() {
			return true, nil, nil
		}
		b, err := get.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		return false, b, err
	}
	return false, nil, errors.New("idempotency key contended")
}

// claimCountScript claims KEYS[1] with ARGV[1] for ARGV[2] ms and, when
// it did, counts KEYS[2] in a window of ARGV[3] ms: {1, count}; else it
// returns what the key holds: {0, record}.
var claimCountScript = redis.NewScript(`
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  local n = redis.call("INCR", KEYS[2])
  if n == 1 then redis.call("PEXPIRE", KEYS[2], ARGV[3]) end
  return {1, n}
end
return {0, redis.call("GET", KEYS[1])}`)

// ClaimCounting is Claim and, when it claims, one more count of the Redis
// key counter (the race detector's) in the same round trip: its count in
// the window that began with its first request. Both keys are given to
// the script, so with Redis Cluster they must share a hash slot (the
// plan only uses it without Cluster).
func (r *Redis) ClaimCounting(ctx context.Context, key string, rec []byte, ttl time.Duration, counter string, window time.Duration) (bool, []byte, int64, error) {
	for range 3 { // the holder may expire between SET NX and GET
		var cmd *redis.Cmd
		err := r.batch.Do(ctx, func(ctx context.Context, p redis.Pipeliner) {
			cmd = claimCountScript.EvalSha(ctx, p, []string{r.prefix + key, counter}, rec, ttl.Milliseconds(), window.Milliseconds())
		}, claimCountScript)
		if err != nil {
			return false, nil, 0, err
		}
		v, err := cmd.Slice()
		if err != nil {
			return false, nil, 0, err
		}
		if len(v) != 2 {
			return false, nil, 0, errors.New("unexpected answer from the claim script")
		}
		if ok, _ := v[0].(int64); ok == 1 {
			n, _ := v[1].(int64)
			return true, nil, n, nil
		}
		if held, ok := v[1].(string); ok {
			return false, []byte(held), 0, nil
		}
	}
	return false, nil, 0, errors.New("idempotency key contended")
}

// Put stores a copy of rec without waiting for Redis's reply.
func (r *Redis) Put(_ context.Context, _, key string, rec []byte, ttl time.Duration) error {
	rec = bytes.Clone(rec)
	return r.batch.Send(func(ctx context.Context, p redis.Pipeliner) {
		p.Set(ctx, r.prefix+key, rec, ttl)
	})
}

func (r *Redis) Release(ctx context.Context, key string) error {
	return r.batch.Do(ctx, func(ctx context.Context, p redis.Pipeliner) {
		p.Del(ctx, r.prefix+key)
	})
}
