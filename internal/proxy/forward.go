package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rampart-gw/rampart/internal/assert"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/router"
)

// Options are gateway-wide settings of the forward stage.
type Options struct {
	// StripIdentityHeaders are removed from every client request (names or
	// "prefix*" patterns).
	StripIdentityHeaders []string
	// Signer, when set, attaches a signed identity assertion in
	// AssertionHeader to every forwarded request.
	Signer *assert.Signer
	// AssertionHeader carries the assertion (a client value is always
	// removed).
	AssertionHeader string
	// Now is the clock of assertions.
	Now func() time.Time
}

// NewHandler returns the final stage of a route: it forwards the request to
// the route's upstream pool through a ReverseProxy in Rewrite mode (never
// Director), applying header hygiene, timeouts and retries.
func NewHandler(route config.Route, pool *Pool, deps pipeline.Deps, opts Options) pipeline.Handler {
	connect := pool.baseTimeout.Connect.D()
	if route.Timeouts.Connect > 0 {
		connect = route.Timeouts.Connect.D()
	}
	response := pool.baseTimeout.Response.D()
	if route.Timeouts.Response > 0 {
		response = route.Timeouts.Response.D()
	}
	rt := &routeTransport{
		pool:     pool,
		base:     pool.transport(connect, response),
		attempts: route.Retries.Attempts,
	}
	for _, on := range route.Retries.On {
		switch on {
		case "connect_failure":
			rt.onConnect = true
		case "502":
			rt.onStatus[0] = true
		case "503":
			rt.onStatus[1] = true
		case "504":
			rt.onStatus[2] = true
		}
	}
	rp := &httputil.ReverseProxy{
		Rewrite:        rewriter(route, pool, compileStrip(opts.StripIdentityHeaders), opts),
		Transport:      rt,
		BufferPool:     pool.buffers,
		ModifyResponse: modifyResponse,
		ErrorHandler:   errorHandler(deps.Log),
		ErrorLog:       log.New(slogWriter{deps.Log}, "", 0),
	}
	if route.Stream {
		rp.FlushInterval = -1
	}
	stream := route.Stream
	return func(w http.ResponseWriter, r *http.Request) error {
		stripUpgrade(r.Header)
		if stream || IsWebSocket(r) {
			// Long-lived exchanges are exempt from the listener's write
			// timeout (idle and read limits still apply until upgrade).
			_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		}
		rp.ServeHTTP(w, r)
		return nil
	}
}

// rewriter builds the outbound request. ReverseProxy has already removed
// hop-by-hop headers (and any header a client named in Connection) and the
// client's Forwarded/X-Forwarded-* before Rewrite runs, so every header set
// here is the gateway's own and cannot be removed by the client.
func rewriter(route config.Route, pool *Pool, strip stripper, opts Options) func(*httputil.ProxyRequest) {
	preserveHost, forwardAuth := route.PreserveHost, route.ForwardAuthorization
	assertHeader := http.CanonicalHeaderKey(opts.AssertionHeader)
	if assertHeader == "" {
		assertHeader = "X-Rampart-Assertion"
	}
	signer, now := opts.Signer, opts.Now
	if now == nil {
		now = time.Now
	}
	credHeader, credValue := pool.credHeader, pool.credValue
	hosts := router.CompileHosts(route.Hosts)
	var cred []string
	if credHeader != "" {
		cred = []string{credValue.Reveal()}
	}
	return func(pr *httputil.ProxyRequest) {
		in, out := pr.In, pr.Out
		s := pipeline.ScopeOf(in.Context())
		// The upstream receives exactly the path the router matched.
		out.URL.Scheme = "http"
		out.URL.Host = pool.Name
		out.URL.RawPath = s.Path
		out.URL.Path = router.Unescape(s.Path)
		if out.URL.Path == s.Path {
			out.URL.RawPath = ""
		}
		out.URL.RawQuery = in.URL.RawQuery
		if preserveHost {
			out.Host = in.Host
		} else {
			out.Host = ""
		}
		stripSpoofable(out.Header)
		strip.apply(out.Header)
		if !forwardAuth {
			// NIST SP 800-204 MS-SS-10: the gateway consumed the
			// credential; the service trusts the gateway's assertion.
			delete(out.Header, "Authorization")
		}
		h := out.Header
		// Only this gateway's assertion reaches the service.
		delete(h, assertHeader)
		delete(h, "X-Rampart-Assertion")
		if id := s.Identity; id != nil {
			setIdentityHeaders(h, id)
		}
		setForwarding(h, in, s, hosts)
		if signer != nil {
			if a, err := signer.Sign(pool.Name, in.Method, s, now()); err == nil {
				h[assertHeader] = []string{a}
			}
		}
		h["X-Request-Id"] = []string{s.RequestID}
		if cred != nil {
			h[credHeader] = cred
		}
		if b, ok := pipeline.BufferedBody(out); ok {
			// A body a stage read whole goes out as what it is, bytes
			// in memory: the transport then writes it with the headers
			// (one write, one packet) instead of flushing the headers
			// first as for a body that may block.
			out.Body = io.NopCloser(bytes.NewReader(b))
		}
	}
}

