// Package waf inspects requests with Coraza and the OWASP Core Rule Set
// (CRS v4) before they are forwarded.
package waf

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/types"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Options configure one WAF instance.
type Options struct {
	// Paranoia is the CRS blocking paranoia level, 1 to 4.
	Paranoia int
	// AnomalyThreshold is the inbound anomaly score that blocks (CRS
	// default 5: one critical rule).
	AnomalyThreshold int
	// DetectionOnly logs matches but blocks nothing.
	DetectionOnly bool
	// ExcludeRules are rule ids removed (false positives on an API).
	ExcludeRules []int
	// ExcludeTags are rule tags removed.
	ExcludeTags []string
	// BodyLimit bounds the body bytes inspected.
	BodyLimit int64
	// MaxArgs bounds the arguments (query, form and JSON leaves) a request
	// may carry; more are refused before the CRS rules run, because every
	// argument costs every rule a regex evaluation. 0 means 255.
	MaxArgs int
	// Events receives waf.detected findings in detection-only mode
	// (blocks reach the stream as refusals, with their rule ids).
	Events pipeline.Events

	// testDirectives come right before the CRS rules (the regression
	// runner's test set-up).
	testDirectives string
	// stockRegex runs the CRS's @rx rules through Coraza's own operator,
	// without rampart's prefilter (the differential tests' reference).
	stockRegex bool
}

// WAF is a compiled Coraza instance with the CRS loaded. Compiling takes a
// moment; the gateway keeps instances across reloads while their options
// are unchanged.
type WAF struct {
	waf    coraza.WAF
	opts   Options
	events pipeline.Events
	// observe sees every finished transaction (tests only).
	observe func(types.Transaction)
}

// New compiles Coraza with the CRS and the options.
func New(o Options) (*WAF, error) {
	if o.Paranoia < 1 || o.Paranoia > 4 {
		return nil, fmt.Errorf("paranoia level %d: use 1 to 4", o.Paranoia)
	}
	engine := "On"
	if o.DetectionOnly {
		engine = "DetectionOnly"
	}
	var d strings.Builder
	// Not "SecRxPreFilter On": with Coraza's experimental literal
	// pre-checks the CRS regression suite misses 942220-2 (an SQLi rule
	// stops firing). The CRS's @rx rules run through rampart's own
	// prefiltered operator instead (rx.go), proven against Coraza's by
	// the differential tests.
	d.WriteString("Include @coraza.conf-recommended\n")
	d.WriteString("Include @crs-setup.conf.example\n")
	fmt.Fprintf(&d, "SecRuleEngine %s\n", engine)
	// Coraza's audit log records request bodies and headers (payloads,
	// credentials); the gateway logs its own payload-free events instead.
	d.WriteString("SecAuditEngine Off\n")
	d.WriteString("SecRequestBodyAccess On\n")
	fmt.Fprintf(&d, "SecRequestBodyLimit %d\n", o.BodyLimit)
	fmt.Fprintf(&d, "SecRequestBodyInMemoryLimit %d\n", o.BodyLimit)
	d.WriteString("SecRequestBodyLimitAction ProcessPartial\n")
	d.WriteString("SecResponseBodyAccess Off\n")
	maxArgs := o.MaxArgs
	if maxArgs <= 0 {
		maxArgs = 255
	}
	// Arguments beyond the limit (plus one, to see that it was passed) are
	// not parsed, so the cost stays bounded, and the request is refused
	// before the CRS runs, in the phase where the limit was passed (query
	// in phase 1, body in phase 2).
	fmt.Fprintf(&d, "SecArgumentsLimit %d\n", maxArgs+1)
	for phase, id := range []int{argsLimitRule, argsLimitRule + 1} {
		fmt.Fprintf(&d, `SecRule &ARGS "@gt %d" "id:%d,phase:%d,deny,status:403,t:none,log,msg:'Too many arguments'"`+"\n", maxArgs, id, phase+1)
	}
	fmt.Fprintf(&d, `SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=%d"`+"\n", o.Paranoia)
	fmt.Fprintf(&d, `SecAction "id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=4"`+"\n", o.AnomalyThreshold)
	// An API gateway serves REST methods; the gateway's router decides
	// which a route allows.
	d.WriteString(`SecAction "id:900200,phase:1,pass,t:none,nolog,setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PUT PATCH DELETE'"` + "\n")
	d.WriteString(o.testDirectives)
	// Request rules only: responses are not inspected (SecResponseBodyAccess
	// Off, no response phases run), so the RESPONSE-* files would only cost
	// compile time and memory.
	d.WriteString("Include @owasp_crs/REQUEST-*.conf\n")
	for _, id := range o.ExcludeRules {
		fmt.Fprintf(&d, "SecRuleRemoveById %d\n", id)
	}
	for _, tag := range o.ExcludeTags {
		fmt.Fprintf(&d, "SecRuleRemoveByTag %q\n", tag)
	}
	registerOperators()
	var root fs.FS = prefilteredCRS{coreruleset.FS}
	if o.stockRegex {
		root = coreruleset.FS
	}
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(root).WithDirectives(d.String()))
	if err != nil {
		return nil, fmt.Errorf("waf: %w", err)
	}
	events := o.Events
	if events == nil {
		events = pipeline.NoEvents{}
	}
	return &WAF{waf: w, opts: o, events: events}, nil
}

