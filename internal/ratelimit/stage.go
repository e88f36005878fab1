package ratelimit

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/clientip"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Decision codes.
const (
	CodeExceeded    = "ratelimit.exceeded"
	CodeConcurrency = "ratelimit.concurrency"
)

// KeyPart is one source of a limit's key. Every source is verified data:
// the resolved client IP, the authenticated identity, the route. No
// request header can choose a key.
type KeyPart int

// Key sources.
const (
	KeyClientIP KeyPart = iota
	KeySubject
	KeyAPIKey
	KeyClaim
	KeyRoute
)

// Key is one part of a bucket key: its source and, for KeyClaim, the
// claim's name.
type Key struct {
	Part  KeyPart
	Claim string
}

// Rule is one limit of a route.
type Rule struct {
	// Name identifies the limit in headers and logs.
	Name string
	// Keys build the bucket key, in order.
	Keys []Key
	// Limit is the rate.
	Limit Limit
	// Store holds the buckets.
	Store Store
	// FailOpen lets requests through (to the fallback store) when the
	// store errs; otherwise they are refused.
	FailOpen bool
	// Fallback is used when Store errs and FailOpen is set.
	Fallback Store
	// FallbackToClientIP keys the bucket by the client address in place of
	// a part the request lacks; otherwise such a request is refused (403
	// ratelimit.key_missing).
	FallbackToClientIP bool
	// TierClaim selects a limit from Tiers by the caller's verified claim.
	TierClaim string
	// Tiers are the limits per claim value.
	Tiers map[string]Limit
}

// limitFor picks the rule's limit for the caller: a tier chosen by a
// verified claim, or the rule's own.
func (r *Rule) limitFor(s *pipeline.Scope) Limit {
	if r.TierClaim != "" && s != nil && s.Identity != nil {
		if v, ok := s.Identity.Claims[r.TierClaim].(string); ok {
			if l, ok := r.Tiers[v]; ok {
				return l
			}
		}
	}
	return r.Limit
}

// Options configure a route's limit stage.
type Options struct {
	// RouteID prefixes every bucket key.
	RouteID string
	// Rules are checked in order; the first refusal wins.
	Rules []Rule
	// Now is the clock.
	Now func() time.Time
}

// New returns the limit stage of a route (nil without rules).
func New(o Options) pipeline.Middleware {
	if len(o.Rules) == 0 {
		return nil
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	policies := make([]string, len(o.Rules))
	for i, r := range o.Rules {
		policies[i] = `"` + r.Name + `";q=` + strconv.Itoa(r.Limit.Burst) + `;w=` + strconv.Itoa(int(math.Ceil(r.Limit.Period.Seconds())))
	}
	policyHeader := []string{strings.Join(policies, ", ")}
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			s := pipeline.ScopeOf(r.Context())
			now := o.Now()
			var tightest Result
			tightestName := ""
			for i := range o.Rules {
				rule := &o.Rules[i]
				key, missing := bucketKey(o.RouteID, i, rule.Keys, rule.FallbackToClientIP, s)
				if missing != "" {
					return keyMissing(missing)
				}
				lim := rule.limitFor(s)
				res, err := rule.Store.Allow(r.Context(), key, lim, now)
				if err != nil {
					if !rule.FailOpen || rule.Fallback == nil {
						return pipeline.DenyErr(http.StatusServiceUnavailable, "ratelimit.unavailable", "rate limit store unavailable", err)
					}
					res, _ = rule.Fallback.Allow(r.Context(), key, lim, now)
				}
				if !res.Allowed {
					e := pipeline.Deny(http.StatusTooManyRequests, CodeExceeded, "rate limit exceeded")
					secs := int(math.Ceil(res.RetryAfter.Seconds()))
					e.Header = http.Header{
						"Retry-After":      {strconv.Itoa(max(secs, 1))},
						"Ratelimit-Policy": policyHeader,
						"Ratelimit":        {`"` + rule.Name + `";r=0;t=` + strconv.Itoa(max(secs, 1))},
					}
					return e
				}
				if tightestName == "" || res.Remaining < tightest.Remaining {
					tightest, tightestName = res, rule.Name
				}
			}
			h := w.Header()
			h["Ratelimit-Policy"] = policyHeader
			h["Ratelimit"] = []string{`"` + tightestName + `";r=` + strconv.Itoa(tightest.Remaining) + `;t=` + strconv.Itoa(int(math.Ceil(tightest.Reset.Seconds())))}
			return next(w, r)
		}
	}
}

