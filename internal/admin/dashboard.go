package admin

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/observe"
)

//go:embed assets
var assets embed.FS

// State is what the dashboard shows besides the traffic window.
type State struct {
	Live      observe.Snapshot `json:"live"`
	Bans      []Ban            `json:"bans"`
	Upstreams []Upstream       `json:"upstreams"`
	Routes    []RouteView      `json:"routes"`
	Config    ConfigState      `json:"config"`
	Dropped   uint64           `json:"events_dropped"`
}

// Ban is a sanctioned client.
type Ban struct {
	// IP is the client key: an address, an IPv6 prefix,
	// identity:SUBJECT@ISSUER or session:HASH.
	IP     string `json:"ip"`
	Kind   string `json:"kind"` // address, identity or session
	Until  string `json:"until"`
	Action string `json:"action"` // ban or tighten
}

// Upstream is one target's health.
type Upstream struct {
	Name    string `json:"name"`
	Target  string `json:"target"`
	Healthy bool   `json:"healthy"`
	Drained bool   `json:"drained,omitempty"`
}

// RouteView is a route of the plan in service, without secrets.
type RouteView struct {
	Listener string   `json:"listener"`
	ID       string   `json:"id"`
	Category string   `json:"category"`
	Stages   []string `json:"stages"`
}

// ConfigState is the plan in service.
type ConfigState struct {
	Version    int64  `json:"version"`
	Hash       string `json:"hash"`
	LastReload string `json:"last_reload"`
	Trigger    string `json:"trigger,omitempty"` // what caused the last load: start, SIGHUP, file change, api:<principal>
	LastError  string `json:"last_error,omitempty"`
}

// unavailable reports an operation the gateway runs without (no API key
// store, no abuse detection, no config file): the dashboard hides it.
func (d *dashboard) unavailable(op string) bool {
	switch op {
	case OpKeysRead, OpKeysManage:
		return d.o.Keys == nil
	case OpBansAdd:
		return d.o.Ban == nil
	case OpReload:
		return d.o.Reload == nil
	case OpRotateKey:
		return d.o.RotateKey == nil
	}
	return false
}

// sessionCookie carries the dashboard session id.
const sessionCookie = "rampart_admin_session"

const sessionTTL = 8 * time.Hour

type session struct {
	csrf      string
	expires   time.Time
	principal Principal
}

// dashboard serves the live dashboard behind a login with the admin token.
type dashboard struct {
	o        Options
	mu       sync.Mutex
	sessions map[[32]byte]session // by SHA-256 of the session id
	failures *throttle            // shared with the bearer-token endpoints
	page     *template.Template
}

func newDashboard(o Options, failures *throttle) *dashboard {
	page := template.Must(template.ParseFS(assets, "assets/dashboard.html"))
	return &dashboard{o: o, sessions: map[[32]byte]session{}, page: page, failures: failures}
}

func (d *dashboard) routes(mux *http.ServeMux) {
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /dashboard/assets/", http.StripPrefix("/dashboard/assets/", http.FileServerFS(static)))
	mux.HandleFunc("GET /dashboard/{$}", d.index)
	mux.HandleFunc("GET /dashboard", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dashboard/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /dashboard/login", d.login)
	mux.HandleFunc("POST /dashboard/logout", d.withSession(OpDashboardRead, true, d.logout))
	mux.HandleFunc("GET /dashboard/api/stream", d.withSession(OpDashboardRead, false, d.stream))
	mux.HandleFunc("GET /dashboard/api/state", d.withSession(OpDashboardRead, false, d.state))
}

// pageHeaders: no inline script or style may run, nothing may frame the
// page, and nothing leaves for another origin.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on form posts, which the origin check refuses.
	h.Set("Referrer-Policy", "same-origin")
}

