package acme

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/store"
)

// sealed is a certmagic storage whose values are encrypted by Rampart's
// store: each value is sealed under the master key with its storage key
// as associated data, so a value copied to another key, edited or read
// with another master key is an error, never a certificate. Locking,
// listing and deletion are the inner storage's.
type sealed struct {
	certmagic.Storage
	s *store.Store
}

func (s sealed) Store(ctx context.Context, key string, value []byte) error {
	b, err := s.s.Seal("acme/"+key, value)
	if err != nil {
		return err
	}
	return s.Storage.Store(ctx, key, b)
}

func (s sealed) Load(ctx context.Context, key string) ([]byte, error) {
	b, err := s.Storage.Load(ctx, key)
	if err != nil {
		return nil, err
	}
	v, err := s.s.Open("acme/"+key, b)
	if err != nil {
		return nil, fmt.Errorf("acme storage %s: %w", key, err)
	}
	return v, nil
}

// redisStorage keeps certmagic's keys in Redis (under prefix), shared by
// every instance, with locks that expire if their holder dies and are
// renewed while it lives.
type redisStorage struct {
	c      redis.UniversalClient
	prefix string
	mu     sync.Mutex
	held   map[string]lockHold // the locks this storage holds
}

type lockHold struct {
	token string
	stop  context.CancelFunc
}

// lockTTL is how long a lock outlives a holder that stopped renewing it.
const lockTTL = 30 * time.Second

func newRedisStorage(c redis.UniversalClient, prefix string) *redisStorage {
	return &redisStorage{c: c, prefix: prefix + "acme:", held: map[string]lockHold{}}
}

func (r *redisStorage) k(key string) string { return r.prefix + "v:" + key }

func (r *redisStorage) Store(ctx context.Context, key string, value []byte) error {
	pipe := r.c.TxPipeline()
	pipe.Set(ctx, r.k(key), value, 0)
	pipe.HSet(ctx, r.prefix+"mtime", key, time.Now().UnixNano())
	_, err := pipe.Exec(ctx)
	return err
}

func (r *redisStorage) Load(ctx context.Context, key string) ([]byte, error) {
	b, err := r.c.Get(ctx, r.k(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	return b, err
}

func (r *redisStorage) Delete(ctx context.Context, key string) error {
	keys, err := r.List(ctx, key, true)
	if err != nil {
		return err
	}
	pipe := r.c.TxPipeline()
	for _, k := range append(keys, key) {
		pipe.Del(ctx, r.k(k))
		pipe.HDel(ctx, r.prefix+"mtime", k)
	}
	_, err = pipe.Exec(ctx)
	return err
}

func (r *redisStorage) Exists(ctx context.Context, key string) bool {
	n, err := r.c.Exists(ctx, r.k(key)).Result()
	return err == nil && n > 0
}

// List returns the keys under dir: the direct children (terminal keys and
// the directories above deeper ones), or with recursive every key.
func (r *redisStorage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	all, err := r.c.HKeys(ctx, r.prefix+"mtime").Result()
	if err != nil {
		return nil, err
	}
	dir = strings.TrimSuffix(dir, "/")
	seen := map[string]bool{}
	var out []string
	for _, k := range all {
		rest, ok := strings.CutPrefix(k, dir+"/")
		if !ok && dir != "" {
			continue
		}
		if dir == "" {
			rest = k
		}
		if !recursive {
			first, _, _ := strings.Cut(rest, "/")
			rest = first
		}
		name := path.Join(dir, rest)
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, fs.ErrNotExist
	}
	return out, nil
}

func (r *redisStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	ns, err := r.c.HGet(ctx, r.prefix+"mtime", key).Int64()
	if errors.Is(err, redis.Nil) {
		if list, lerr := r.List(ctx, key, false); lerr == nil && len(list) > 0 {
			return certmagic.KeyInfo{Key: key}, nil // a directory
		}
		return certmagic.KeyInfo{}, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	n, _ := r.c.StrLen(ctx, r.k(key)).Result()
	return certmagic.KeyInfo{Key: key, Modified: time.Unix(0, ns), Size: n, IsTerminal: true}, nil
}

// Lock waits for the named lock, then holds it (renewed every third of
// its lifetime) until Unlock.
func (r *redisStorage) Lock(ctx context.Context, name string) error {
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	tok := hex.EncodeToString(token)
	key := r.prefix + "lock:" + name
	for {
		ok, err := r.c.SetNX(ctx, key, tok, lockTTL).Result()
		if err != nil {
			return err
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	hold, stop := context.WithCancel(context.Background())
	go r.renew(hold, key, tok)
	r.mu.Lock()
	r.held[name] = lockHold{token: tok, stop: stop}
	r.mu.Unlock()
	return nil
}

func (r *redisStorage) renew(ctx context.Context, key, tok string) {
	t := time.NewTicker(lockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = renewScript.Run(ctx, r.c, []string{key}, tok, lockTTL.Milliseconds()).Err()
		}
	}
}

// Unlock releases a lock this storage holds (only if it still holds it).
func (r *redisStorage) Unlock(ctx context.Context, name string) error {
	r.mu.Lock()
	h, ok := r.held[name]
	delete(r.held, name)
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("acme storage: lock %s is not held", name)
	}
	h.stop()
	return unlockScript.Run(ctx, r.c, []string{r.prefix + "lock:" + name}, h.token).Err()
}

var (
	renewScript  = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
	unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
)
