package ratelimit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/clientip"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// TestGCRAExactUnderContention: at a frozen instant exactly Burst requests
// pass, however many goroutines race; as time advances, exactly one more
// per emission interval.
func TestGCRAExactUnderContention(t *testing.T) {
	st := NewLocal(1000)
	lim := Limit{Rate: 10, Period: time.Second, Burst: 5}
	now := time.Unix(1000, 0)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if r, _ := st.Allow(context.Background(), "k", lim, now); r.Allowed {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 5 {
		t.Fatalf("%d allowed at one instant, want the burst of 5", ok.Load())
	}
	r, _ := st.Allow(context.Background(), "k", lim, now)
	if r.Allowed || r.RetryAfter != 100*time.Millisecond {
		t.Fatalf("refusal: %+v, want retry after one interval (100ms)", r)
	}
	// Over the next 10 s, at most 10/s more.
	allowed := 0
	for ms := 1; ms <= 10000; ms++ {
		if r, _ := st.Allow(context.Background(), "k", lim, now.Add(time.Duration(ms)*time.Millisecond)); r.Allowed {
			allowed++
		}
	}
	if allowed != 100 {
		t.Fatalf("%d allowed over 10 s at 10/s, want 100", allowed)
	}
	if r, _ := st.Allow(context.Background(), "other", lim, now); !r.Allowed || r.Remaining != 4 {
		t.Fatalf("independent key: %+v", r)
	}
}

func TestLocalBounded(t *testing.T) {
	st := NewLocal(64 * 16)
	lim := Limit{Rate: 1, Period: time.Hour, Burst: 1}
	now := time.Unix(1000, 0)
	for i := 0; i < 20000; i++ {
		st.Allow(context.Background(), "k"+string(rune(i)), lim, now)
	}
	if n := st.Len(); n > 64*16 {
		t.Fatalf("store holds %d keys, bound %d", n, 64*16)
	}
}

func BenchmarkLocalParallel(b *testing.B) {
	st := NewLocal(1 << 20)
	lim := Limit{Rate: 1000000, Period: time.Second, Burst: 1000000}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "route|0|198.51.100." + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		now := time.Now()
		for pb.Next() {
			st.Allow(context.Background(), keys[i%len(keys)], lim, now)
			i++
		}
	})
}

func TestQuotaWindows(t *testing.T) {
	now := time.Date(2026, 11, 27, 23, 59, 0, 0, time.UTC)
	if e := windowEnd(now, false); !e.Equal(time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("day end %v", e)
	}
	if e := windowEnd(time.Date(2026, 12, 31, 10, 0, 0, 0, time.UTC), true); !e.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("month end %v", e)
	}
	q := NewLocalQuotas(1000)
	end := windowEnd(now, false)
	for i := 1; i <= 3; i++ {
		if n, _ := q.Incr(context.Background(), "k", end); n != int64(i) {
			t.Fatalf("count %d, want %d", n, i)
		}
	}
	if n, _ := q.Incr(context.Background(), "k", end.Add(24*time.Hour)); n != 1 {
		t.Fatalf("a new window starts at 1, got %d", n)
	}
}

// TestLocalQuotasBounded: a flood of new consumers within one day (a
// quota keyed by client address, the addresses endless) is held to the
// store's bound, where before every new consumer past 100,000 scanned
// them all under one lock and none was ever dropped; a consumer of an
// unfilled store keeps its count, and ended windows go before live ones.
func TestLocalQuotasBounded(t *testing.T) {
	ctx := context.Background()
	end := time.Now().Add(time.Hour)
	q := NewLocalQuotas(6400)
	for range 5 {
		q.Incr(ctx, "steady", end)
	}
	for i := range 300000 {
		q.Incr(ctx, fmt.Sprint("203.0.", i), end)
	}
	if n := q.counts.len(); n > 6400 {
		t.Fatalf("%d consumers held, bound 6400", n)
	}
	q = NewLocalQuotas(6400)
	for i := range 6000 {
		q.Incr(ctx, fmt.Sprint("old-", i), time.Now().Add(-time.Minute)) // windows that ended
	}
	for range 5 {
		q.Incr(ctx, "steady", end)
	}
	for i := range 3000 {
		q.Incr(ctx, fmt.Sprint("new-", i), end)
	}
	if n, _ := q.Incr(ctx, "steady", end); n != 6 {
		t.Fatalf("a live count was dropped while ended ones were held: %d", n)
	}
}

