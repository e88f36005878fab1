// Package race defends state-changing routes against race-condition
// abuse: the same caller firing the same request (method, path, query,
// body) several times at once, hoping two of them pass a check before
// either writes ("redeem this voucher" twenty times in parallel). A
// per-caller concurrency limit and a duplicate detector, both keyed by
// the authenticated identity (or the client address on public routes),
// apply to POST, PUT, PATCH and DELETE only.
package race

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/redisbatch"
)

// Decision codes.
const (
	CodeRace        = "abuse.race"                     // 409: a duplicate inside the window
	CodeConcurrency = "ratelimit.identity_concurrency" // 429: the caller's requests in flight on the route
)

// changesState reports the methods both defences apply to.
func changesState(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch || m == http.MethodDelete
}

// Concurrency bounds each caller's state-changing requests in flight on
// one route (nil when max is 0).
func Concurrency(max int) pipeline.Middleware {
	if max <= 0 {
		return nil
	}
	var mu sync.Mutex
	inFlight := map[string]int{} // only callers with requests in flight: bounded by concurrency
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			if !changesState(r.Method) {
				return next(w, r)
			}
			k := pipeline.ScopeOf(r.Context()).Caller()
			mu.Lock()
			if inFlight[k] >= max {
				mu.Unlock()
				e := pipeline.Deny(http.StatusTooManyRequests, CodeConcurrency, "another request of yours on this operation is in progress")
				e.Header = http.Header{"Retry-After": {"1"}}
				return e
			}
			inFlight[k]++
			mu.Unlock()
			defer func() {
				mu.Lock()
				if inFlight[k]--; inFlight[k] == 0 {
					delete(inFlight, k)
				}
				mu.Unlock()
			}()
			return next(w, r)
		}
	}
}

// Counter counts requests by key within a window.
type Counter interface {
	// Add counts one more request for key and returns the count inside
	// the window that began with the key's first request.
	Add(ctx context.Context, key string, window time.Duration) (int64, error)
}

// Detector is a route's duplicate detector.
type Detector struct {
	route  string
	cfg    config.Race
	count  Counter
	events pipeline.Events
	now    func() time.Time
}

// Stage returns the route's race detector (nil when off).
func Stage(r config.Route, c Counter, events pipeline.Events, now func() time.Time) pipeline.Middleware {
	if r.Race == nil || r.Race.Action == "off" {
		return nil
	}
	d := &Detector{route: r.ID, cfg: *r.Race, count: c, events: events, now: now}
	return d.middleware
}

func (d *Detector) middleware(next pipeline.Handler) pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !changesState(r.Method) {
			return next(w, r)
		}
		n, counted := r.Context().Value(countedKey{}).(int64)
		if !counted {
			head, err := bodyHead(r)
			if err != nil {
				return pipeline.BodyReadError(err)
			}
			if n, err = d.count.Add(r.Context(), Key(d.route, r, head), d.cfg.Window.D()); err != nil {
				n = 0 // a store failure never refuses
			}
		}
		if n < int64(d.cfg.Requests) {
			return next(w, r) // a store failure never refuses
		}
		if d.cfg.Action == "refuse" {
			return pipeline.Deny(http.StatusConflict, CodeRace, "the same request was just made; it is not repeated")
		}
		if n == int64(d.cfg.Requests) { // flag: once per burst
			d.flag(r, n)
		}
		return next(w, r)
	}
}

// Key is what tells a request apart for the detector: its route,
// caller, method, path, query, length and the first bytes of its body
// (head; only its first 64 KiB count). A raw SHA-256.
func Key(route string, r *http.Request, head []byte) string {
	h := pipeline.Digest(head[:min(len(head), hashedBody)], route, pipeline.ScopeOf(r.Context()).Caller(), r.Method, r.URL.Path,
		r.URL.RawQuery, strconv.FormatInt(r.ContentLength, 10))
	return string(h[:])
}

// countedKey carries a request's count when an earlier stage counted
// it in the same Redis round trip as its own work (WithCount).
type countedKey struct{}

// WithCount marks a request as counted already (n: its count in the
// window): the detector then decides on n without counting again. The
// idempotency stage does this when it claims a key and counts the
// request in one Redis script.
func WithCount(ctx context.Context, n int64) context.Context {
	return context.WithValue(ctx, countedKey{}, n)
}

