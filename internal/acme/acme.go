// Package acme obtains and renews a TLS listener's certificates from an
// ACME certificate authority (certmagic): tls-alpn-01 on the listener
// itself, http-01 on the plain listener, certificates, keys and the
// account stored encrypted (a directory several instances may share, or
// Redis), renewal well before expiry with backoff, and a security event
// and metric for each certificate obtained or failed. On-demand issuance
// is bounded by the hosts of the listener's routes.
package acme

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/pki"
	"github.com/rampart-gw/rampart/internal/store"
)

// Options are what a manager needs besides its config section.
type Options struct {
	Listener string
	// Names are the domains managed from the start; Hosts bound
	// on-demand issuance (exact or "*.example.com").
	Names, Hosts []string
	// HTTPAddr and TLSAddr are the listeners a CA reaches for http-01
	// (the plain listener; empty: none) and tls-alpn-01.
	HTTPAddr, TLSAddr string
	Store             *store.Store
	Redis             redis.UniversalClient // storage "redis"
	RedisPrefix       string
	Deps              pipeline.Deps
}

// Manager keeps one listener's ACME certificates.
type Manager struct {
	fingerprint string
	o           Options
	cache       *certmagic.Cache
	magic       *certmagic.Config
	issuer      *certmagic.ACMEIssuer
	names       map[string]bool
	cancel      context.CancelFunc
	startOnce   sync.Once
	stopOnce    sync.Once
}

// New prepares a manager; Start begins obtaining certificates.
func New(c *config.ACME, o Options) (*Manager, error) {
	storage, err := openStorage(c, o)
	if err != nil {
		return nil, err
	}
	m := &Manager{fingerprint: Fingerprint(c, o), o: o, names: map[string]bool{}}
	for _, n := range o.Names {
		m.names[strings.ToLower(n)] = true
	}
	logger := zap.New(newLogCore(o.Deps, o.Listener))
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		RenewCheckInterval: o.Deps.CertRenewCheck,
		Logger:             logger,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		Storage:        storage,
		KeySource:      certmagic.StandardKeyGenerator{KeyType: keyType(c.KeyType)},
		OnEvent:        m.onEvent,
		ShouldEmitFunc: func(e string) bool { return e == "cert_obtained" || e == "cert_failed" },
		Logger:         logger,
	})
	if c.OnDemand {
		m.magic.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: m.decide}
	}
	issuer, err := newIssuer(m.magic, c, o, logger)
	if err != nil {
		m.cache.Stop()
		return nil, err
	}
	m.issuer = issuer
	m.magic.Issuers = []certmagic.Issuer{issuer}
	return m, nil
}

func newIssuer(magic *certmagic.Config, c *config.ACME, o Options, logger *zap.Logger) (*certmagic.ACMEIssuer, error) {
	tmpl := certmagic.ACMEIssuer{
		CA: c.CA, Email: c.Email, Agreed: true, Logger: logger,
		DisableHTTPChallenge:    !slices.Contains(c.Challenges, config.ChallengeHTTP01) || o.HTTPAddr == "",
		DisableTLSALPNChallenge: !slices.Contains(c.Challenges, config.ChallengeTLSALPN01),
	}
	// The solvers must never bind sockets of their own: pointing them at
	// Rampart's own listeners makes them find the port taken and leave
	// the answer to the listener (GetCertificate and HTTPChallenge).
	var err error
	if tmpl.ListenHost, tmpl.AltTLSALPNPort, err = hostPort(o.TLSAddr); err != nil {
		return nil, err
	}
	if o.HTTPAddr != "" {
		if _, tmpl.AltHTTPPort, err = hostPort(o.HTTPAddr); err != nil {
			return nil, err
		}
	}
	if c.CARootFile != "" {
		pool, err := pki.CAPool(c.CARootFile)
		if err != nil {
			return nil, fmt.Errorf("acme.ca_root_file: %w", err)
		}
		tmpl.TrustedRoots = pool
	}
	return certmagic.NewACMEIssuer(magic, tmpl), nil
}

func hostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return h, n, err
}