// callers returns a request carrying a scope with this identity (nil: no
// identity) and client address.
func callerRequest(id *pipeline.Identity, ip string) *http.Request {
	r := httptest.NewRequest("GET", "/x", nil)
	s := &pipeline.Scope{Identity: id, RouteID: "r", ClientIP: netip.MustParseAddr(ip)}
	s.ClientKey = clientip.Key(s.ClientIP, 64)
	return r.WithContext(pipeline.WithScope(r.Context(), s))
}

// TestBucketsNotShared is the attack on bucket keys: callers that differ
// must never share a bucket, so that one caller cannot exhaust another's
// limit. Each case sends the first caller once (burst 1) and then the
// second, which must still be allowed.
func TestBucketsNotShared(t *testing.T) {
	claims := func(sub string, kv ...any) *pipeline.Identity {
		id := &pipeline.Identity{Subject: sub, Method: "jwt", Claims: map[string]any{}}
		for i := 0; i < len(kv); i += 2 {
			id.Claims[kv[i].(string)] = kv[i+1]
		}
		return id
	}
	cases := []struct {
		name   string
		keys   []KeyPart
		claim  string
		a, b   *pipeline.Identity
		aIP    string
		bIP    string
		shared bool // the two are the same caller and must share
	}{
		{"numeric tenant claims", []KeyPart{KeyClaim}, "tenant_id", claims("u1", "tenant_id", float64(42)), claims("u2", "tenant_id", float64(43)), "192.0.2.1", "192.0.2.1", false},
		{"int and float forms of one tenant", []KeyPart{KeyClaim}, "tenant_id", claims("u1", "tenant_id", int64(42)), claims("u2", "tenant_id", float64(42)), "192.0.2.1", "192.0.2.1", true},
		{"json.Number tenant", []KeyPart{KeyClaim}, "tenant_id", claims("u1", "tenant_id", json.Number("42")), claims("u2", "tenant_id", int64(42)), "192.0.2.1", "192.0.2.1", true},
		{"string 42 is not number 42", []KeyPart{KeyClaim}, "tenant_id", claims("u1", "tenant_id", "42"), claims("u2", "tenant_id", int64(42)), "192.0.2.1", "192.0.2.1", false},
		{"boolean claims", []KeyPart{KeyClaim}, "beta", claims("u1", "beta", true), claims("u2", "beta", false), "192.0.2.1", "192.0.2.1", false},
		{"separator in subject", []KeyPart{KeySubject, KeyClaim}, "tenant", claims("alice|x", "tenant", "y"), claims("alice", "tenant", "x|y"), "192.0.2.1", "192.0.2.1", false},
		{"length-prefix forgery", []KeyPart{KeySubject, KeyClaim}, "tenant", claims("a", "tenant", "S3:bcd"), claims("aS3:b", "tenant", "cd"), "192.0.2.1", "192.0.2.1", false},
		{"IPv6 /64 is one client", []KeyPart{KeyClientIP}, "", nil, nil, "2001:db8::1", "2001:db8::2", true},
		{"IPv6 /64s differ", []KeyPart{KeyClientIP}, "", nil, nil, "2001:db8::1", "2001:db8:0:1::1", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rule := Rule{Name: "l", Keys: withClaim(c.keys, c.claim), Store: NewLocal(1024), Limit: Limit{Rate: 1, Period: time.Hour, Burst: 1}}
			h := New(Options{RouteID: "r", Rules: []Rule{rule}})(func(http.ResponseWriter, *http.Request) error { return nil })
			if err := h(httptest.NewRecorder(), callerRequest(c.a, c.aIP)); err != nil {
				t.Fatalf("first caller: %v", err)
			}
			err := h(httptest.NewRecorder(), callerRequest(c.b, c.bIP))
			if c.shared != (err != nil) {
				t.Fatalf("second caller after the first exhausted its bucket: %v (want shared=%v)", err, c.shared)
			}
		})
	}
}

// withClaim builds a key from parts, naming claim for each KeyClaim part.
func withClaim(parts []KeyPart, claim string) []Key {
	out := make([]Key, len(parts))
	for i, p := range parts {
		out[i] = Key{Part: p}
		if p == KeyClaim {
			out[i].Claim = claim
		}
	}
	return out
}