// Constant header values, shared read-only by every request.
var httpProto, httpsProto = []string{"http"}, []string{"https"}

// setForwarding sets the gateway's own forwarding headers: the client
// (extending a trusted proxy's chain), the scheme (a trusted proxy's when
// well formed) and, for configured hosts only, the forwarded host.
func setForwarding(h http.Header, in *http.Request, s *pipeline.Scope, hosts router.Hosts) {
	client := []string{s.ClientIPText}
	h["X-Forwarded-For"] = client
	if s.TrustedPeer {
		// A trusted proxy's chain is kept and extended.
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			h["X-Forwarded-For"] = []string{joinComma(prior) + ", " + s.PeerIP.String()}
		}
	}
	h["X-Real-Ip"] = client
	h["X-Forwarded-Proto"] = httpProto
	if s.TLS != nil {
		h["X-Forwarded-Proto"] = httpsProto
	}
	if s.TrustedPeer {
		// A trusted proxy in front (a TLS-terminating load balancer)
		// knows the original scheme; keep it when well formed.
		switch in.Header.Get("X-Forwarded-Proto") {
		case "https":
			h["X-Forwarded-Proto"] = httpsProto
		case "http":
			h["X-Forwarded-Proto"] = httpProto
		}
	}
	if fh := forwardedHost(in, s, hosts); fh != "" {
		h["X-Forwarded-Host"] = []string{fh}
	}
}

// forwardedHost returns the X-Forwarded-Host to send ("" for none) and
// records its canonical form in the scope for the assertion's binding.
//
// Security: X-Forwarded-Host tells a service which name it was reached by
// (for links in password-reset mails, redirects, cache keys). It is sent
// only when that name is one of the route's configured hosts: a client's
// Host on a route without hosts would otherwise choose the links a
// service writes. A trusted proxy's X-Forwarded-Host (the name its client
// used) obeys the same rule.
func forwardedHost(in *http.Request, s *pipeline.Scope, hosts router.Hosts) string {
	fh := in.Host
	if s.TrustedPeer {
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			fh = v
		}
	}
	if !hosts.Match(fh) {
		s.ForwardedHost = ""
		return ""
	}
	s.ForwardedHost, _ = router.CanonicalHost(fh)
	return fh
}

func joinComma(vs []string) string {
	if len(vs) == 1 {
		return vs[0]
	}
	n := 0
	for _, v := range vs {
		n += len(v) + 2
	}
	b := make([]byte, 0, n)
	for i, v := range vs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, v...)
	}
	return string(b)
}

// modifyResponse removes headers that fingerprint the service.
func modifyResponse(resp *http.Response) error {
	h := resp.Header
	delete(h, "Server")
	delete(h, "X-Powered-By")
	delete(h, "X-Aspnet-Version")
	delete(h, "X-Aspnetmvc-Version")
	return nil
}

// Upstream decision codes.
const (
	CodeUnreachable = "upstream.unreachable"
	CodeTimeout     = "upstream.timeout"
	CodeUnavailable = "upstream.unavailable"
	CodeCircuitOpen = "upstream.circuit_open"
	CodeBadResponse = "upstream.bad_response"
	CodeClientGone  = "client.closed"
	CodeOverloaded  = "upstream.overloaded"
	CodeIdentity    = "upstream.identity"
)