func openStorage(c *config.ACME, o Options) (certmagic.Storage, error) {
	if o.Store == nil {
		return nil, errors.New("acme: needs state.master_key")
	}
	var inner certmagic.Storage = &certmagic.FileStorage{Path: c.StorageDir}
	if c.Storage == "redis" {
		if o.Redis == nil {
			return nil, errors.New("acme: storage redis needs rate_limiting.redis")
		}
		inner = newRedisStorage(o.Redis, o.RedisPrefix)
	}
	return sealed{Storage: inner, s: o.Store}, nil
}

func keyType(k string) certmagic.KeyType {
	switch k {
	case "p384":
		return certmagic.P384
	case "rsa2048":
		return certmagic.RSA2048
	}
	return certmagic.P256
}

// Fingerprint identifies a section and its options: a reload that keeps it
// keeps the manager (and its certificates in memory).
func Fingerprint(c *config.ACME, o Options) string {
	return fmt.Sprintf("%+v|%s|%v|%v|%s|%s|%p", *c, o.Listener, o.Names, o.Hosts, o.HTTPAddr, o.TLSAddr, o.Redis)
}

// Same reports whether m was built from the same section and options.
func (m *Manager) Same(fp string) bool { return m != nil && m.fingerprint == fp }

// Start manages the configured names in the background: certificates
// in storage are loaded, missing or expiring ones obtained (retried with
// backoff on failure). Starting again does nothing.
func (m *Manager) Start() error {
	var err error
	m.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		m.cancel = cancel
		err = m.magic.ManageAsync(ctx, m.o.Names)
	})
	return err
}

// Log reports a manager's failure in the gateway's log.
func (m *Manager) Log(msg string, err error) {
	if m.o.Deps.Log != nil {
		m.o.Deps.Log.Error(msg, "listener", m.o.Listener, "error", err.Error())
	}
}

// Stop ends renewals and obtaining (again: no-op).
func (m *Manager) Stop() {
	m.stopOnce.Do(func() {
		if m.cancel != nil {
			m.cancel()
		}
		m.cache.Stop()
	})
}

// Manages reports whether a server name's certificate comes from ACME.
func (m *Manager) Manages(name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	return m.names[name] || (m.magic.OnDemand != nil && m.decide(context.Background(), name) == nil)
}

// GetCertificate answers a handshake for a managed name, or a tls-alpn-01
// validation handshake.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.magic.GetCertificate(hello)
}

// HTTPChallenge answers an http-01 validation request (for this instance
// or another one sharing the storage); false: not one.
func (m *Manager) HTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return m.issuer.HandleHTTPChallenge(w, r)
}

// decide allows on-demand issuance only for names that match a host of
// the listener's routes.
func (m *Manager) decide(_ context.Context, name string) error {
	for _, h := range m.o.Hosts {
		if h == name {
			return nil
		}
		if suffix, ok := strings.CutPrefix(h, "*"); ok && strings.HasSuffix(name, suffix) &&
			!strings.Contains(strings.TrimSuffix(name, suffix), ".") && len(name) > len(suffix) {
			return nil
		}
	}
	return fmt.Errorf("%q matches no host of listener %s", name, m.o.Listener)
}

// onEvent turns certmagic's results into security events and metrics.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	ev := pipeline.Event{Time: m.o.Deps.Now(), Host: name, Attrs: map[string]string{"listener": m.o.Listener}}
	switch event {
	case "cert_obtained":
		ev.Name, ev.Code = "tls.certificate_obtained", "tls.certificate_obtained"
		ev.Reason = "certificate obtained for " + name
		if renewal, _ := data["renewal"].(bool); renewal {
			ev.Attrs["renewal"] = "true"
		}
	case "cert_failed":
		ev.Name, ev.Code = "tls.acme_failed", "tls.acme_failed"
		ev.Reason = fmt.Sprintf("obtaining a certificate for %s failed: %v", name, data["error"])
		if r, _ := data["remaining"].(time.Duration); r > 0 {
			ev.Attrs["remaining"] = r.Round(time.Second).String()
		}
	default:
		return nil
	}
	m.o.Deps.Events.Emit(ev)
	if m.o.Deps.CertificateResult != nil {
		m.o.Deps.CertificateResult(m.o.Listener, ev.Code == "tls.certificate_obtained")
	}
	return nil
}

// Renew renews name's certificate now, whatever its remaining lifetime
// (an operator's "renew now"; a failure is reported as usual and the
// current certificate stays).
func (m *Manager) Renew(ctx context.Context, name string) error {
	return m.magic.RenewCertSync(ctx, name, true)
}