func (d *dashboard) index(w http.ResponseWriter, r *http.Request) {
	pageHeaders(w)
	s, ok := d.session(r)
	if !ok {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		b, _ := assets.ReadFile("assets/login.html")
		_, _ = w.Write(b)
		return
	}
	var buf bytes.Buffer
	data := map[string]string{"CSRF": s.csrf, "Principal": s.principal.Name, "Role": s.principal.Role.String(),
		"Ops": strings.Join(slices.DeleteFunc(operations(s.principal.Role), d.unavailable), " ")}
	if err := d.page.Execute(&buf, data); err != nil {
		http.Error(w, "page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// Sign-in throttling: a client address (an IPv6 /64) with 5 failed
// logins in the last minute is refused until the oldest is a minute old,
// and all clients are once 50 failed in a minute (a guesser with many
// addresses). One client's failures do not lock out an operator signing
// in from another address.
const (
	clientLoginFailures = 5
	totalLoginFailures  = 50
	loginWindow         = time.Minute
	maxLoginClients     = 10000 // addresses tracked at once
)

// loginFailures are the recent failed logins, per client and in all.
type loginFailures struct {
	byClient map[netip.Prefix][]time.Time
	all      []time.Time
}

// throttle is the failed-authentication count of the admin listener,
// shared by the dashboard's sign-in and the bearer-token endpoints.
type throttle struct {
	mu sync.Mutex
	f  loginFailures
}

func newThrottle() *throttle {
	return &throttle{f: loginFailures{byClient: map[netip.Prefix][]time.Time{}}}
}

// limited reports whether r's client may not try now.
func (t *throttle) limited(r *http.Request, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.f.limited(clientOf(r), now)
}

// fail records a failed attempt of r's client.
func (t *throttle) fail(r *http.Request, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.f.fail(clientOf(r), now)
}

// clientOf is the address failures are counted against: the peer (the
// admin listener trusts no proxy), IPv6 grouped by /64.
func clientOf(r *http.Request) netip.Prefix {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	a := ap.Addr().Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

func recent(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= loginWindow {
		i++
	}
	return ts[i:]
}

// limited reports whether client may not try now; d.mu is held.
func (f *loginFailures) limited(client netip.Prefix, now time.Time) bool {
	f.all = recent(f.all, now)
	ts := recent(f.byClient[client], now)
	if len(ts) == 0 {
		delete(f.byClient, client)
	} else {
		f.byClient[client] = ts
	}
	return len(ts) >= clientLoginFailures || len(f.all) >= totalLoginFailures
}

// fail records a failed login; d.mu is held.
func (f *loginFailures) fail(client netip.Prefix, now time.Time) {
	f.all = append(f.all, now)
	if _, ok := f.byClient[client]; !ok && len(f.byClient) >= maxLoginClients {
		for c, ts := range f.byClient { // forget clients whose failures expired
			if len(recent(ts, now)) == 0 {
				delete(f.byClient, c)
			}
		}
		if len(f.byClient) >= maxLoginClients {
			return // still counted in all
		}
	}
	f.byClient[client] = append(f.byClient[client], now)
}

// login exchanges the admin token for a session cookie. It checks the
// request's origin (login CSRF) and slows guessing (loginFailures).
func (d *dashboard) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		problem(w, http.StatusForbidden, "admin.cross_origin", "cross-origin request refused")
		return
	}
	now := d.o.Now()
	if d.failures.limited(r, now) {
		w.Header().Set("Retry-After", "60")
		problem(w, http.StatusTooManyRequests, "admin.login_limited", "too many failed logins; try again in a minute")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	p, ok := authenticate(d.o.Principals, r.PostFormValue("token"), r)
	if !ok {
		d.failures.fail(r, now)
		d.o.authFailed(r, "admin.unauthorized", "wrong token at the dashboard sign-in")
		problem(w, http.StatusUnauthorized, "admin.unauthorized", "wrong admin token")
		return
	}
	id, csrf := randomHex(32), randomHex(32)
	d.mu.Lock()
	for k, s := range d.sessions { // expired sessions go first
		if now.After(s.expires) {
			delete(d.sessions, k)
		}
	}
	d.sessions[sha256.Sum256([]byte(id))] = session{csrf: csrf, expires: now.Add(sessionTTL), principal: p}
	d.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/dashboard/", http.StatusSeeOther)
}

func (d *dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		d.mu.Lock()
		delete(d.sessions, sha256.Sum256([]byte(c.Value)))
		d.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// session returns the request's valid session.
func (d *dashboard) session(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) != 64 {
		return session{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.sessions[sha256.Sum256([]byte(c.Value))]
	if !ok || d.o.Now().After(s.expires) {
		return session{}, false
	}
	return s, true
}

// withSession requires a session whose principal may perform op and,
// for state-changing requests, the session's CSRF token in X-CSRF-Token
// and a same-origin request.
func (d *dashboard) withSession(op string, mutating bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := d.session(r)
		if !ok {
			problem(w, http.StatusUnauthorized, "admin.unauthorized", "log in to the dashboard")
			return
		}
		if !allowed(s.principal.Role, op) {
			d.o.authFailed(r, "admin.forbidden", s.principal.Name+" ("+s.principal.Role.String()+") may not "+op)
			problem(w, http.StatusForbidden, "admin.forbidden", "your role may not do this")
			return
		}
		if mutating && !d.csrfOK(r) {
			problem(w, http.StatusForbidden, "admin.csrf", "missing or wrong CSRF token")
			return
		}
		h(w, r)
	}
}

// csrfOK reports whether a state-changing request of a session comes
// from this origin with the session's CSRF token in X-CSRF-Token.
func (d *dashboard) csrfOK(r *http.Request) bool {
	s, ok := d.session(r)
	got := r.Header.Get("X-CSRF-Token")
	return ok && sameOrigin(r) && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

// sameOrigin accepts requests whose Origin (when sent) is this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") != "cross-site"
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (d *dashboard) state(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.o.State())
}

// stream pushes the state once a second over Server-Sent Events until the
// client goes or the listener shuts down.
func (d *dashboard) stream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.SetWriteDeadline(time.Time{})
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		b, err := json.Marshal(d.o.State())
		if err != nil {
			return
		}
		if _, err := w.Write(append(append([]byte("event: state\ndata: "), b...), '\n', '\n')); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
