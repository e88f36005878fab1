package observe

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rampart-gw/rampart/internal/config"
)

// Metrics are the gateway's Prometheus metrics, on a registry of its own
// (no global state). Label values are bounded: routes come from config,
// methods outside the standard set are "other", statuses are classes.
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	upstream   *prometheus.HistogramVec
	decisions  *prometheus.CounterVec
	reloads    *prometheus.CounterVec
	routes     sync.Map // route -> *routeMetrics: label look-ups once per route, not per request
	configVer  prometheus.Gauge
	lastReload prometheus.Gauge
	jwksFail   *prometheus.CounterVec
	certs      *prometheus.CounterVec
	overload   *prometheus.GaugeVec
}

// Gauges are read when Prometheus scrapes.
type Gauges struct {
	// ActiveBans returns the number of clients currently banned.
	ActiveBans func() float64
	// UpstreamHealth reports each target's health (1 healthy, 0 not).
	UpstreamHealth func(report func(upstream, target string, healthy bool))
	// EventsDropped returns the security events dropped so far.
	EventsDropped func() float64
	// HandshakeFailures reports each TLS listener's failed handshakes by
	// reason.
	HandshakeFailures func(report func(listener, reason string, n uint64))
}

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics registers the gateway's metrics and Go runtime and process
// metrics.
func NewMetrics(g Gauges) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_requests_total",
		Help: "Requests by route, method and status class."}, []string{"route", "method", "status_class"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rampart_request_duration_seconds",
		Help: "Time from the request's arrival to the end of the response, by route.", Buckets: latencyBuckets}, []string{"route"})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rampart_upstream_duration_seconds",
		Help: "Time waiting for the upstream's response headers, by route.", Buckets: latencyBuckets}, []string{"route"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_decisions_total",
		Help: "Refused requests by stage and decision code."}, []string{"stage", "code"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_config_reloads_total",
		Help: "Config reloads by result (success, failure)."}, []string{"result"})
	m.configVer = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rampart_config_version",
		Help: "Sequence number of the plan in service (1 at start, +1 per successful reload)."})
	m.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rampart_config_last_reload_timestamp_seconds",
		Help: "Unix time of the last successful load or reload."})
	m.jwksFail = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_jwks_refresh_failures_total",
		Help: "Failed JWKS or discovery fetches by issuer."}, []string{"issuer"})
	m.certs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rampart_acme_certificates_total",
		Help: "ACME certificates obtained or renewed (result success) and attempts that failed (failure), by listener."}, []string{"listener", "result"})
	m.overload = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rampart_overload_limit",
		Help: "A route's adaptive concurrency limit (requests in flight before shedding)."}, []string{"route"})
	m.reg.MustRegister(m.requests, m.duration, m.upstream, m.decisions, m.reloads, m.configVer, m.lastReload, m.jwksFail, m.certs, m.overload,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if g.ActiveBans != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rampart_active_bans",
			Help: "Clients currently banned or tightened by the abuse detectors."}, g.ActiveBans))
	}
	if g.EventsDropped != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rampart_security_events_dropped_total",
			Help: "Security events dropped because a queue was full."}, g.EventsDropped))
	}
	if g.UpstreamHealth != nil {
		m.reg.MustRegister(&pairCollector{desc: prometheus.NewDesc("rampart_upstream_healthy",
			"1 when the upstream target is healthy (active checks, passive ejection), else 0.", []string{"upstream", "target"}, nil),
			kind: prometheus.GaugeValue, each: func(emit func(a, b string, v float64)) {
				g.UpstreamHealth(func(upstream, target string, healthy bool) {
					emit(upstream, target, map[bool]float64{true: 1}[healthy])
				})
			}})
	}
	if g.HandshakeFailures != nil {
		m.reg.MustRegister(&pairCollector{desc: prometheus.NewDesc("rampart_tls_handshake_failures_total",
			"TLS handshakes refused or failed, by listener and reason.", []string{"listener", "reason"}, nil),
			kind: prometheus.CounterValue, each: func(emit func(a, b string, v float64)) {
				g.HandshakeFailures(func(listener, reason string, n uint64) { emit(listener, reason, float64(n)) })
			}})
	}
	m.configVer.Set(1)
	m.lastReload.SetToCurrentTime()
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Gatherer exposes the registry (tests).
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// routeMetrics are one route's series, resolved once.
type routeMetrics struct {
	duration, upstream prometheus.Observer
	requests           [len(methodNames)][5]atomic.Pointer[counterRef] // by method and status class, made on first use
}

