package gateway

import (
	"net/http"

	"go.opentelemetry.io/otel/trace"

	"github.com/rampart-gw/rampart/internal/abuse"
	"github.com/rampart-gw/rampart/internal/clientip"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/plan"
	"github.com/rampart-gw/rampart/internal/router"
	"github.com/rampart-gw/rampart/internal/server"
)

// admissionStages is the fixed order of the stages every request passes
// before its route's own chain: the one source of that order. The request
// handler walks this table and the golden plan test prints it, so the
// order that runs and the order that is reviewed cannot differ.
//
// Security: the stages before framing never refuse, so that the framing
// verdict (ConnInfo.Begin) is taken for every request of a connection, in
// order; client-controlled decision fields are removed before any later
// stage (or the tracer) can read them; the IP firewall and bans apply
// before any parsing of the request beyond its head; the refusal of a reserved decision field
// comes after routing, so that the answer to an unknown path never says
// which fields are reserved.
var admissionStages = [...]struct {
	name string
	run  func(*admission) error
}{
	{"client_ip", (*admission).clientIP},
	{"request_id", (*admission).requestID},
	{"strip_decision_fields", (*admission).stripDecisionFields},
	{"trace", (*admission).startTrace},
	{"framing", (*admission).framing},
	{"access", (*admission).access},
	{"ban", (*admission).ban},
	{"tighten", (*admission).tighten},
	{"host", (*admission).host},
	{"normalise", (*admission).normalise},
	{"route", (*admission).route},
	{"decision_fields", (*admission).refuseDecisionField},
}

// Stages lists every stage a request on rt passes, in order: the
// admission stages (the table the handler walks), then the route's chain
// (the table the plan built it from). The golden plan test prints it.
func Stages(rt *plan.Route) []string {
	out := make([]string, 0, len(admissionStages)+len(rt.Stages()))
	for _, st := range admissionStages {
		out = append(out, st.name)
	}
	return append(out, rt.Stages()...)
}

// exchange is one request's state in the handler, allocated once: the
// response recorder, the scope, and what the admission stages find.
type exchange struct {
	rec   recorder
	scope pipeline.Scope
	admission
}

// admission is what the admission stages read and produce.
type admission struct {
	g    *Gateway
	plan *plan.Plan
	lp   *plan.Listener
	ci   *server.ConnInfo
	r    *http.Request
	s    *pipeline.Scope
	rec  *recorder

	span     trace.Span     // nil unless this request is traced
	verdict  server.Request // the framing checker's view of the request head
	reserved string         // a decision field the request set
	refuse   bool           // the decision fields section refuses it
	hostName string         // canonical Host
	rt       *plan.Route    // the route, once found
}

// admit runs the admission stages in order; the first refusal ends them.
func (a *admission) admit() error {
	for _, st := range admissionStages {
		if err := st.run(a); err != nil {
			return err
		}
	}
	return nil
}

func (a *admission) clientIP() error {
	s, r := a.s, a.r
	s.PeerIP = clientip.PeerAddr(r.RemoteAddr)
	xff := r.Header["X-Forwarded-For"]
	if xff == nil {
		if fwd := r.Header["Forwarded"]; fwd != nil {
			xff = clientip.ForwardedFor(fwd) // RFC 7239, from trusted proxies only
		}
	}
	s.ClientIP, s.TrustedPeer = a.lp.Resolver().Resolve(s.PeerIP, xff)
	if s.ClientIP.IsValid() {
		s.ClientIPText = s.ClientIP.String()
		s.ClientKey = clientip.Key(s.ClientIP, a.lp.IPv6Prefix())
	}
	s.Session = a.plan.Session(r) // "" unless abuse.session_cookie names one
	return nil
}

func (a *admission) requestID() error {
	a.s.RequestID = a.g.requestID(a.r, a.s.TrustedPeer)
	a.rec.Header().Set("X-Request-Id", a.s.RequestID)
	return nil
}

// stripDecisionFields removes client-controlled decision fields before
// any stage can read them (and before the gateway adds headers of its
// own); a refusing config refuses them after routing.
func (a *admission) stripDecisionFields() error {
	field, ok := a.plan.StripDecisionFields(a.r)
	a.reserved, a.refuse = field, !ok
	return nil
}

func (a *admission) startTrace() error {
	// The upstream joins the gateway's trace.
	ctx, span := a.g.outputs.StartSpan(pipeline.WithScope(a.r.Context(), a.s), a.r.Header, a.s.TrustedPeer)
	a.r, a.span = a.r.WithContext(ctx), span
	return nil
}

