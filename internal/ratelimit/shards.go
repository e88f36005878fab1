package ratelimit

import (
	"hash/maphash"
	"sync"
)

// shards is a map of keys split in 64 shards, each under its own lock,
// bounded in size: an insertion into a full shard first drops the
// entries stale reports (they carry no information any more), then, if
// the shard is still full, a tenth of it (arbitrary keys), so that
// insertions cost O(1) amortised however many keys arrive. The local
// stores of limits and quotas are both one.
type shards[V any] struct {
	seed     maphash.Seed
	s        [64]mapShard[V]
	perShard int
	stale    func(v V, now int64) bool
}

type mapShard[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

func newShards[V any](maxKeys int, stale func(V, int64) bool) *shards[V] {
	s := &shards[V]{seed: maphash.MakeSeed(), perShard: max(maxKeys/64, 16), stale: stale}
	for i := range s.s {
		s.s[i].m = map[string]V{}
	}
	return s
}

// update calls fn with key's value (ok: present) under the shard's lock
// and stores what it returns when keep.
func (s *shards[V]) update(key string, now int64, fn func(v V, ok bool) (V, bool)) {
	sh := &s.s[maphash.String(s.seed, key)%64]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	v, ok := sh.m[key]
	if !ok && len(sh.m) >= s.perShard {
		sh.evict(now, s.perShard, s.stale)
	}
	if nv, keep := fn(v, ok); keep {
		sh.m[key] = nv
	}
}

func (sh *mapShard[V]) evict(now int64, limit int, stale func(V, int64) bool) {
	for k, v := range sh.m {
		if stale(v, now) {
			delete(sh.m, k)
		}
	}
	if len(sh.m) >= limit {
		// Still full: drop a tenth, arbitrary keys; bounded memory
		// matters more than what they held.
		n := len(sh.m)/10 + 1
		for k := range sh.m {
			delete(sh.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
}

// len is the number of keys held (tests).
func (s *shards[V]) len() int {
	n := 0
	for i := range s.s {
		s.s[i].mu.Lock()
		n += len(s.s[i].m)
		s.s[i].mu.Unlock()
	}
	return n
}
