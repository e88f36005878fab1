package idempotency

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

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
// its own) and at most max in all (the oldest make room), both O(1).
type Local struct {
	mu       sync.Mutex
	max      int
	perOwner int
	order    *list.List // of *localEntry, oldest at the front
	byKey    map[string]*list.Element
	byOwner  map[string]*list.List // of *list.Element (in order), per owner
	now      func() time.Time
}

type localEntry struct {
	key, owner string
	rec        []byte
	expires    time.Time
	ownerEl    *list.Element // this entry in byOwner[owner]
}

// NewLocal returns a local store of at most max keys, perOwner per caller.
func NewLocal(limit, perOwner int, now func() time.Time) *Local {
	return &Local{max: limit, perOwner: max(perOwner, 1), order: list.New(), byKey: map[string]*list.Element{},
		byOwner: map[string]*list.List{}, now: now}
}

func (l *Local) Claim(_ context.Context, owner, key string, rec []byte, ttl time.Duration) (bool, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if el := l.byKey[key]; el != nil {
		if e := el.Value.(*localEntry); now.Before(e.expires) {
			return false, e.rec, nil
		}
		l.remove(el)
	}
	l.insert(owner, key, rec, now.Add(ttl))
	return true, nil, nil
}

func (l *Local) Put(_ context.Context, owner, key string, rec []byte, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el := l.byKey[key]; el != nil {
		l.remove(el)
	}
	l.insert(owner, key, rec, l.now().Add(ttl))
	return nil
}

func (l *Local) Release(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el := l.byKey[key]; el != nil {
		l.remove(el)
	}
	return nil
}

func (l *Local) insert(owner, key string, rec []byte, expires time.Time) {
	mine := l.byOwner[owner]
	if mine == nil {
		mine = list.New()
		l.byOwner[owner] = mine
	}
	for mine.Len() >= l.perOwner {
		l.remove(mine.Front().Value.(*list.Element))
	}
	for l.order.Len() >= l.max {
		l.remove(l.order.Front())
	}
	e := &localEntry{key: key, owner: owner, rec: rec, expires: expires}
	el := l.order.PushBack(e)
	e.ownerEl = mine.PushBack(el)
	l.byKey[key] = el
}

func (l *Local) remove(el *list.Element) {
	e := el.Value.(*localEntry)
	delete(l.byKey, e.key)
	l.order.Remove(el)
	if mine := l.byOwner[e.owner]; mine != nil {
		mine.Remove(e.ownerEl)
		if mine.Len() == 0 {
			delete(l.byOwner, e.owner)
		}
	}
}

// Len is the number of keys held (tests).
func (l *Local) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}

// Redis keeps records in Redis, shared by every instance.
type Redis struct {
	c      redis.UniversalClient
	prefix string
}

// NewRedis returns a Redis store under prefix.
func NewRedis(c redis.UniversalClient, prefix string) *Redis {
	return &Redis{c: c, prefix: prefix + "idem:"}
}

func (r *Redis) Claim(ctx context.Context, _, key string, rec []byte, ttl time.Duration) (bool, []byte, error) {
	for range 3 { // the holder may expire between SET NX and GET
		ok, err := r.c.SetNX(ctx, r.prefix+key, rec, ttl).Result()
		if err != nil || ok {
			return ok, nil, err
		}
		b, err := r.c.Get(ctx, r.prefix+key).Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		return false, b, err
	}
	return false, nil, errors.New("idempotency key contended")
}

func (r *Redis) Put(ctx context.Context, _, key string, rec []byte, ttl time.Duration) error {
	return r.c.Set(ctx, r.prefix+key, rec, ttl).Err()
}

func (r *Redis) Release(ctx context.Context, key string) error {
	return r.c.Del(ctx, r.prefix+key).Err()
}
