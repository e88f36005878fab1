package gateway

import (
	"bufio"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/abuse"
	"github.com/rampart-gw/rampart/internal/clientip"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/observe"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/plan"
	"github.com/rampart-gw/rampart/internal/server"
)

// Decision codes of the gateway's own stages.
const (
	CodeFraming       = "request.framing"
	CodeBadPath       = "request.bad_path"
	CodeBadQuery      = "request.bad_query"
	CodeBadHost       = "request.bad_host"
	CodeMisdirected   = "request.misdirected"
	CodeBanned        = "abuse.banned"
	CodeThrottled     = "abuse.throttled"
	CodeAccountLocked = "abuse.account_locked"
)

// listenerHandler serves one listener through the current plan.
type listenerHandler struct {
	g    *Gateway
	name string
}

func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := h.g
	p := g.plan.Load()
	lp := p.Listener(h.name)
	ci := server.ConnInfoFrom(r.Context())
	if r.TLS == nil && (ci == nil || ci.TLS == nil) && p.ACMEChallenge(w, r) {
		return // a CA validating a name: answered before any policy applies
	}
	x := &exchange{}
	s := &x.scope
	s.Start, s.Listener = g.deps.Now(), h.name
	if ci != nil {
		s.TLS = ci.TLS
	}
	if r.TLS == nil && s.TLS != nil {
		r.TLS = s.TLS
	}
	rec := &x.rec
	*rec = recorder{ResponseWriter: w, lp: lp, plan: p, scope: s, upgrade: r.Header.Get("Upgrade") != "" || r.Method == http.MethodConnect}
	a := &x.admission
	*a = admission{g: g, plan: p, lp: lp, ci: ci, r: r, s: s, rec: rec}
	err := a.admit()
	r = a.r
	if err == nil {
		s.RouteID = a.rt.ID()
		rec.rt = a.rt
		err = h.serveRoute(rec, r, a.rt)
	}
	if err != nil {
		refuse(rec, r, pipeline.AsError(err))
	}
	h.finish(r, x)
}

// finish records a request that has been answered: its span, the access
// log, the metrics and dashboard, the refusal event and the detectors.
func (h *listenerHandler) finish(r *http.Request, x *exchange) {
	g, s, rec := h.g, &x.scope, &x.rec
	status, code := outcome(s, rec)
	describeUnrouted(s, r)
	if x.span != nil {
		observe.End(x.span, observe.SpanOutcome{Method: r.Method, Route: s.RouteID, Path: s.Path, ClientIP: s.ClientIPText,
			Upstream: s.Upstream, Status: status, Code: code, UpstreamTime: s.UpstreamTime})
	}
	var end time.Time // one clock reading for the log, the metrics, the dashboard and the detectors
	al := g.outputs.AccessLog()
	if al != nil || g.metrics != nil || g.guard != nil {
		end = g.deps.Now()
	}
	if al != nil {
		g.logAccess(al, r, s, rec, status, code, end)
	}
	if g.metrics != nil {
		g.metrics.Request(s.RouteID, r.Method, status, code, end.Sub(s.Start), s.UpstreamTime)
		category := ""
		if x.rt != nil {
			category = x.rt.Category()
		}
		g.live.Request(end, clientKeyText(s), category, status, code, end.Sub(s.Start))
	}
	if s.Decision != nil && s.Decision.Status != 499 && !s.Decision.Summarised {
		g.emitRefusal(r, s)
	}
	if g.guard != nil {
		// The detectors see what the client saw (a client that went away
		// saw nothing: its 499 is not an error of the client's making).
		if s.Decision != nil && s.Decision.Status == 499 {
			status = max(rec.status, http.StatusOK)
		}
		g.observeAbuse(x.rt, r.Method, s, status, code, rec.bytes, end)
	}
}

