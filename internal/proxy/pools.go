package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Pools are the compiled upstreams of a config, by name.
type Pools struct {
	byName map[string]*poolEntry
}

type poolEntry struct {
	fingerprint string
	pool        *Pool
}

// CompilePools builds a pool per upstream, keeping prev's pool (health
// state, ejections, breaker) when its config is unchanged. New pools are
// not started: the caller starts them once the plan is accepted.
func CompilePools(cfg *config.Config, deps pipeline.Deps, prev *Pools) (*Pools, []error) {
	ps := &Pools{byName: map[string]*poolEntry{}}
	var errs []error
	for i, u := range cfg.Upstreams {
		key := fmt.Sprintf("upstreams[%d]", i)
		fp, err := fingerprint(u)
		if err != nil {
			errs = append(errs, cfg.Problem(key, "%v", err))
			continue
		}
		if prev != nil {
			if old, ok := prev.byName[u.Name]; ok && old.fingerprint == fp {
				ps.byName[u.Name] = old
				continue
			}
		}
		pool, err := NewPool(u, deps)
		if err != nil {
			errs = append(errs, cfg.Problem(key, "%v", err))
			continue
		}
		ps.byName[u.Name] = &poolEntry{fingerprint: fp, pool: pool}
	}
	return ps, errs
}

// Get returns the pool of an upstream, or nil.
func (ps *Pools) Get(name string) *Pool {
	if e := ps.byName[name]; e != nil {
		return e.pool
	}
	return nil
}

// Start starts every pool's health checks (idempotent).
func (ps *Pools) Start() {
	for _, e := range ps.byName {
		e.pool.Start()
	}
}

// CloseUnshared closes the pools of ps that keep (nil: none) does not
// share: they stop their health checks and close idle connections;
// requests still using them finish.
func (ps *Pools) CloseUnshared(keep *Pools) {
	if ps == nil {
		return
	}
	for name, e := range ps.byName {
		if keep == nil || keep.byName[name] != e {
			e.pool.Close()
		}
	}
}

// fingerprint identifies an upstream's config, including secret values and
// the identity of files it reads, so that a changed CA bundle or client
// certificate builds a new pool on reload.
func fingerprint(u config.Upstream) (string, error) {
	b, err := json.Marshal(u)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(b)
	if u.Credential != nil {
		h.Write([]byte(u.Credential.Value.Reveal()))
	}
	for _, f := range []string{u.TLS.CAFile, u.TLS.CertFile, u.TLS.KeyFile} {
		if f == "" {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f, err)
		}
		fmt.Fprintf(h, "%s:%d:%d", f, st.Size(), st.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Targets reports every target's availability and drained state at now
// (unix nanoseconds).
func (ps *Pools) Targets(now int64, report func(upstream, target string, healthy, drained bool)) {
	for name, e := range ps.byName {
		for _, t := range e.pool.Targets() {
			report(name, t.Host, t.Available(now), t.Drained())
		}
	}
}

// Health reports every target's health at now (unix nanoseconds).
func (ps *Pools) Health(now int64, report func(upstream, target string, healthy bool)) {
	ps.Targets(now, func(upstream, target string, healthy, _ bool) { report(upstream, target, healthy) })
}

// ErrNoTarget is a drain naming an upstream or target the plan lacks.
var ErrNoTarget = errors.New("no such upstream target")

// Drain stops (drained) or resumes new requests to one target of an
// upstream; requests in flight finish. The state lasts while the pool
// does: until the upstream's config changes.
func (ps *Pools) Drain(upstream, target string, drained bool) error {
	e := ps.byName[upstream]
	if e == nil {
		return ErrNoTarget
	}
	for _, t := range e.pool.Targets() {
		if t.Host == target {
			t.drained.Store(drained)
			return nil
		}
	}
	return ErrNoTarget
}
