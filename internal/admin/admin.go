// Package admin serves the admin listener: liveness and readiness probes
// and, behind a bearer token, the Prometheus metrics.
package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/clientip"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/ipfilter"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Options configure the admin handler.
type Options struct {
	// Principals are the admin users; requests to protected endpoints
	// present a principal's token as "Authorization: Bearer <token>".
	Principals []Principal
	// OnAuthFailure, if set, hears of every failed admin authentication
	// or authorization (a security event), with the client address.
	OnAuthFailure func(client netip.Addr, code, detail string)
	// Metrics serves /metrics (protected).
	Metrics http.Handler
	// Ready reports readiness and each check's state ("ok" or why not).
	Ready func() (bool, map[string]string)
	// State feeds the live dashboard (nil: no dashboard).
	State func() State
	// LiftBan lifts a client's ban, on behalf of a principal.
	LiftBan func(ip, by string) error
	// Now is the clock (sessions, login throttling).
	Now func() time.Time
	// Ban bans a client address or prefix for d, on behalf of a principal
	// (nil: abuse detection is off).
	Ban func(client string, d time.Duration, by string) error
	// Reload reloads the config file on behalf of a principal (nil: no
	// file to reload).
	Reload func(by string) error
	// Revoke refuses a token or a subject's tokens until a time, on
	// behalf of a principal; Revocations lists those in force. An error
	// says the change is in force here but was not saved or shared.
	Revoke      func(r RevokeRequest, by string) error
	Unrevoke    func(r RevokeRequest, by string) error
	Revocations func() any
	// Drain stops or resumes new requests to an upstream target.
	Drain func(upstream, target string, drained bool, by string) error
	// RotateKey retires the assertion signing key and signs with a new
	// one, on behalf of a principal (nil: no assertion section); an
	// error wrapping ErrTooSoon is a rotation within the previous one's
	// overlap. The result is the API's answer.
	RotateKey func(by string) (any, error)
	// Discovery returns the document learned from traffic (JSON) and the
	// report against the declared documents (nil: discovery is off; an
	// error: off in the running config).
	Discovery func() (draft []byte, report any, err error)
	// Posture returns the running config's audit and its change at the
	// last reload (the admin API's /posture and the dashboard's panel).
	Posture func() any
	// Keys manages the API key store (nil: no api_keys section).
	Keys KeyAdmin
	// ClientAllowed is the admin listener's IP firewall on its direct
	// peer (nil: every address); a refused client gets 403
	// access.ip_denied on every endpoint, probes included.
	ClientAllowed func(netip.Addr) bool
}

// Handler returns the admin listener's handler.
//
//	GET /healthz  200 while the process serves (no token: for probes)
//	GET /readyz   200 when ready, 503 otherwise, with the checks (no token)
//	GET /metrics  Prometheus exposition (token)
//	/dashboard/   the live dashboard (login with the token; session cookie)
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ready, checks := o.Ready()
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]any{"ready": ready, "checks": checks})
	})
	if o.Now == nil {
		o.Now = time.Now
	}
	g := &gate{o: o, failures: newThrottle()}
	mux.Handle("GET /metrics", g.protect(OpMetrics, o.Metrics))
	if o.State != nil {
		g.sessions = newDashboard(o, g.failures)
		g.sessions.routes(mux)
		a, err := newAPI(o)
		if err != nil {
			panic("admin API document: " + err.Error()) // embedded: a build error
		}
		a.routes(mux, g)
	}
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "admin.not_found", "no such admin endpoint")
	})
	return headers(firewall(o.ClientAllowed, mux))
}

// gate authenticates and authorizes the requests of the metrics and the
// admin API.
type gate struct {
	o        Options
	failures *throttle  // failed attempts per client, shared with the sign-in
	sessions *dashboard // dashboard sessions (nil: no dashboard)
}

// principalKey carries the authenticated principal in a request's
// context.
type principalKey struct{}