// ClassifyError maps a failed upstream exchange to a decision. A failure
// to read the client's body is the client's fault (400/413), never a 502.
func ClassifyError(r *http.Request, err error) *pipeline.Error {
	s := pipeline.ScopeOf(r.Context())
	if s != nil && s.BodyError != nil {
		return pipeline.BodyReadError(s.BodyError)
	}
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		if errors.Is(context.Cause(r.Context()), pipeline.ErrShutdown) {
			// Ended by the gateway's drain deadline, not by the client.
			e := pipeline.DenyErr(http.StatusServiceUnavailable, pipeline.CodeShutdown, "the gateway is shutting down", err)
			e.Close = true
			e.Header = http.Header{"Retry-After": {"1"}}
			return e
		}
		return pipeline.DenyErr(499, CodeClientGone, "client closed the request", err)
	}
	switch {
	case errors.Is(err, ErrInvalidHeader):
		// A stage set a header HTTP/1 cannot carry: the gateway's fault
		// (stages refuse client input that would produce one).
		return pipeline.DenyErr(http.StatusInternalServerError, "gateway.internal", "internal error", err)
	case errors.Is(err, ErrNoHealthyTarget):
		return pipeline.DenyErr(http.StatusServiceUnavailable, CodeUnavailable, "upstream unavailable", err)
	case errors.Is(err, ErrCircuitOpen):
		return pipeline.DenyErr(http.StatusServiceUnavailable, CodeCircuitOpen, "upstream unavailable", err)
	case errors.Is(err, ErrOverloaded):
		return pipeline.DenyErr(http.StatusServiceUnavailable, CodeOverloaded, "upstream overloaded", err)
	case errors.Is(err, ErrIdentity):
		return pipeline.DenyErr(http.StatusBadGateway, CodeIdentity, "upstream identity mismatch", err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return pipeline.DenyErr(http.StatusGatewayTimeout, CodeTimeout, "upstream timed out", err)
	}
	if isConnectFailure(err) {
		return pipeline.DenyErr(http.StatusBadGateway, CodeUnreachable, "upstream unreachable", err)
	}
	return pipeline.DenyErr(http.StatusBadGateway, CodeBadResponse, "bad response from upstream", err)
}

func errorHandler(logger *slog.Logger) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		e := ClassifyError(r, err)
		if e.Status == 499 {
			if s := pipeline.ScopeOf(r.Context()); s != nil {
				s.Decision = e
			}
			return
		}
		pipeline.Render(w, r, e)
	}
}

// isConnectFailure reports errors where the request never reached the
// target (so a retry cannot duplicate it).
func isConnectFailure(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, ErrNoHealthyTarget)
}

// routeTransport picks a target per attempt and retries, for idempotent
// requests without a body, before any response reached the client.
type routeTransport struct {
	pool      *Pool
	base      transport
	attempts  int
	onConnect bool
	onStatus  [3]bool // 502, 503, 504
}

func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

func (t *routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := t.pool
	if p.maxFlight > 0 {
		if p.inflight.Add(1) > p.maxFlight {
			p.inflight.Add(-1)
			return nil, ErrOverloaded
		}
		resp, err := t.roundTrip(req)
		if err != nil || resp.Body == nil || resp.Body == http.NoBody {
			p.inflight.Add(-1)
			return resp, err
		}
		resp.Body = &countedBody{ReadCloser: resp.Body, n: &p.inflight}
		return resp, nil
	}
	return t.roundTrip(req)
}

// countedBody counts a request in flight (on its upstream, for
// max_in_flight, or on its target, for least_requests balancing) until
// the response body is closed.
type countedBody struct {
	io.ReadCloser
	n    *atomic.Int64
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() { b.n.Add(-1) })
	return b.ReadCloser.Close()
}

// Read and Write keep a 101's body usable as the upgraded connection.
func (b *countedBody) Write(p []byte) (int, error) {
	if w, ok := b.ReadCloser.(io.Writer); ok {
		return w.Write(p)
	}
	return 0, errors.New("body is not writable")
}