// bodyHead is the body's first bytes, which with its length tell
// requests apart: taken from a body an earlier stage read whole; a body
// of known length that fits is read whole (pipeline.ReadBody: the stages
// after and the upstream request reuse it); else its head is read, the
// rest streaming on unread (an upload is never buffered here).
func bodyHead(r *http.Request) ([]byte, error) {
	if b, ok := pipeline.BufferedBody(r); ok {
		return b[:min(len(b), hashedBody)], nil
	}
	if r.ContentLength >= 0 && r.ContentLength <= hashedBody {
		return pipeline.ReadBody(r)
	}
	head, err := io.ReadAll(io.LimitReader(r.Body, hashedBody))
	if err != nil {
		return nil, err
	}
	r.Body = readCloser{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	return head, nil
}

// hashedBody is how much of a body the detector reads.
const hashedBody = 64 << 10

// readCloser reads the body again from its start and closes the original.
type readCloser struct {
	io.Reader
	io.Closer
}

func (d *Detector) flag(r *http.Request, n int64) {
	if d.events == nil {
		return
	}
	ev := pipeline.Event{Time: d.now(), Name: CodeRace, Code: CodeRace, Route: d.route, Method: r.Method,
		Reason: strconv.FormatInt(n, 10) + " identical requests within " + d.cfg.Window.D().String(),
		Attrs:  map[string]string{"action": "flag"}}
	if s := pipeline.ScopeOf(r.Context()); s != nil {
		ev.RequestID, ev.ClientIP, ev.Path = s.RequestID, s.ClientIPText, s.Path
		if s.Identity != nil {
			ev.Subject, ev.Auth = s.Identity.Subject, s.Identity.Method
		}
	}
	d.events.Emit(ev)
}

// Local counts in memory, at most max keys, in shards by key (a key is
// a hash already, so they share the keys evenly and concurrent requests
// rarely wait for each other).
type Local struct {
	shards [localShards]localShard
}

// localShards is the number of shards of a Local.
const localShards = 16

// localShard holds its counts in a ring in the order their windows
// started (a route's window is fixed, so also the order they end): each
// addition first drops the counts whose window has ended from the
// front, so the ring holds only live windows, and a full ring drops its
// oldest. Nothing in it is a pointer: a full detector costs the garbage
// collector nothing to scan.
type localShard struct {
	mu    sync.Mutex
	ring  []localCount       // grows by doubling up to max: an idle route holds next to nothing
	max   int                // counts the ring may hold
	head  int                // the oldest count
	size  int                // counts in the ring
	byKey map[[32]byte]int32 // → its count's index in the ring
	now   func() time.Time
	_     [64]byte // no false sharing between neighbouring shards
}

// minLocalRing is a shard's first ring size.
const minLocalRing = 64

type localCount struct {
	key     [32]byte
	n       int64
	expires int64 // unix ns
}

// NewLocal returns a local counter of at most max keys.
func NewLocal(max int, now func() time.Time) *Local {
	l := &Local{}
	per := max / localShards
	if per < 1 {
		per = 1
	}
	for i := range l.shards {
		l.shards[i] = localShard{max: per, byKey: map[[32]byte]int32{}, now: now}
	}
	return l
}

func (l *Local) Add(_ context.Context, key string, window time.Duration) (int64, error) {
	k := pipeline.Key32(key)
	return l.shards[k[0]%localShards].add(k, window), nil
}

func (l *localShard) add(k [32]byte, window time.Duration) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now().UnixNano()
	for l.size > 0 && l.ring[l.head].expires <= now {
		l.pop()
	}
	if i, ok := l.byKey[k]; ok {
		l.ring[i].n++ // a live window: pop has dropped the ended ones
		return l.ring[i].n
	}
	if l.size == len(l.ring) {
		if len(l.ring) < l.max {
			l.grow()
		} else {
			l.pop()
		}
	}
	i := (l.head + l.size) % len(l.ring)
	l.ring[i] = localCount{key: k, n: 1, expires: now + int64(window)}
	l.size++
	l.byKey[k] = int32(i)
	return 1
}

// grow doubles the ring (up to max), its counts moved to the front in
// order.
func (l *localShard) grow() {
	ring := make([]localCount, min(max(2*len(l.ring), minLocalRing), l.max))
	for j := range l.size {
		ring[j] = l.ring[(l.head+j)%len(l.ring)]
		l.byKey[ring[j].key] = int32(j)
	}
	l.ring, l.head = ring, 0
}

// pop drops the oldest count.
func (l *localShard) pop() {
	c := &l.ring[l.head]
	if j, ok := l.byKey[c.key]; ok && int(j) == l.head {
		delete(l.byKey, c.key)
	}
	l.head = (l.head + 1) % len(l.ring)
	l.size--
}

// Redis counts in Redis, shared by every instance, through the shared
// batcher.
type Redis struct {
	batch  *redisbatch.Batcher
	prefix string
}

// NewRedis returns a Redis counter under prefix.
func NewRedis(batch *redisbatch.Batcher, prefix string) *Redis {
	return &Redis{batch: batch, prefix: prefix + "race:"}
}

// countScript counts and starts the window with the first request.
var countScript = redis.NewScript(`local n = redis.call("INCR", KEYS[1]) if n == 1 then redis.call("PEXPIRE", KEYS[1], ARGV[1]) end return n`)

func (r *Redis) Add(ctx context.Context, key string, window time.Duration) (int64, error) {
	var cmd *redis.Cmd
	err := r.batch.Do(ctx, func(ctx context.Context, p redis.Pipeliner) {
		cmd = countScript.EvalSha(ctx, p, []string{r.RedisKey(key)}, window.Milliseconds())
	}, countScript)
	if err != nil {
		return 0, err
	}
	return cmd.Int64()
}

// RedisKey is where key's count lives in Redis.
func (r *Redis) RedisKey(key string) string { return r.prefix + hex.EncodeToString([]byte(key)) }