// CodeKeyMissing refuses a request that lacks a part of a limit's key
// (a token without the subject or the claim the limit is keyed by).
const CodeKeyMissing = "ratelimit.key_missing"

// keyMissing is the refusal when a key part is absent and the limit does
// not fall back to the client address.
func keyMissing(part string) error {
	return pipeline.Deny(http.StatusForbidden, CodeKeyMissing, "the credential lacks the "+part+" this limit is keyed by")
}

// bucketKey builds a bucket key from verified data only. Every part is
// written with a type tag and its length ("c11:203.0.113.7"), so that no
// value, whatever bytes it holds, can make two callers' keys equal. When a
// part is absent (no subject, a claim missing or not a string, number or
// boolean) it returns the part's name, and no key, unless the rule falls
// back to the client address for it.
func bucketKey(route string, idx int, keys []Key, fallback bool, s *pipeline.Scope) (key, missing string) {
	b := make([]byte, 0, 64)
	b = appendPart(b, 'r', route)
	b = strconv.AppendInt(b, int64(idx), 10)
	for _, k := range keys {
		tag, v, ok := keyValue(k.Part, k.Claim, s)
		if !ok {
			if !fallback {
				return "", partName(k.Part, k.Claim)
			}
			tag, v = 'f', clientip.KeyString(s.ClientKey)
		}
		b = appendPart(b, tag, v)
	}
	return string(b), ""
}

// keyValue returns one part's tag and value, false when the request has
// none.
func keyValue(k KeyPart, claim string, s *pipeline.Scope) (byte, string, bool) {
	switch k {
	case KeyClientIP:
		return 'c', clientip.KeyString(s.ClientKey), s.ClientKey.IsValid()
	case KeyRoute:
		return 'R', s.RouteID, true
	case KeySubject:
		if s.Identity != nil && s.Identity.Subject != "" {
			return 's', s.Identity.Subject, true
		}
	case KeyAPIKey:
		if s.Identity != nil && s.Identity.Method == "apikey" && s.Identity.TokenID != "" {
			return 'k', s.Identity.TokenID, true
		}
	case KeyClaim:
		if s.Identity != nil {
			return claimValue(s.Identity.Claims[claim])
		}
	}
	return 0, "", false
}

// claimValue formats a claim canonically: a string as itself, a number in
// its shortest form (the integer 42 and the JSON number 42.0 are the same
// tenant), a boolean as true/false, each under its own tag so that the
// string "42" and the number 42 differ. Anything else (absent, null, an
// empty string, an array, an object) is no value.
func claimValue(v any) (byte, string, bool) {
	switch x := v.(type) {
	case string:
		return 'S', x, x != ""
	case bool:
		return 'B', strconv.FormatBool(x), true
	case int:
		return 'N', strconv.Itoa(x), true
	case int64:
		return 'N', strconv.FormatInt(x, 10), true
	case uint64:
		return 'N', strconv.FormatUint(x, 10), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			return 'N', strconv.FormatInt(int64(x), 10), true
		}
		return 'N', strconv.FormatFloat(x, 'g', -1, 64), !math.IsNaN(x) && !math.IsInf(x, 0)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return 'N', strconv.FormatInt(i, 10), true
		}
		if f, err := x.Float64(); err == nil {
			return claimValue(f)
		}
	}
	return 0, "", false
}

func partName(k KeyPart, claim string) string {
	switch k {
	case KeySubject:
		return "subject"
	case KeyAPIKey:
		return "API key"
	case KeyClaim:
		return "claim " + strconv.Quote(claim)
	}
	return "client address"
}

func appendPart(b []byte, tag byte, v string) []byte {
	b = append(b, tag)
	b = strconv.AppendInt(b, int64(len(v)), 10)
	b = append(b, ':')
	return append(b, v...)
}

// NewConcurrency returns a stage refusing more than max requests in
// flight on a route (429 ratelimit.concurrency).
func NewConcurrency(max int64) pipeline.Middleware {
	if max <= 0 {
		return nil
	}
	var inFlight atomic.Int64
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			if inFlight.Add(1) > max {
				inFlight.Add(-1)
				e := pipeline.Deny(http.StatusTooManyRequests, CodeConcurrency, "too many requests in flight")
				e.Header = http.Header{"Retry-After": {"1"}}
				return e
			}
			defer inFlight.Add(-1)
			return next(w, r)
		}
	}
}