func (t *routeTransport) roundTrip(req *http.Request) (*http.Response, error) {
	s := pipeline.ScopeOf(req.Context())
	if b := t.pool.breaker; b != nil && !b.allow() {
		return nil, ErrCircuitOpen
	}
	if err := checkHeaders(req); err != nil {
		return nil, err // the one rule of both upstream paths, before a byte is written
	}
	retryable := t.attempts > 1 && idempotent(req.Method) && (req.Body == nil || req.Body == http.NoBody) && req.ContentLength == 0
	var tried []*Target
	for attempt := 1; ; attempt++ {
		target, err := t.pool.pick(req, s, tried)
		if err != nil {
			if attempt > 1 {
				// Everything left was tried; report the last failure.
				return nil, ErrNoHealthyTarget
			}
			return nil, err
		}
		resp, err := t.send(req, s, target)
		if err != nil && (req.Context().Err() != nil || s != nil && s.BodyError != nil) {
			// The client went away (or the gateway is shutting down), or
			// its body could not be read (over the limit, bad chunking):
			// not the target's fault, so neither ejection nor the breaker
			// hears of it. Security: otherwise a client sending oversize
			// bodies could eject every healthy target.
			return nil, err
		}
		failed := err != nil || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout
		t.pool.observe(target, failed)
		if !failed || !retryable || attempt >= t.attempts || req.Context().Err() != nil || !t.shouldRetry(resp, err) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		tried = append(tried, target)
		if len(tried) >= len(t.pool.targets) {
			// Every target failed once; retry the least recent rather
			// than give up when there is a single target.
			tried = tried[:0]
		}
	}
}

// send makes one attempt on target, counting it in flight on the target
// until the response body is closed, and the upstream time in the scope.
func (t *routeTransport) send(req *http.Request, s *pipeline.Scope, target *Target) (*http.Response, error) {
	req.URL.Scheme = target.scheme
	req.URL.Host = target.Host
	if s != nil {
		s.Upstream = target.Host
	}
	target.inflight.Add(1)
	sent := time.Now()
	resp, err := t.base.RoundTrip(req)
	if s != nil {
		s.UpstreamTime += time.Since(sent)
	}
	// A 101's body is the upgraded connection (an io.ReadWriteCloser
	// that ReverseProxy needs unwrapped).
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols && resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = &countedBody{ReadCloser: resp.Body, n: &target.inflight}
	} else {
		target.inflight.Add(-1)
	}
	return resp, err
}

func (t *routeTransport) shouldRetry(resp *http.Response, err error) bool {
	if err != nil {
		return t.onConnect && isConnectFailure(err)
	}
	switch resp.StatusCode {
	case http.StatusBadGateway:
		return t.onStatus[0]
	case http.StatusServiceUnavailable:
		return t.onStatus[1]
	case http.StatusGatewayTimeout:
		return t.onStatus[2]
	}
	return false
}

// bufferPool recycles the 32 KiB copy buffers of ReverseProxy.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn("reverse proxy", "msg", string(p))
	return len(p), nil
}

// stripper removes client-supplied identity headers.
type stripper struct {
	exact    map[string]bool
	prefixes []string
}

func compileStrip(patterns []string) stripper {
	st := stripper{exact: map[string]bool{}}
	for _, p := range patterns {
		p = normHeader(p)
		if pre, ok := strings.CutSuffix(p, "*"); ok {
			st.prefixes = append(st.prefixes, pre)
		} else {
			st.exact[p] = true
		}
	}
	return st
}

func normHeader(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

func (st stripper) apply(h http.Header) {
	for k := range h {
		n := normHeader(k)
		if st.exact[n] {
			delete(h, k)
			continue
		}
		for _, p := range st.prefixes {
			if strings.HasPrefix(n, p) {
				delete(h, k)
				break
			}
		}
	}
}

// setIdentityHeaders adds the gateway's verified identity. They are set
// after every client header of these names was stripped, so a service that
// reads them reads the gateway's values (the signed assertion is the proof
// a service should verify).
func setIdentityHeaders(h http.Header, id *pipeline.Identity) {
	h["X-Auth-Subject"] = []string{id.Subject}
	h["X-Auth-Method"] = []string{id.Method}
	if id.Issuer != "" {
		h["X-Auth-Issuer"] = []string{id.Issuer}
	}
	if len(id.Scopes) > 0 {
		h["X-Auth-Scopes"] = []string{strings.Join(id.Scopes, " ")}
	}
	if len(id.Roles) > 0 {
		h["X-Auth-Roles"] = []string{strings.Join(id.Roles, ",")}
	}
}