// observeAbuse feeds a finished request to the abuse detectors, under
// every key the client has: its address, its identity, its session.
func (g *Gateway) observeAbuse(rt *plan.Route, method string, s *pipeline.Scope, status int, code string, bytes int64, end time.Time) {
	c := abuse.Client{IP: s.ClientIP, Session: s.Session, Bytes: bytes}
	if rt != nil {
		c.Route, c.Category = rt.ID(), rt.Category()
		g.guard.ObserveEndpoint(c.Route, c.Category, status, bytes, end)
	}
	if s.Identity != nil {
		c.Issuer, c.Subject = s.Identity.Issuer, s.Identity.Subject
	}
	g.guard.Observe(c, status, code, rt != nil && rt.Sensitive(), end)
	g.guard.ObserveLogin(s.Account, s.ClientIP, status, end)
	if s.Identity != nil {
		g.guard.ObserveIdentity(c, end)
	}
	// Static content is many distinct objects by nature: not scraping.
	if method == http.MethodGet && status >= 200 && status < 300 && rt != nil && rt.Category() != "static" {
		g.guard.ObserveRead(c, s.Path, end)
	}
}

// describeUnrouted fills what a request refused before routing lacks, by
// one rule for the access log, the events, the metrics and the trace: the
// route is config.NoRoute; the path and host are the client's own
// (escaped; the normalised ones were never computed).
func describeUnrouted(s *pipeline.Scope, r *http.Request) {
	if s.RouteID == "" {
		s.RouteID = config.NoRoute
	}
	if s.Path == "" {
		s.Path = r.URL.EscapedPath()
	}
	if s.Host == "" {
		s.Host = r.Host
	}
}

// refuse renders a decision. One that closes its connection (bad
// framing, an oversize body) closes it as soon as the response is
// written: otherwise net/http reads what is left of the body first, to
// keep the connection, and a client that sent a chunked header without a
// body holds the socket until the read timeout.
func refuse(w http.ResponseWriter, r *http.Request, e *pipeline.Error) {
	pipeline.Render(w, r, e)
	if e.Close && r.ProtoMajor == 1 {
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		_ = rc.SetReadDeadline(time.Now())
	}
}

// clientKeyText is the client's key as the dashboard shows it: the
// address of an IPv4 client (already formatted), the prefix of an IPv6 one.
func clientKeyText(s *pipeline.Scope) string {
	if s.ClientKey.IsSingleIP() || !s.ClientKey.IsValid() {
		return s.ClientIPText
	}
	return clientip.KeyString(s.ClientKey)
}

// serveRoute runs a routed request: the route's chain, or, on a CORS
// route, the gateway's own answer to a preflight (never forwarded).
func (h *listenerHandler) serveRoute(rec *recorder, r *http.Request, rt *plan.Route) error {
	if !rt.HasCORS() {
		return rt.Handler()(rec, r)
	}
	if rt.IsPreflight(r) {
		return rt.Preflight(rec, r) // sets its own CORS headers
	}
	rec.cors, rec.origin = true, r.Header.Get("Origin")
	rt.CheckOrigin(r, rec.origin, h.g.deps.Events)
	return rt.Handler()(rec, r)
}

// originForm returns the path-and-query part of a request target; for an
// absolute-form target it strips "scheme://authority".
func originForm(target string) (string, bool) {
	if target != "" && target[0] == '/' {
		return target, true
	}
	i := strings.Index(target, "://")
	if i <= 0 {
		return "", false // "*", authority-form, garbage
	}
	rest := target[i+3:]
	j := strings.IndexAny(rest, "/?")
	switch {
	case j < 0:
		return "/", true
	case rest[j] == '?':
		return "/" + rest[j:], true
	}
	return rest[j:], true
}

type errString string

func (e errString) Error() string { return string(e) }

func cutQuery(s string) (path, query string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// validQuery refuses query strings that Go's ReverseProxy would silently
// rewrite (it drops pairs with ';' or bad escapes): the gateway and the
// service must see the same parameters.
func validQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
			i += 2
		case c == ';' || c == '#' || c < 0x20 || c == 0x7f:
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}

// requestID keeps a trusted proxy's X-Request-ID when it is well formed,
// and otherwise generates one: a per-process random prefix and a counter,
// unique without a system call per request.
func (g *Gateway) requestID(r *http.Request, trusted bool) string {
	if trusted {
		if v := r.Header.Get("X-Request-Id"); validRequestID(v) {
			return v
		}
	}
	n := g.reqCounter.Add(1)
	var buf [32]byte
	b := append(buf[:0], g.idPrefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, n, 16)
	return string(b)
}