// TestTwoClaimsInOneKey: each claim part reads its own claim (a key of
// tenant and region is not the region twice).
func TestTwoClaimsInOneKey(t *testing.T) {
	rule := Rule{Name: "l", Keys: []Key{{Part: KeyClaim, Claim: "tenant"}, {Part: KeyClaim, Claim: "region"}}, Store: NewLocal(1024), Limit: Limit{Rate: 1, Period: time.Hour, Burst: 1}}
	h := New(Options{RouteID: "r", Rules: []Rule{rule}})(func(http.ResponseWriter, *http.Request) error { return nil })
	id := func(tenant string) *pipeline.Identity {
		return &pipeline.Identity{Subject: "u", Claims: map[string]any{"tenant": tenant, "region": "eu"}}
	}
	if err := h(httptest.NewRecorder(), callerRequest(id("acme"), "192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if err := h(httptest.NewRecorder(), callerRequest(id("globex"), "192.0.2.1")); err != nil {
		t.Fatalf("another tenant in the same region shares the bucket: %v", err)
	}
}

// TestMissingKeyPart: a token without the subject or claim a limit is
// keyed by is refused by default (callers lacking a part must not share
// one bucket) or, with the fallback, counted by client address.
func TestMissingKeyPart(t *testing.T) {
	noSub := &pipeline.Identity{Method: "jwt", Claims: map[string]any{"groups": []any{"a"}}}
	for _, c := range []struct {
		name  string
		keys  []KeyPart
		claim string
		id    *pipeline.Identity
	}{
		{"no subject", []KeyPart{KeySubject}, "", noSub},
		{"absent claim", []KeyPart{KeyClaim}, "tenant_id", noSub},
		{"array claim", []KeyPart{KeyClaim}, "groups", noSub},
		{"empty string claim", []KeyPart{KeyClaim}, "tenant_id", &pipeline.Identity{Subject: "u", Claims: map[string]any{"tenant_id": ""}}},
		{"api key on a JWT caller", []KeyPart{KeyAPIKey}, "", &pipeline.Identity{Subject: "u", Method: "jwt", TokenID: "j1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rule := Rule{Name: "l", Keys: withClaim(c.keys, c.claim), Store: NewLocal(1024), Limit: Limit{Rate: 1, Period: time.Hour, Burst: 1}}
			h := New(Options{RouteID: "r", Rules: []Rule{rule}})(func(http.ResponseWriter, *http.Request) error { return nil })
			err := h(httptest.NewRecorder(), callerRequest(c.id, "192.0.2.1"))
			if pe := pipeline.AsError(err); pe == nil || pe.Code != CodeKeyMissing || pe.Status != http.StatusForbidden {
				t.Fatalf("refuse: got %v, want 403 %s", err, CodeKeyMissing)
			}
			rule.FallbackToClientIP = true
			h = New(Options{RouteID: "r", Rules: []Rule{rule}})(func(http.ResponseWriter, *http.Request) error { return nil })
			if err := h(httptest.NewRecorder(), callerRequest(c.id, "192.0.2.1")); err != nil {
				t.Fatalf("fallback, first client: %v", err)
			}
			if err := h(httptest.NewRecorder(), callerRequest(c.id, "192.0.2.2")); err != nil {
				t.Fatalf("fallback: a second client shares the first one's bucket: %v", err)
			}
			if err := h(httptest.NewRecorder(), callerRequest(c.id, "192.0.2.1")); err == nil {
				t.Fatal("fallback: the first client's bucket did not count")
			}
		})
	}
}

// FuzzBucketKey: different (subject, claim) pairs never give one key.
func FuzzBucketKey(f *testing.F) {
	f.Add("alice|x", "y", "alice", "x|y")
	f.Add("a", "S1:b", "aS1:b", "")
	f.Fuzz(func(t *testing.T, s1, c1, s2, c2 string) {
		if s1 == s2 && c1 == c2 {
			return
		}
		key := func(sub, claim string) string {
			s := &pipeline.Scope{RouteID: "r", Identity: &pipeline.Identity{Subject: sub, Claims: map[string]any{"t": claim}}}
			k, _ := bucketKey("r", 0, []Key{{Part: KeySubject}, {Part: KeyClaim, Claim: "t"}}, true, s)
			return k
		}
		if s1 != "" && s2 != "" && c1 != "" && c2 != "" && key(s1, c1) == key(s2, c2) {
			t.Fatalf("(%q,%q) and (%q,%q) share a key", s1, c1, s2, c2)
		}
	})
}