// Middleware returns the WAF stage. A blocked request gets 403
// waf.<category> (waf.sqli, waf.xss, waf.rce, waf.lfi, ...); the matched
// rule ids go to the security event stream, never to the client. In detection-only
// mode a request that would have been blocked passes and is logged as
// waf.detected.
func (w *WAF) Middleware() pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(rw http.ResponseWriter, r *http.Request) error {
			tx := w.waf.NewTransaction()
			// No ProcessLogging: the logging phase holds only the CRS's
			// correlation rules and the audit log, both off here (the
			// gateway logs its own events); skipping it saves ~10%.
			defer func() { _ = tx.Close() }()
			it, err := w.inspect(tx, r)
			if w.observe != nil {
				w.observe(tx)
			}
			if err != nil {
				return err
			}
			if it != nil {
				return w.block(r, tx, it)
			}
			if w.opts.DetectionOnly {
				if d, ok := tx.(interface{ DetectionOnlyInterruption() *types.Interruption }); ok && d.DetectionOnlyInterruption() != nil {
					category, ids := findings(tx)
					w.detected(r, category, ids)
				}
			}
			return next(rw, r)
		}
	}
}

// inspect runs the request phases (headers, then body) and returns the
// interruption, if any. The body is read once up to the inspection limit
// and handed on unchanged.
func (w *WAF) inspect(tx types.Transaction, r *http.Request) (*types.Interruption, error) {
	s := pipeline.ScopeOf(r.Context())
	client := ""
	if s != nil {
		client = s.ClientIPText
	}
	host, port, _ := net.SplitHostPort(r.Host)
	if host == "" {
		host = r.Host
	}
	p, _ := strconv.Atoi(port)
	tx.ProcessConnection(client, 0, host, p)
	uri := r.RequestURI // as sent, outside the gateway (tests)
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	if s != nil && s.Path != "" { // the normalised path the upstream gets
		uri = s.Path
		if r.URL.RawQuery != "" {
			uri += "?" + r.URL.RawQuery
		}
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	for k, vs := range r.Header {
		for _, v := range vs {
			tx.AddRequestHeader(k, v)
		}
	}
	// net/http moves Host out of the header map; an HTTP/1.1 request
	// always had one (net/http refuses it otherwise), even if empty.
	if r.Host != "" || r.ProtoAtLeast(1, 1) {
		tx.AddRequestHeader("Host", r.Host)
	}
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return it, nil
	}
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, w.opts.BodyLimit+1))
		if err != nil {
			return nil, pipeline.BodyReadError(err)
		}
		rest := r.Body
		if int64(len(body)) <= w.opts.BodyLimit {
			r.Body = io.NopCloser(bytes.NewReader(body))
		} else {
			r.Body = readCloser{io.MultiReader(bytes.NewReader(body), rest), rest}
		}
		if _, _, err := tx.WriteRequestBody(body); err != nil {
			return nil, err
		}
	}
	return tx.ProcessRequestBody()
}

type readCloser struct {
	io.Reader
	io.Closer
}

// argsLimitRule (and the next id) refuse requests over MaxArgs.
const argsLimitRule = 10001

func (w *WAF) block(r *http.Request, tx types.Transaction, it *types.Interruption) error {
	category, ids := findings(tx)
	if it.RuleID == argsLimitRule || it.RuleID == argsLimitRule+1 {
		category, ids = "limits", []string{strconv.Itoa(it.RuleID)}
	}
	d := pipeline.DenyErr(http.StatusForbidden, "waf."+category, "request blocked", fmt.Errorf("waf rules %s (action %s, rule %d)", strings.Join(ids, ","), it.Action, it.RuleID))
	d.Rules = ids
	return d
}

// findings returns the category and ids of the attack rules that matched
// (setup, flow-control and scoring rules are left out).
func findings(tx types.Transaction) (string, []string) {
	var ids []string
	category := "attack"
	best := 0
	for _, m := range tx.MatchedRules() {
		id := m.Rule().ID()
		if id < 910000 || id >= 950000 || id%1000 < 100 || m.Message() == "" {
			continue
		}
		ids = append(ids, strconv.Itoa(id))
		if c, weight := categoryOf(id); weight > best {
			category, best = c, weight
		}
	}
	return category, ids
}

// detected reports a match that detection-only mode let through: rule
// ids and where, never the payload.
func (w *WAF) detected(r *http.Request, category string, ids []string) {
	ev := pipeline.Event{Name: "waf.detected", Code: "waf." + category, Rules: ids, Method: r.Method, Path: r.URL.EscapedPath(), Host: r.Host}
	if s := pipeline.ScopeOf(r.Context()); s != nil {
		ev.Route, ev.RequestID, ev.ClientIP, ev.Host = s.RouteID, s.RequestID, s.ClientIPText, s.Host
		if s.Path != "" {
			ev.Path = s.Path
		}
	}
	w.events.Emit(ev)
}

// categories map CRS rule-id ranges (by thousand: 942xxx is SQLi) to
// stable categories; the weight prefers the attack classes over generic
// protocol findings when several matched.
var categories = []struct {
	from, to int // [from, to) in thousands of rule ids
	name     string
	weight   int
}{
	{942, 943, "sqli", 10}, {941, 942, "xss", 10}, {932, 933, "rce", 10},
	{930, 931, "lfi", 10}, {931, 932, "rfi", 10}, {933, 934, "php", 9},
	{944, 945, "java", 9}, {934, 935, "generic", 8}, {943, 944, "session_fixation", 8},
	{913, 914, "scanner", 5}, {920, 922, "protocol", 3},
}

// categoryOf returns a rule id's category and weight ("attack", 1 when no
// range holds it).
func categoryOf(id int) (string, int) {
	for _, c := range categories {
		if k := id / 1000; k >= c.from && k < c.to {
			return c.name, c.weight
		}
	}
	return "attack", 1
}