func validRequestID(v string) bool {
	if v == "" || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newIDPrefix(rand func([]byte)) string {
	var b [6]byte
	rand(b[:])
	return hex.EncodeToString(b[:])
}

// outcome is the request's final status and decision code ("" when
// served).
func outcome(s *pipeline.Scope, rec *recorder) (int, string) {
	code := ""
	status := rec.status
	if s.Decision != nil {
		code = s.Decision.Code
		if s.Decision.Status == 499 {
			status = 499
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	return status, code
}

func (g *Gateway) logAccess(l *observe.AccessLog, r *http.Request, s *pipeline.Scope, rec *recorder, status int, code string, now time.Time) {
	ar := observe.AccessRecord{
		Time: now, RequestID: s.RequestID, Listener: s.Listener, Method: r.Method, Host: s.Host, Path: s.Path,
		RawQuery: r.URL.RawQuery, Proto: r.Proto, Route: s.RouteID, Status: status, Duration: now.Sub(s.Start),
		Bytes: rec.bytes, ClientIP: s.ClientIPText, Upstream: s.Upstream, Code: code, Attrs: s.Attrs,
	}
	if id := s.Identity; id != nil {
		ar.Subject, ar.Auth = id.Subject, id.Method
	}
	if s.Decision != nil && s.Decision.Err != nil {
		// The internal cause is for operators only; clients never see it.
		ar.Error = s.Decision.Err.Error()
	}
	l.Log(&ar)
}

// recorder is the response writer of every request: it records status and
// size for the access log and applies response hygiene in one place, for
// proxied and gateway-generated responses alike.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	lp      *plan.Listener
	plan    *plan.Plan  // the gateway's response_headers before routing
	rt      *plan.Route // the route's, once routed
	scope   *pipeline.Scope
	cors    bool   // the route's CORS headers apply
	origin  string // the request's Origin, on CORS routes
	upgrade bool
}

// hopByHop are removed from 1xx responses (Go's ReverseProxy forwards
// them unfiltered; golang/go#81319).
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func (w *recorder) WriteHeader(code int) {
	h := w.ResponseWriter.Header()
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		for _, k := range hopByHop {
			delete(h, k)
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.status != 0 {
		return
	}
	w.status = code
	delete(h, "Server")
	delete(h, "X-Powered-By")
	if v := w.lp.HSTS(); v != nil { // shared, read-only, per listener
		h["Strict-Transport-Security"] = v
	}
	// Secure defaults, then the operator's response_headers, on every
	// response: the service's and the gateway's own.
	if w.rt != nil {
		w.rt.Decorate(h, w.scope.Identity != nil, w.cors, w.origin)
	} else {
		w.plan.Decorate(h, w.scope.Identity != nil)
	}
	if w.upgrade && code != http.StatusSwitchingProtocols {
		// The framing checker stopped reading at the upgrade request;
		// close so that no later request on this connection goes
		// unchecked.
		h["Connection"] = []string{"close"}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher (streaming responses).
func (w *recorder) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker (WebSocket).
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ http.Flusher = (*recorder)(nil)

// emitRefusal puts a refused request on the security event stream: who,
// where, which decision and why, and a summary of the request without
// query values, credentials or body.
func (g *Gateway) emitRefusal(r *http.Request, s *pipeline.Scope) {
	d := s.Decision
	ev := pipeline.Event{
		Time: g.deps.Now(), Name: "refusal", Code: d.Code, Status: d.Status,
		RequestID: s.RequestID, Route: s.RouteID, ClientIP: s.ClientIPText, Rules: d.Rules,
		Method: r.Method, Host: s.Host, Path: s.Path, UserAgent: r.Header.Get("User-Agent"),
	}
	if d.Err != nil {
		ev.Reason = d.Err.Error()
	}
	if id := s.Identity; id != nil {
		ev.Subject, ev.Auth = id.Subject, id.Method
	}
	if q := r.URL.RawQuery; q != "" {
		ev.QueryKeys = queryKeys(q)
	}
	g.deps.Events.Emit(ev)
}

// queryKeys lists the distinct parameter names of a raw query.
func queryKeys(raw string) []string {
	var keys []string
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		name, _, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if name != "" && !slices.Contains(keys, name) {
			keys = append(keys, name)
		}
	}
	return keys
}