// protect requires a principal allowed to perform op. Failed attempts
// are throttled per client, as sign-ins are, and reported.
func (g *gate) protect(op string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := g.o.Now()
		if g.failures.limited(r, now) {
			w.Header().Set("Retry-After", "60")
			problem(w, http.StatusTooManyRequests, "admin.login_limited", "too many failed attempts; try again in a minute")
			return
		}
		p, ok, viaSession := g.identify(r)
		if !ok {
			g.failures.fail(r, now)
			g.o.authFailed(r, "admin.unauthorized", "no valid admin token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="rampart-admin"`)
			problem(w, http.StatusUnauthorized, "admin.unauthorized", "a valid admin token is required")
			return
		}
		if !allowed(p.Role, op) {
			g.o.authFailed(r, "admin.forbidden", p.Name+" ("+p.Role.String()+") may not "+op)
			problem(w, http.StatusForbidden, "admin.forbidden", "your role may not do this")
			return
		}
		if viaSession && !safeMethod(r.Method) && !g.sessions.csrfOK(r) {
			problem(w, http.StatusForbidden, "admin.csrf", "missing or wrong CSRF token")
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// identify finds the request's principal: by bearer token when one is
// sent, else by the verified client certificate, else by a dashboard
// session (viaSession: its state-changing requests must then carry the
// session's CSRF token from this origin).
func (g *gate) identify(r *http.Request) (p Principal, ok, viaSession bool) {
	tok := bearer(r)
	if p, ok := authenticate(g.o.Principals, tok, r); ok || tok != "" || g.sessions == nil {
		return p, ok, false
	}
	s, ok := g.sessions.session(r)
	return s.principal, ok, ok
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// principalOf names the request's principal (authenticated already).
func principalOf(r *http.Request) string {
	p, _ := r.Context().Value(principalKey{}).(Principal)
	return p.Name
}

// authFailed reports a refused admin request.
func (o Options) authFailed(r *http.Request, code, detail string) {
	if o.OnAuthFailure != nil {
		o.OnAuthFailure(clientip.PeerAddr(r.RemoteAddr), code, detail)
	}
}

// RevokeRequest is a runtime revocation: a jti, or an issuer and
// subject, until a time.
type RevokeRequest struct {
	JTI, Issuer, Subject string
	Until                time.Time
}

// ErrTooSoon is wrapped by a refused key rotation (see Options.RotateKey).
var ErrTooSoon = errors.New("too soon")

// NotSaved marks the error of a change that is in force on this instance
// but was not saved or shared (the runtime state file or Redis failed);
// the API answers it 503 admin.not_saved. NotSaved(nil) is nil.
func NotSaved(err error) error {
	if err == nil {
		return nil
	}
	return notSavedError{err}
}

type notSavedError struct{ err error }

func (e notSavedError) Error() string { return e.err.Error() }
func (e notSavedError) Unwrap() error { return e.err }

// unsaved turns a NotSaved error into the API's refusal (nil otherwise).
func unsaved(err error) error {
	var ns notSavedError
	if errors.As(err, &ns) {
		return pipeline.Deny(http.StatusServiceUnavailable, "admin.not_saved", "in force on this instance but not saved: "+firstLine(ns.err))
	}
	return nil
}

// firewall refuses peers that allowed (nil: none) refuses.
func firewall(allowed func(netip.Addr) bool, h http.Handler) http.Handler {
	if allowed == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(clientip.PeerAddr(r.RemoteAddr)) {
			problem(w, http.StatusForbidden, "access.ip_denied", "client address not allowed")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// headers sets the headers of every admin response, a request id among
// them (as on the gateway's own answers: a random prefix and a counter).
func headers(h http.Handler) http.Handler {
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "admin-" + hex.EncodeToString(b[:]) + "-"
	var n atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Request-Id", prefix+strconv.FormatUint(n.Add(1), 16))
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func problem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "code": code,
		"detail": detail, "request_id": w.Header().Get("X-Request-Id")})
}

// Firewall compiles the admin listener's access section (nil: every
// address) and starts watching its list files; stop ends the watching.
// A list file that becomes unreadable keeps the lists in force (warn
// hears why).
func Firewall(a *config.Access, warn func(error)) (allowed func(netip.Addr) bool, stop func(), err error) {
	rules, err := ipfilter.Compile(a, warn)
	if err != nil {
		return nil, nil, err
	}
	rules.Start()
	return rules.Allowed, rules.Close, nil
}
