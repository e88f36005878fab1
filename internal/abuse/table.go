package abuse

import (
	"hash/maphash"
	"sync"
)

// tableShards is the number of independently locked parts of a table: a
// request locks one of them, never the whole table.
const tableShards = 64

// table is a bounded map from K to V. It is split into shards, each under
// its own mutex, and a full shard makes room with CLOCK (second chance):
// the hand walks the shard's slots, clearing the "used" mark of entries
// touched since its last pass and evicting the first entry that was not.
// Each mark is cleared at most once per touch, so an insertion costs O(1)
// amortised however many distinct keys arrive, and an entry that keeps
// being used survives a flood of new keys longer than one that does not.
//
// Security: the size is fixed at construction. A client that brings an
// endless supply of keys (addresses, account names) can only cycle the
// table, never grow it or make an insertion cost more than a constant.
type table[K comparable, V any] struct {
	seed   maphash.Seed
	shards [tableShards]tableShard[K, V]
}

type tableShard[K comparable, V any] struct {
	mu    sync.Mutex
	idx   map[K]int32
	slots []slot[K, V]
	free  []int32 // slots emptied by remove, reused first
	hand  int
	limit int
	steps int // hand movements, for the test that eviction is O(1) amortised
}

type slot[K comparable, V any] struct {
	key  K
	val  V
	used bool
}

// newTable returns a table holding at most about capacity entries (at
// least a few per shard).
func newTable[K comparable, V any](capacity int) *table[K, V] {
	t := &table[K, V]{seed: maphash.MakeSeed()}
	per := max(capacity/tableShards, 4)
	for i := range t.shards {
		t.shards[i].idx = map[K]int32{}
		t.shards[i].limit = per
	}
	return t
}

func (t *table[K, V]) shard(k K) *tableShard[K, V] {
	return &t.shards[maphash.Comparable(t.seed, k)%tableShards]
}

// update runs fn on k's value under the shard's lock. When k is absent
// and create is set, a zero value is made first (evicting another entry
// when the shard is full); when absent and not create, fn is not called.
// fn reports whether the entry is to be kept. update reports whether fn
// ran.
func (t *table[K, V]) update(k K, create bool, fn func(v *V, fresh bool) (keep bool)) bool {
	sh := t.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := sh.idx[k]
	if !ok {
		if !create {
			return false
		}
		i = sh.insert(k)
	}
	sl := &sh.slots[i]
	sl.used = true
	if !fn(&sl.val, !ok) {
		sh.remove(k, i)
	}
	return true
}

// set stores v under k.
func (t *table[K, V]) set(k K, v V) {
	t.update(k, true, func(p *V, _ bool) bool { *p = v; return true })
}

// remove deletes k.
func (t *table[K, V]) remove(k K) {
	sh := t.shard(k)
	sh.mu.Lock()
	if i, ok := sh.idx[k]; ok {
		sh.remove(k, i)
	}
	sh.mu.Unlock()
}

// each calls fn for every entry, one shard locked at a time (admin views,
// not the request path).
func (t *table[K, V]) each(fn func(k K, v V)) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, j := range sh.idx {
			fn(sh.slots[j].key, sh.slots[j].val)
		}
		sh.mu.Unlock()
	}
}

// len is the number of entries held.
func (t *table[K, V]) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.idx)
		sh.mu.Unlock()
	}
	return n
}

// insert places k in a free slot, or in the slot CLOCK evicts, and
// returns its index. The caller holds the lock.
func (sh *tableShard[K, V]) insert(k K) int32 {
	var i int
	switch {
	case len(sh.free) > 0:
		i = int(sh.free[len(sh.free)-1])
		sh.free = sh.free[:len(sh.free)-1]
	case len(sh.slots) < sh.limit:
		sh.slots = append(sh.slots, slot[K, V]{})
		i = len(sh.slots) - 1
	default:
		i = sh.victim()
		delete(sh.idx, sh.slots[i].key)
	}
	sh.slots[i] = slot[K, V]{key: k}
	sh.idx[k] = int32(i)
	return int32(i)
}

// victim advances the hand to the first entry not used since its last
// pass. Every step either evicts or clears a mark that a touch set, so
// the walk is O(1) amortised.
func (sh *tableShard[K, V]) victim() int {
	for {
		// Security: no slot is free here (the free list is empty), so
		// every slot holds a live entry and the walk ends within two
		// passes.
		i := sh.hand
		sh.hand = (sh.hand + 1) % len(sh.slots)
		sh.steps++
		if !sh.slots[i].used {
			return i
		}
		sh.slots[i].used = false
	}
}

func (sh *tableShard[K, V]) remove(k K, i int32) {
	delete(sh.idx, k)
	var zero K
	sh.slots[i] = slot[K, V]{key: zero}
	sh.free = append(sh.free, i)
}
