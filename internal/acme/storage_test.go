package acme

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/testacme"
	"github.com/rampart-gw/rampart/internal/testredis"
)

// Both storages behave alike: values round-trip encrypted, listing,
// stat and deletion follow certmagic's contract, and locks exclude.
func TestStorages(t *testing.T) {
	srv := testredis.Start(t, "")
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rc.Close() })
	st := newStore(t)
	for name, inner := range map[string]certmagic.Storage{
		"file":  &certmagic.FileStorage{Path: t.TempDir()},
		"redis": newRedisStorage(rc, "test:"),
	} {
		t.Run(name, func(t *testing.T) { exerciseStorage(t, sealed{Storage: inner, s: st}, inner) })
	}
}

func exerciseStorage(t *testing.T, s sealed, inner certmagic.Storage) {
	ctx := context.Background()
	for _, k := range []string{"certificates/ca/a.test/a.test.crt", "certificates/ca/a.test/a.test.key", "certificates/ca/b.test/b.test.crt", "users/x.json"} {
		if err := s.Store(ctx, k, []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	v, err := s.Load(ctx, "certificates/ca/a.test/a.test.key")
	if err != nil || string(v) != "value of certificates/ca/a.test/a.test.key" {
		t.Fatalf("load: %q %v", v, err)
	}
	raw, _ := inner.Load(ctx, "certificates/ca/a.test/a.test.key")
	if slices.Equal(raw, v) || len(raw) <= len(v) {
		t.Fatal("stored in the clear")
	}
	// A value moved to another key does not authenticate.
	_ = inner.Store(ctx, "certificates/ca/b.test/b.test.key", raw)
	if _, err := s.Load(ctx, "certificates/ca/b.test/b.test.key"); err == nil {
		t.Fatal("a value copied to another key was accepted")
	}
	if _, err := s.Load(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing key: %v", err)
	}
	top, err := s.List(ctx, "certificates/ca", false)
	slices.Sort(top)
	if err != nil || !slices.Equal(top, []string{"certificates/ca/a.test", "certificates/ca/b.test"}) {
		t.Fatalf("list: %v %v", top, err)
	}
	all, _ := s.List(ctx, "certificates", true)
	if len(all) < 4 {
		t.Fatalf("recursive list: %v", all)
	}
	if ki, err := s.Stat(ctx, "users/x.json"); err != nil || !ki.IsTerminal || ki.Modified.IsZero() {
		t.Fatalf("stat: %+v %v", ki, err)
	}
	if err := s.Delete(ctx, "certificates/ca/a.test"); err != nil || s.Exists(ctx, "certificates/ca/a.test/a.test.crt") {
		t.Fatalf("delete: %v", err)
	}
	if !s.Exists(ctx, "users/x.json") {
		t.Fatal("delete removed too much")
	}
	// Locks exclude: two holders never overlap.
	var inside, overlap atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if err := s.Lock(lctx, "issue_cert_a.test"); err != nil {
				t.Error(err)
				return
			}
			if inside.Add(1) > 1 {
				overlap.Add(1)
			}
			time.Sleep(50 * time.Millisecond)
			inside.Add(-1)
			if err := s.Unlock(ctx, "issue_cert_a.test"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if overlap.Load() != 0 {
		t.Fatal("two holders of one lock")
	}
}

// Two instances sharing Redis storage: the second serves the
// certificate the first obtained, without an order of its own.
func TestRedisStorageSharedByInstances(t *testing.T) {
	srv := testredis.Start(t, "")
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rc.Close() })
	a, b := newSite(t), newSite(t)
	p := testacme.Start(t, testacme.Options{HTTPPort: port(a.httpLn), TLSPort: port(a.tlsLn)})
	st := newStore(t)
	c := section(p, "", config.ChallengeTLSALPN01)
	c.Storage = "redis"
	open := func(s *site) {
		m, err := New(c, Options{Listener: "public", Names: []string{"shared.rampart.test"}, TLSAddr: s.tlsLn.Addr().String(),
			Store: st, Redis: rc, RedisPrefix: "rampart:", Deps: pipeline.Deps{Now: time.Now, Events: &events{}}})
		if err != nil {
			t.Fatal(err)
		}
		s.m.Store(m)
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
	}
	open(a)
	leaf := waitCert(t, a, "shared.rampart.test", p.RootPEM(), 30*time.Second)
	orders := p.Orders()
	open(b)
	other := waitCert(t, b, "shared.rampart.test", p.RootPEM(), 10*time.Second)
	if !other.Equal(leaf) || p.Orders() != orders {
		t.Fatalf("second instance: same certificate %v, orders %d → %d", other.Equal(leaf), orders, p.Orders())
	}
}
