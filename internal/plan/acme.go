package plan

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/rampart-gw/rampart/internal/acme"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/store"
)

// compileACME gives each listener with an acme section its certificate
// manager: the previous plan's while the section (and what it depends
// on) is unchanged, so certificates in memory and renewals carry over a
// reload. A config check builds none (it must not reach a CA).
func (p *Plan) compileACME(cfg *config.Config, deps pipeline.Deps, prev *Plan, st *State, secrets *store.Store) []error {
	var errs []error
	for i, l := range cfg.Listeners {
		lp := p.listeners[l.Name]
		if l.TLS == nil || l.TLS.ACME == nil || st.CheckOnly || lp == nil || lp.certs == nil {
			continue
		}
		o := acme.Options{Listener: l.Name, Names: cfg.ACMEDomains(l.Name, l.TLS.ACME), Hosts: cfg.ACMEHosts(l.Name),
			TLSAddr: l.Address, Store: secrets, Redis: st.Shared.Client(), Deps: deps}
		if pl := cfg.PlainListener(); pl != nil {
			o.HTTPAddr = pl.Address
		}
		if r := cfg.RateLimiting.Redis; r != nil {
			o.RedisPrefix = r.KeyPrefix
		}
		m := prev.Listener(l.Name).acmeManager()
		if !m.Same(acme.Fingerprint(l.TLS.ACME, o)) {
			var err error
			if m, err = acme.New(l.TLS.ACME, o); err != nil {
				errs = append(errs, cfg.Problem(fmt.Sprintf("listeners[%d].tls.acme", i), "%v", err))
				continue
			}
		}
		lp.acme = m
		lp.certs = lp.certs.WithIssuer(m)
	}
	return errs
}

func (lp *Listener) acmeManager() *acme.Manager {
	if lp == nil {
		return nil
	}
	return lp.acme
}

// acmeChallengePath is where http-01 validation requests arrive.
const acmeChallengePath = "/.well-known/acme-challenge/"

// ACMEChallenge answers an ACME http-01 validation request for any
// listener's manager; false: r is not one (nothing written).
func (p *Plan) ACMEChallenge(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, acmeChallengePath) {
		return false
	}
	for _, lp := range p.listeners {
		if lp.acme != nil && lp.acme.HTTPChallenge(w, r) {
			return true
		}
	}
	return false
}

// startACME starts the managers of p (a reused one keeps running).
func (p *Plan) startACME() {
	for _, lp := range p.listeners {
		if lp.acme != nil {
			if err := lp.acme.Start(); err != nil {
				lp.acme.Log("starting certificate management failed", err)
			}
		}
	}
}

// closeACME stops the managers of p that keep does not share.
func (p *Plan) closeACME(keep *Plan) {
	for name, lp := range p.listeners {
		if lp.acme != nil && keep.Listener(name).acmeManager() != lp.acme {
			lp.acme.Stop()
		}
	}
}
