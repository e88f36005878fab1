package authn

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// JTIStore remembers revoked tokens (by jti, and every token of a
// subject until a time) and, for single-use routes, token ids already
// seen. Revocations are read on every request without a lock (an
// immutable set swapped whole on each change); entries expire. It lives
// outside the plan: a reload keeps runtime revocations and the replay
// guard's memory, and replaces only the configured list.
type JTIStore struct {
	mu      sync.Mutex // writers of the revocation set; the seen map
	revoked atomic.Pointer[revocationSet]
	seen    map[string]time.Time
	sweep   time.Time
}

// revocationSet is one immutable generation of revocations.
type revocationSet struct {
	configured map[string]time.Time     // authn.revoked_token_ids
	jti        map[string]time.Time     // revoked at runtime, until
	subjects   map[subjectKey]time.Time // every token of the subject, until
}

type subjectKey struct{ issuer, subject string }

// Revocation is one runtime revocation, as the admin API lists them.
type Revocation struct {
	JTI     string    `json:"jti,omitempty"`
	Issuer  string    `json:"issuer,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Until   time.Time `json:"until"`
}

// NewJTIStore returns an empty store.
func NewJTIStore() *JTIStore {
	s := &JTIStore{seen: map[string]time.Time{}}
	s.revoked.Store(&revocationSet{})
	return s
}

// change applies f to a copy of the revocation set (dropping expired
// entries) and puts the copy in service.
func (s *JTIStore) change(now time.Time, f func(*revocationSet)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.revoked.Load()
	c := &revocationSet{configured: old.configured, jti: map[string]time.Time{}, subjects: map[subjectKey]time.Time{}}
	for k, t := range old.jti {
		if now.Before(t) {
			c.jti[k] = t
		}
	}
	for k, t := range old.subjects {
		if now.Before(t) {
			c.subjects[k] = t
		}
	}
	f(c)
	s.revoked.Store(c)
}

// Revoke revokes jti until the given time (zero: for a day).
func (s *JTIStore) Revoke(jti string, until, now time.Time) {
	if until.IsZero() {
		until = now.Add(24 * time.Hour)
	}
	s.change(now, func(c *revocationSet) { c.jti[jti] = until })
}

// RevokeSubject refuses every token of subject from issuer until the
// given time (a lockout; set it past the lifetime of the tokens out).
func (s *JTIStore) RevokeSubject(issuer, subject string, until, now time.Time) {
	s.change(now, func(c *revocationSet) { c.subjects[subjectKey{issuer, subject}] = until })
}

// Lift removes the runtime revocation of a jti, or of an issuer's
// subject.
func (s *JTIStore) Lift(jti, issuer, subject string, now time.Time) {
	s.change(now, func(c *revocationSet) {
		delete(c.jti, jti)
		delete(c.subjects, subjectKey{issuer, subject})
	})
}

// ReplaceRuntime puts revs in force as the runtime revocations, in place
// of those there were (the shared or saved state, read back).
func (s *JTIStore) ReplaceRuntime(revs []Revocation, now time.Time) {
	s.change(now, func(c *revocationSet) {
		clear(c.jti)
		clear(c.subjects)
		for _, r := range revs {
			if !now.Before(r.Until) {
				continue
			}
			if r.JTI != "" {
				c.jti[r.JTI] = r.Until
			} else {
				c.subjects[subjectKey{r.Issuer, r.Subject}] = r.Until
			}
		}
	})
}

// List returns the runtime revocations in force.
func (s *JTIStore) List(now time.Time) []Revocation {
	set := s.revoked.Load()
	var out []Revocation
	for j, t := range set.jti {
		if now.Before(t) {
			out = append(out, Revocation{JTI: j, Until: t})
		}
	}
	for k, t := range set.subjects {
		if now.Before(t) {
			out = append(out, Revocation{Issuer: k.issuer, Subject: k.subject, Until: t})
		}
	}
	return out
}

// SetRevoked replaces the configured revocation list (runtime
// revocations stay).
func (s *JTIStore) SetRevoked(jtis []string, now time.Time) {
	configured := make(map[string]time.Time, len(jtis))
	for _, j := range jtis {
		configured[j] = now.Add(100 * 365 * 24 * time.Hour)
	}
	s.change(now, func(c *revocationSet) { c.configured = configured })
}

// Revoked reports whether the credential is revoked: its jti, or every
// token of its subject. It takes no lock and allocates nothing.
func (s *JTIStore) Revoked(id *pipeline.Identity, now time.Time) bool {
	set := s.revoked.Load()
	if id.TokenID != "" {
		if until, ok := set.configured[id.TokenID]; ok && now.Before(until) {
			return true
		}
		if until, ok := set.jti[id.TokenID]; ok && now.Before(until) {
			return true
		}
	}
	if len(set.subjects) == 0 {
		return false
	}
	until, ok := set.subjects[subjectKey{id.Issuer, id.Subject}]
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
