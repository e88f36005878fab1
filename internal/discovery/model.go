// Package discovery learns the API a gateway actually serves from the
// requests it forwards: path templates (ids, UUIDs, hashes, dates and
// high-cardinality segments as parameters), query parameters, request and
// response JSON schemas (types, formats, required by frequency, enums for
// few values), status codes, content types and the authentication used.
// It exports a draft OpenAPI 3.1 document and reports, against the
// documents attached to routes, shadow operations (seen, undocumented),
// zombie operations (documented, unseen), drift, and sensitive data in
// responses. It keeps shapes, counts and classifications, never the
// values; memory is bounded per operation, per route and in total; the
// learning runs off the request path, behind a bounded queue.
package discovery

import (
	"mime"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-gw/rampart/internal/sensitive"
)

// Sample is one forwarded request and its answer as the stage captured
// it. Its bodies are read once by the learner and dropped.
type Sample struct {
	Route, Method, Path string
	Query               url.Values
	ReqType             string
	ReqBody             []byte // JSON only, up to the capture limit
	Status              int
	RespType            string
	RespBody            []byte
	Auth                string // how the caller authenticated ("" when anonymous)
	Time                time.Time
}

// Settings bound the model.
type Settings struct {
	// MaxOperations bounds the operations learned, all routes together.
	MaxOperations int
	// Window is how long a documented operation may go unseen before it
	// is reported as a zombie.
	Window time.Duration
}

// Finding is a sensitive value class found in a response, reported once
// per route, operation, status, place and class.
type Finding struct {
	Route, Method, Path string
	Status              int
	Pointer             string
	Class               sensitive.Class
}

// Learner holds the model. Its methods are safe for concurrent use.
type Learner struct {
	mu       sync.Mutex
	routes   map[string]*routeModel
	ops      int
	reported map[string]bool // findings already reported
	settings atomic.Pointer[Settings]
	started  time.Time

	queue   chan Sample
	dropped atomic.Int64 // samples dropped because the queue was full
	bounded atomic.Int64 // samples dropped for the memory bound
	learned atomic.Int64
	found   func(Finding)
	stop    chan struct{}
	done    chan struct{}
}

type routeModel struct {
	ops       map[string]*opModel // by METHOD + " " + key
	collapsed map[string]bool     // high-cardinality positions, by prefix
}

type opModel struct {
	Method, Key string
	Count       int64
	First, Last time.Time
	Statuses    map[int]*respModel
	Query       map[string]*queryParam
	ReqTypes    map[string]int64
	ReqBody     *shape
	Auth        map[string]int64
	budget      int // shape nodes this operation may still create
}

type respModel struct {
	Count int64
	Types map[string]int64
	Body  *shape
}

type queryParam struct {
	Count int64
	Shape *shape
}

// maxQueryParams bounds the query parameter names kept per operation.
const maxQueryParams = 50

// New starts a learner with a queue of the given capacity; found hears
// sensitive data findings (from the learner's goroutine).
func New(queue int, s Settings, now time.Time, found func(Finding)) *Learner {
	l := &Learner{routes: map[string]*routeModel{}, reported: map[string]bool{}, started: now, found: found,
		queue: make(chan Sample, queue), stop: make(chan struct{}), done: make(chan struct{})}
	l.Configure(s)
	go l.run()
	return l
}

// Configure replaces the settings (a reload).
func (l *Learner) Configure(s Settings) {
	if s.MaxOperations <= 0 {
		s.MaxOperations = 5000
	}
	if s.Window <= 0 {
		s.Window = 24 * time.Hour
	}
	l.settings.Store(&s)
}

// Offer queues a sample without waiting; a full queue drops it (counted).
func (l *Learner) Offer(s Sample) {
	select {
	case l.queue <- s:
	default:
		l.dropped.Add(1)
	}
}

// Close stops the learner's goroutine (queued samples are dropped); a
// nil learner is a no-op.
func (l *Learner) Close() {
	if l == nil {
		return
	}
	select {
	case <-l.stop:
	default:
		close(l.stop)
		<-l.done
	}
}

func (l *Learner) run() {
	defer close(l.done)
	for {
		select {
		case <-l.stop:
			return
		case s := <-l.queue:
			l.Learn(s)
		}
	}
}

// Learn adds a sample to the model now (the queue's worker, and offline
// learning).
func (l *Learner) Learn(s Sample) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rm := l.routes[s.Route]
	if rm == nil {
		rm = &routeModel{ops: map[string]*opModel{}, collapsed: map[string]bool{}}
		l.routes[s.Route] = rm
	}
	key := preTemplate(s.Path, rm.collapsed)
	op := rm.ops[s.Method+" "+key]
	if op == nil {
		if op = l.newOp(rm, s, key); op == nil {
			l.bounded.Add(1)
			return
		}
	}
	l.learned.Add(1)
	op.observe(s, func(ptr string, c sensitive.Class) { l.report(s, op, ptr, c) })
}

// newOp adds an operation, compacting the route (collapsing its
// high-cardinality positions) when the bound is reached; nil when even
// that leaves no room.
func (l *Learner) newOp(rm *routeModel, s Sample, key string) *opModel {
	if l.ops >= l.settings.Load().MaxOperations {
		l.compact(rm)
		key = preTemplate(s.Path, rm.collapsed)
		if op := rm.ops[s.Method+" "+key]; op != nil {
			return op
		}
		if l.ops >= l.settings.Load().MaxOperations {
			return nil
		}
	}
	op := &opModel{Method: s.Method, Key: key, First: s.Time, Statuses: map[int]*respModel{}, Query: map[string]*queryParam{},
		ReqTypes: map[string]int64{}, Auth: map[string]int64{}, budget: maxNodes}
	rm.ops[s.Method+" "+key] = op
	l.ops++
	return op
}