// framing takes the framing checker's verdict on this request's head.
// Security: it runs for every request, so that the verdicts stay aligned
// with the requests of the connection.
func (a *admission) framing() error {
	a.verdict = a.ci.Begin()
	if a.verdict.Problem != "" {
		e := pipeline.DenyErr(http.StatusBadRequest, CodeFraming, "ambiguous request framing", errString(a.verdict.Problem))
		e.Close = true
		return e
	}
	return nil
}

// access is the listener's IP firewall, on the resolved client address.
func (a *admission) access() error { return a.lp.CheckAccess(a.s.ClientIP) }

func (a *admission) ban() error {
	guard := a.g.guard
	if guard == nil {
		return nil
	}
	if until, banned := guard.Banned(a.s.ClientIP, a.s.Session, a.s.Start); banned {
		return abuse.BannedErr(until, a.s.Start)
	}
	return nil
}

// tighten holds a client the abuse guard tightened to its limit.
func (a *admission) tighten() error {
	guard, s := a.g.guard, a.s
	if guard == nil || a.plan.Tighten().Rate <= 0 || !guard.Tightened(s.ClientIP, s.Start) {
		return nil
	}
	return abuse.Hold(a.r.Context(), a.plan.Throttle(a.g.state.Load().Limits), abuse.AddrKey(s.ClientKey), s.Start)
}

// host canonicalises Host and checks that every spelling of the
// authority agrees.
func (a *admission) host() error {
	r, v := a.r, a.verdict
	host, err := router.CanonicalHost(r.Host)
	if err != nil {
		return pipeline.DenyErr(http.StatusBadRequest, CodeBadHost, "invalid Host", err)
	}
	if v.Absolute && v.AbsoluteHost != "" {
		// Absolute-form target: its authority must name the same host as
		// the Host header, or one of them is lying.
		if hh, err := router.CanonicalHost(v.AbsoluteHost); err != nil || hh != host {
			return pipeline.Deny(http.StatusMisdirectedRequest, CodeMisdirected, "request target authority does not match Host")
		}
	}
	if r.ProtoMajor == 2 {
		if hv, ok := r.Header["Host"]; ok {
			// RFC 9113 §8.3.1: :authority and Host must agree.
			if len(hv) != 1 {
				return pipeline.Deny(http.StatusBadRequest, CodeBadHost, "conflicting Host headers")
			}
			if hh, err := router.CanonicalHost(hv[0]); err != nil || hh != host {
				return pipeline.Deny(http.StatusBadRequest, CodeBadHost, ":authority and Host differ")
			}
			delete(r.Header, "Host")
		}
	}
	a.hostName, a.s.Host = host, host
	return nil
}

// normalise turns the request target into the one canonical path the
// router matches and the upstream receives, and checks the query.
func (a *admission) normalise() error {
	raw, ok := originForm(a.r.RequestURI)
	if !ok {
		return pipeline.Deny(http.StatusBadRequest, CodeBadPath, "invalid request target")
	}
	pathPart, query, _ := cutQuery(raw)
	path, err := router.Normalise(pathPart)
	if err != nil {
		return pipeline.DenyErr(http.StatusBadRequest, CodeBadPath, "invalid request path", err)
	}
	if !validQuery(query) {
		return pipeline.Deny(http.StatusBadRequest, CodeBadQuery, "invalid query string")
	}
	a.s.Path = path
	return nil
}

func (a *admission) route() error {
	path := a.s.Path
	if rt := a.lp.Builtin(path); rt != nil {
		a.rt = rt
		return nil
	}
	m := a.lp.Match(a.hostName, a.r, path)
	switch m.Result {
	case router.Found:
		a.rt = m.Value
		a.s.Params = m.Params
		return nil
	case router.MethodNotAllowed:
		e := pipeline.Deny(http.StatusMethodNotAllowed, router.CodeMethodNotAllowed, "method not allowed")
		e.Header = http.Header{"Allow": {joinComma(m.Allow)}}
		return e
	case router.UnknownHost:
		return pipeline.Deny(http.StatusNotFound, router.CodeUnknownHost, "no route for this host")
	}
	return pipeline.Deny(http.StatusNotFound, router.CodeNotFound, "no route matches")
}

func (a *admission) refuseDecisionField() error {
	if a.refuse {
		return pipeline.Deny(http.StatusBadRequest, "validate.decision_field", "request sets a field reserved for the gateway: "+a.reserved)
	}
	return nil
}
