package runstate

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/authn"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/store"
	"github.com/rampart-gw/rampart/internal/testredis"
)

// applied records what a keeper applied: the revocation store and the
// drained targets.
type applied struct {
	jtis    *authn.JTIStore
	mu      sync.Mutex
	drained map[Drain]bool
	bans    map[string]time.Time
}

func newApplied() *applied {
	return &applied{jtis: authn.NewJTIStore(), drained: map[Drain]bool{}, bans: map[string]time.Time{}}
}

func (a *applied) target(now func() time.Time) Target {
	return Target{JTIs: a.jtis, Now: now, Log: slog.New(slog.DiscardHandler),
		Drain: func(u, t string, d bool) error {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.drained[Drain{u, t}] = d
			return nil
		},
		Ban: func(c string, until time.Time) { a.mu.Lock(); a.bans[c] = until; a.mu.Unlock() },
		Bans: func(yield func(string, time.Time)) {
			a.mu.Lock()
			defer a.mu.Unlock()
			for c, u := range a.bans {
				yield(c, u)
			}
		}}
}

func (a *applied) isDrained(u, t string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.drained[Drain{u, t}]
}

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

func masterKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// The file keeps revocations, drains and bans across a restart,
// encrypted: nothing of them is in the file in plaintext.
func TestFileSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "runtime.state")
	secrets, _ := store.New(masterKey(1))
	a := newApplied()
	k, err := Open(Options{File: file, Store: secrets, Target: a.target(clock)})
	if err != nil {
		t.Fatal(err)
	}
	must(t, k.Revoke("leaked-jti-7f3a", "", "", now.Add(time.Hour)))
	must(t, k.Revoke("", "https://idp.example", "mallory@example.com", now.Add(time.Hour)))
	must(t, k.Revoke("expired-jti", "", "", now.Add(-time.Second)))
	must(t, k.SetDrain("orders", "10.0.0.5:8080", true))
	a.bans["203.0.113.9"] = now.Add(time.Hour)
	must(t, k.SaveBans())

	raw, _ := os.ReadFile(file)
	for _, secret := range []string{"leaked-jti-7f3a", "mallory", "orders", "203.0.113.9"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("%q is in the state file in plaintext", secret)
		}
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}

	b := newApplied()
	if _, err := Open(Options{File: file, Store: secrets, Target: b.target(clock)}); err != nil {
		t.Fatal(err)
	}
	leaked := &pipeline.Identity{TokenID: "leaked-jti-7f3a"}
	mallory := &pipeline.Identity{Issuer: "https://idp.example", Subject: "mallory@example.com", TokenID: "fresh"}
	if !b.jtis.Revoked(leaked, now) || !b.jtis.Revoked(mallory, now) {
		t.Fatal("revocations lost over a restart")
	}
	if b.jtis.Revoked(leaked, now.Add(2*time.Hour)) {
		t.Fatal("a revocation outlived its time")
	}
	if len(b.jtis.List(now)) != 2 {
		t.Fatalf("revocations after restart: %v", b.jtis.List(now))
	}
	if !b.isDrained("orders", "10.0.0.5:8080") {
		t.Fatal("drain lost over a restart")
	}
	if b.bans["203.0.113.9"].IsZero() {
		t.Fatal("ban lost over a restart")
	}
}

// Lifting a revocation and resuming a target are saved too.
func TestFileLiftAndResume(t *testing.T) {
	file := filepath.Join(t.TempDir(), "runtime.state")
	a := newApplied()
	k, _ := Open(Options{File: file, Target: a.target(clock)})
	must(t, k.Revoke("j1", "", "", now.Add(time.Hour)))
	must(t, k.SetDrain("u", "t:1", true))
	must(t, k.Unrevoke("j1", "", ""))
	must(t, k.SetDrain("u", "t:1", false))
	b := newApplied()
	if _, err := Open(Options{File: file, Target: b.target(clock)}); err != nil {
		t.Fatal(err)
	}
	if len(b.jtis.List(now)) != 0 || b.isDrained("u", "t:1") {
		t.Fatalf("lifted state came back: %v %v", b.jtis.List(now), b.drained)
	}
}

