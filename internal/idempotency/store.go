package idempotency

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store keeps records by scoped key. Claim stores rec only if the key is
// free (or expired) and reports whether it did; otherwise it returns the
// record there.
type Store interface {
	Claim(ctx context.Context, key string, rec []byte, ttl time.Duration) (claimed bool, existing []byte, err error)
	Put(ctx context.Context, key string, rec []byte, ttl time.Duration) error
	Release(ctx context.Context, key string) error
}

// Local keeps records in memory, at most max, the oldest evicted first
// (O(1): a list in insertion order).
type Local struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *localEntry, oldest at the front
	byKey map[string]*list.Element
	now   func() time.Time
}

type localEntry struct {
	key     string
	rec     []byte
	expires time.Time
}

// NewLocal returns a local store of at most max keys.
func NewLocal(max int, now func() time.Time) *Local {
	return &Local{max: max, order: list.New(), byKey: map[string]*list.Element{}, now: now}
}

func (l *Local) Claim(_ context.Context, key string, rec []byte, ttl time.Duration) (bool, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if el := l.byKey[key]; el != nil {
		if e := el.Value.(*localEntry); now.Before(e.expires) {
			return false, e.rec, nil
		}
		l.remove(el)
	}
	l.insert(key, rec, now.Add(ttl))
	return true, nil, nil
}

func (l *Local) Put(_ context.Context, key string, rec []byte, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el := l.byKey[key]; el != nil {
		l.remove(el)
	}
	l.insert(key, rec, l.now().Add(ttl))
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

func (l *Local) insert(key string, rec []byte, expires time.Time) {
	for l.order.Len() >= l.max {
		l.remove(l.order.Front())
	}
	l.byKey[key] = l.order.PushBack(&localEntry{key: key, rec: rec, expires: expires})
}

func (l *Local) remove(el *list.Element) {
	delete(l.byKey, el.Value.(*localEntry).key)
	l.order.Remove(el)
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

func (r *Redis) Claim(ctx context.Context, key string, rec []byte, ttl time.Duration) (bool, []byte, error) {
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

func (r *Redis) Put(ctx context.Context, key string, rec []byte, ttl time.Duration) error {
	return r.c.Set(ctx, r.prefix+key, rec, ttl).Err()
}

func (r *Redis) Release(ctx context.Context, key string) error {
	return r.c.Del(ctx, r.prefix+key).Err()
}