// compact collapses the route's high-cardinality positions and merges
// the operations that then share a key.
func (l *Learner) compact(rm *routeModel) {
	var keys []string
	for _, op := range rm.ops {
		keys = append(keys, op.Key)
	}
	sort.Strings(keys)
	split := make([][]string, len(keys))
	for i, k := range keys {
		split[i] = strings.Split(strings.Trim(k, "/"), "/")
	}
	collapse(split, 0, allIndexes(len(keys)), rm.collapsed)
	merged := map[string]*opModel{}
	for _, op := range rm.ops {
		op.Key = preTemplate(op.Key, rm.collapsed)
		k := op.Method + " " + op.Key
		if into := merged[k]; into != nil {
			into.merge(op)
			l.ops--
			continue
		}
		merged[k] = op
	}
	rm.ops = merged
}

// report passes a finding on, once.
func (l *Learner) report(s Sample, op *opModel, ptr string, c sensitive.Class) {
	key := s.Route + "|" + op.Method + "|" + op.Key + "|" + ptr + "|" + string(c)
	if l.reported[key] || len(l.reported) >= 10000 {
		return
	}
	l.reported[key] = true
	if l.found != nil {
		l.found(Finding{Route: s.Route, Method: op.Method, Path: op.Key, Status: s.Status, Pointer: ptr, Class: c})
	}
}

// observe adds a sample to the operation.
func (op *opModel) observe(s Sample, found observeFn) {
	op.Count++
	if s.Time.After(op.Last) {
		op.Last = s.Time
	}
	if s.Auth != "" {
		op.Auth[s.Auth]++
	}
	for name, vals := range s.Query {
		q := op.Query[name]
		if q == nil {
			if len(op.Query) >= maxQueryParams {
				continue
			}
			q = &queryParam{Shape: newShape()}
			q.Shape.secret = sensitive.SecretName(name)
			op.Query[name] = q
		}
		q.Count++
		if len(vals) > 0 {
			q.Shape.addString(vals[0], name, "", nil)
			q.Shape.Count++
			q.Shape.Types[queryType(vals[0])]++
		}
	}
	bodies := learnBodies(op.Count)
	if ct := mediaType(s.ReqType); ct != "" {
		op.ReqTypes[ct]++
		if bodies && isJSONType(ct) && len(s.ReqBody) > 0 {
			if op.ReqBody == nil {
				op.ReqBody = newShape()
			}
			op.ReqBody.addJSON(s.ReqBody, &op.budget, nil)
		}
	}
	r := op.Statuses[s.Status]
	if r == nil {
		r = &respModel{Types: map[string]int64{}}
		op.Statuses[s.Status] = r
	}
	r.Count++
	if ct := mediaType(s.RespType); ct != "" {
		r.Types[ct]++
		if (bodies || r.Count <= bodiesAlways) && isJSONType(ct) && len(s.RespBody) > 0 {
			if r.Body == nil {
				r.Body = newShape()
			}
			r.Body.addJSON(s.RespBody, &op.budget, found)
		}
	}
}

// bodiesAlways is how many samples of an operation (and of each of its
// statuses) have their bodies learned; after that, a decaying share: a
// shape has converged by then, and learning every body of a busy
// operation would cost the most for the least.
const bodiesAlways = 100

// learnBodies reports whether the count-th sample's bodies are learned:
// all of the first bodiesAlways, then one in 8, past 10,000 one in 64.
func learnBodies(count int64) bool {
	switch {
	case count <= bodiesAlways:
		return true
	case count <= 10000:
		return count%8 == 0
	}
	return count%64 == 0
}

// queryType is the JSON type a query value reads as.
func queryType(v string) string {
	if len(v) <= 19 && all(v, isDigit) {
		return "integer"
	}
	if v == "true" || v == "false" {
		return "boolean"
	}
	return "string"
}

func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

func isJSONType(mt string) bool { return mt == "application/json" || strings.HasSuffix(mt, "+json") }

// merge adds o (an operation that a compaction joined to op).
func (op *opModel) merge(o *opModel) {
	op.Count += o.Count
	if o.First.Before(op.First) {
		op.First = o.First
	}
	if o.Last.After(op.Last) {
		op.Last = o.Last
	}
	for st, r := range o.Statuses {
		if op.Statuses[st] == nil {
			op.Statuses[st] = &respModel{Types: map[string]int64{}}
		}
		into := op.Statuses[st]
		into.Count += r.Count
		for t, n := range r.Types {
			into.Types[t] += n
		}
		if r.Body != nil {
			if into.Body == nil {
				into.Body = newShape()
			}
			into.Body.merge(r.Body)
		}
	}
	for name, q := range o.Query {
		if op.Query[name] == nil {
			op.Query[name] = &queryParam{Shape: newShape()}
		}
		op.Query[name].Count += q.Count
		op.Query[name].Shape.merge(q.Shape)
	}
	for t, n := range o.ReqTypes {
		op.ReqTypes[t] += n
	}
	if o.ReqBody != nil {
		if op.ReqBody == nil {
			op.ReqBody = newShape()
		}
		op.ReqBody.merge(o.ReqBody)
	}
	for a, n := range o.Auth {
		op.Auth[a] += n
	}
}

// Stats are the learner's counters.
type Stats struct {
	Learned    int64 `json:"learned"`
	Dropped    int64 `json:"dropped_queue_full"`
	Bounded    int64 `json:"dropped_memory_bound"`
	Operations int   `json:"operations"`
}

// Stats reads the counters.
func (l *Learner) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Learned: l.learned.Load(), Dropped: l.dropped.Load(), Bounded: l.bounded.Load(), Operations: l.ops}
}
