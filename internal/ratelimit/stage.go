package ratelimit

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

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

// Rule is one limit of a route.
type Rule struct {
	// Name identifies the limit in headers and logs.
	Name string
	// Keys build the bucket key, in order.
	Keys []KeyPart
	// Claim is the claim name for KeyClaim.
	Claim string
	// Limit is the rate.
	Limit Limit
	// Store holds the buckets.
	Store Store
	// FailOpen lets requests through (to the fallback store) when the
	// store errs; otherwise they are refused.
	FailOpen bool
	// Fallback is used when Store errs and FailOpen is set.
	Fallback Store
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
	// IPv6Prefix keys IPv6 clients by this prefix length (default 64): one
	// host can use a whole /64.
	IPv6Prefix int
	// Now is the clock.
	Now func() time.Time
}

// New returns the limit stage of a route (nil without rules).
func New(o Options) pipeline.Middleware {
	if len(o.Rules) == 0 {
		return nil
	}
	if o.IPv6Prefix == 0 {
		o.IPv6Prefix = 64
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
				key := bucketKey(o.RouteID, i, rule, s, o.IPv6Prefix)
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

// bucketKey builds "route|rule|part|part..." from verified data only.
func bucketKey(route string, idx int, rule *Rule, s *pipeline.Scope, v6 int) string {
	var b strings.Builder
	b.Grow(64)
	b.WriteString(route)
	b.WriteByte('|')
	b.WriteString(strconv.Itoa(idx))
	for _, k := range rule.Keys {
		b.WriteByte('|')
		switch k {
		case KeyClientIP:
			b.WriteString(clientKey(s.ClientIP, v6))
		case KeySubject:
			if s.Identity != nil {
				b.WriteString(s.Identity.Subject)
			}
		case KeyAPIKey:
			if s.Identity != nil && s.Identity.Method == "apikey" {
				b.WriteString(s.Identity.TokenID)
			}
		case KeyClaim:
			if s.Identity != nil {
				if v, ok := s.Identity.Claims[rule.Claim]; ok {
					if str, ok := v.(string); ok {
						b.WriteString(str)
					}
				}
			}
		case KeyRoute:
			b.WriteString(route)
		}
	}
	return b.String()
}

// clientKey keys IPv4 clients by address and IPv6 clients by prefix.
func clientKey(a netip.Addr, v6 int) string {
	if a.Is6() && !a.Is4In6() {
		if p, err := a.Prefix(v6); err == nil {
			return p.String()
		}
	}
	return a.String()
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
