package authn

import (
	"sync"
	"time"
)

// JTIStore remembers token ids: revoked ones, and (for single-use routes)
// ones already seen. Entries expire with their token, so memory is bounded
// by the tokens alive at once. It lives outside the plan: a reload keeps
// revocations and the replay guard's memory. (Shared through Redis once
// the rate-limiting issue adds it.)
type JTIStore struct {
	mu      sync.Mutex
	revoked map[string]time.Time
	seen    map[string]time.Time
	sweep   time.Time
}

// NewJTIStore returns an empty store.
func NewJTIStore() *JTIStore {
	return &JTIStore{revoked: map[string]time.Time{}, seen: map[string]time.Time{}}
}

// Revoke revokes jti until the given time (zero: for a day).
func (s *JTIStore) Revoke(jti string, until, now time.Time) {
	if until.IsZero() {
		until = now.Add(24 * time.Hour)
	}
	s.mu.Lock()
	s.revoked[jti] = until
	s.mu.Unlock()
}

// SetRevoked replaces the configured revocation list.
func (s *JTIStore) SetRevoked(jtis []string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = make(map[string]time.Time, len(jtis))
	for _, j := range jtis {
		s.revoked[j] = now.Add(100 * 365 * 24 * time.Hour)
	}
}

// Revoked reports whether jti is revoked.
func (s *JTIStore) Revoked(jti string, now time.Time) bool {
	if jti == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.revoked[jti]
	return ok && now.Before(until)
}

// FirstUse records jti until exp and reports whether this is its first
// use (the replay guard of single-use routes).
func (s *JTIStore) FirstUse(jti string, exp, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.After(s.sweep) {
		for k, t := range s.seen {
			if now.After(t) {
				delete(s.seen, k)
			}
		}
		s.sweep = now.Add(time.Minute)
	}
	if t, ok := s.seen[jti]; ok && now.Before(t) {
		return false
	}
	s.seen[jti] = exp
	return true
}