type counterRef struct{ c prometheus.Counter }

var methodNames = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}

func (m *Metrics) route(route string) *routeMetrics {
	if v, ok := m.routes.Load(route); ok {
		return v.(*routeMetrics)
	}
	rm := &routeMetrics{duration: m.duration.WithLabelValues(route), upstream: m.upstream.WithLabelValues(route)}
	v, _ := m.routes.LoadOrStore(route, rm)
	return v.(*routeMetrics)
}

// Request records one finished request. code is the decision code of a
// refusal ("" when served).
func (m *Metrics) Request(route, method string, status int, code string, total, upstream time.Duration) {
	if route == "" {
		route = config.NoRoute
	}
	rm := m.route(route)
	mi, ci := methodIndex(method), classIndex(status)
	ref := rm.requests[mi][ci].Load()
	if ref == nil {
		ref = &counterRef{m.requests.WithLabelValues(route, methodNames[mi], statusClass(status))}
		rm.requests[mi][ci].Store(ref)
	}
	ref.c.Inc()
	rm.duration.Observe(total.Seconds())
	if upstream > 0 {
		rm.upstream.Observe(upstream.Seconds())
	}
	if code != "" {
		stage, _, _ := strings.Cut(code, ".")
		m.decisions.WithLabelValues(stage, code).Inc()
	}
}

// Reload records a reload attempt; version is the new plan's number.
func (m *Metrics) Reload(ok bool, version int) {
	if !ok {
		m.reloads.WithLabelValues("failure").Inc()
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.configVer.Set(float64(version))
	m.lastReload.SetToCurrentTime()
}

// JWKSFailure records a failed key-set or discovery fetch.
func (m *Metrics) JWKSFailure(issuer string) { m.jwksFail.WithLabelValues(issuer).Inc() }

// OverloadLimit sets a route's current shedding limit; a negative limit
// removes the route's series (it no longer sheds).
func (m *Metrics) OverloadLimit(route string, limit int) {
	if limit < 0 {
		m.overload.DeleteLabelValues(route)
		return
	}
	m.overload.WithLabelValues(route).Set(float64(limit))
}

// Certificate counts an ACME certificate obtained (ok) or failed.
func (m *Metrics) Certificate(listener string, ok bool) {
	result := "failure"
	if ok {
		result = "success"
	}
	m.certs.WithLabelValues(listener, result).Inc()
}

func methodLabel(m string) string { return methodNames[methodIndex(m)] }

func methodIndex(m string) int {
	for i, n := range methodNames[:len(methodNames)-1] {
		if m == n {
			return i
		}
	}
	return len(methodNames) - 1
}

// classIndex is the status class's index: 1xx is 0, 5xx is 4.
func classIndex(s int) int {
	return max(0, min(4, s/100-1))
}

func statusClass(s int) string {
	switch {
	case s >= 500:
		return "5xx"
	case s >= 400:
		return "4xx"
	case s >= 300:
		return "3xx"
	case s >= 200:
		return "2xx"
	}
	return "1xx"
}

// pairCollector reports series with two labels, read at scrape time.
type pairCollector struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	each func(emit func(a, b string, v float64))
}

func (c *pairCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *pairCollector) Collect(ch chan<- prometheus.Metric) {
	c.each(func(a, b string, v float64) { ch <- prometheus.MustNewConstMetric(c.desc, c.kind, v, a, b) })
}