// A flipped byte, a wrong key or a cut file stops the start with an
// error naming the file; never an empty state (a revoked token would
// work again).
func TestFileTamperingIsAnError(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "runtime.state")
	secrets, _ := store.New(masterKey(1))
	k, _ := Open(Options{File: file, Store: secrets, Target: newApplied().target(clock)})
	must(t, k.Revoke("j1", "", "", now.Add(time.Hour)))
	good, _ := os.ReadFile(file)
	wrong, _ := store.New(masterKey(2))
	cases := map[string]struct {
		data []byte
		s    *store.Store
	}{
		"flipped byte": {flip(good, len(good)-5), secrets},
		"cut":          {good[:len(good)/2], secrets},
		"wrong key":    {good, wrong},
		"plaintext":    {[]byte(`{"version":1,"revocations":[]}`), secrets},
	}
	for name, c := range cases {
		if err := os.WriteFile(file, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(Options{File: file, Store: c.s, Target: newApplied().target(clock)})
		if err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

// With Redis, a change made through one instance is in force on every
// instance, and on one that starts later.
func TestRedisShared(t *testing.T) {
	srv := testredis.Start(t, "")
	client := func() redis.UniversalClient {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { c.Close() })
		return c
	}
	realNow := time.Now
	a, b := newApplied(), newApplied()
	ka, err := Open(Options{Redis: client(), Prefix: "t:", Target: a.target(realNow)})
	if err != nil {
		t.Fatal(err)
	}
	defer ka.Close()
	kb, _ := Open(Options{Redis: client(), Prefix: "t:", Target: b.target(realNow)})
	defer kb.Close()
	waitSubscribed(t, client(), "t:runtime", 2)

	leaked := &pipeline.Identity{TokenID: "leaked"}
	must(t, ka.Revoke("leaked", "", "", time.Now().Add(time.Hour)))
	must(t, ka.SetDrain("orders", "10.0.0.5:8080", true))
	eventually(t, "revocation and drain reach the other instance", func() bool {
		return b.jtis.Revoked(leaked, time.Now()) && b.isDrained("orders", "10.0.0.5:8080")
	})
	c := newApplied()
	kc, _ := Open(Options{Redis: client(), Prefix: "t:", Target: c.target(realNow)})
	defer kc.Close()
	if !c.jtis.Revoked(leaked, time.Now()) || !c.isDrained("orders", "10.0.0.5:8080") {
		t.Fatal("an instance started later misses the state")
	}
	must(t, kb.Unrevoke("leaked", "", ""))
	must(t, kb.SetDrain("orders", "10.0.0.5:8080", false))
	eventually(t, "lift and resume reach the first instance", func() bool {
		return !a.jtis.Revoked(leaked, time.Now()) && !a.isDrained("orders", "10.0.0.5:8080")
	})
}

// Revocations that ended are removed from Redis when read.
func TestRedisEndedRevocationsPruned(t *testing.T) {
	srv := testredis.Start(t, "")
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	k, _ := Open(Options{Redis: rc, Prefix: "p:", Target: newApplied().target(time.Now)})
	defer k.Close()
	must(t, k.Revoke("old", "", "", time.Now().Add(-time.Minute)))
	if _, err := k.readRedis(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := rc.HLen(context.Background(), "p:"+revocationsKey).Val(); n != 0 {
		t.Fatalf("%d ended revocations left", n)
	}
}

func waitSubscribed(t *testing.T, c redis.UniversalClient, ch string, n int64) {
	eventually(t, "subscriptions", func() bool {
		m := c.PubSubNumSub(context.Background(), ch).Val()
		return m[ch] >= n
	})
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal(what + ": not within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
