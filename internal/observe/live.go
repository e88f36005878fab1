package observe

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Live keeps the last minute of traffic, per second, and the latest
// security events, for the live dashboard. Memory is bounded: 60 seconds
// of counters, at most maxClients client IPs per minute, maxEvents events.
// Requests are counted in parts by client (each with its own lock: the
// request path of many cores does not queue on one), which a snapshot
// adds up.
type Live struct {
	seed  maphash.Seed
	parts [liveParts]livePart

	mu     sync.Mutex // the events
	events []pipeline.Event
	next   int
}

// livePart is the traffic of the clients that hash to it.
type livePart struct {
	mu      sync.Mutex
	secs    [liveSeconds]liveSecond
	clients [2]map[string]*clientStat // this minute and the previous one
	minute  int64
	_       [64]byte // no false sharing between neighbouring parts
}

const (
	liveSeconds = 60
	liveParts   = 8
	maxClients  = 10000 // per minute, all parts together
	maxEvents   = 200
)

type liveSecond struct {
	unix     int64
	requests int
	classes  [5]int // 1xx..5xx
	blocked  map[string]int
	lat      [len(latBounds) + 1]int
	cats     [categorySlots][2]int // requests and refusals by route category
}

// categorySlots are the route categories and one for requests no route
// took.
const categorySlots = len(config.Categories) + 1

// categorySlot is c's index in liveSecond.cats.
func categorySlot(c string) int {
	if i := slices.Index(config.Categories[:], c); i >= 0 {
		return i
	}
	return len(config.Categories)
}

type clientStat struct{ requests, refused int }

// latBounds are the latency histogram's upper bounds in microseconds.
var latBounds = [...]int64{250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000}

// NewLive returns an empty window.
func NewLive() *Live {
	l := &Live{seed: maphash.MakeSeed(), events: make([]pipeline.Event, 0, maxEvents)}
	for i := range l.parts {
		l.parts[i].clients = [2]map[string]*clientStat{{}, {}}
	}
	return l
}

// Request records one finished request (category: its route's, "" when
// none took it).
func (l *Live) Request(now time.Time, clientIP, category string, status int, code string, dur time.Duration) {
	unix := now.Unix()
	us := dur.Microseconds()
	b := 0
	for b < len(latBounds) && us > latBounds[b] {
		b++
	}
	l.parts[maphash.String(l.seed, clientIP)%liveParts].request(unix, clientIP, category, status, code, b)
}

func (l *livePart) request(unix int64, clientIP, category string, status int, code string, b int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.secs[unix%liveSeconds]
	if s.unix > unix {
		return // older than the window this slot now holds
	}
	if s.unix != unix {
		*s = liveSecond{unix: unix}
	}
	s.requests++
	if c := status/100 - 1; c >= 0 && c < 5 {
		s.classes[c]++
	}
	s.lat[b]++
	cat := &s.cats[categorySlot(category)]
	cat[0]++
	if code != "" {
		cat[1]++
		if s.blocked == nil {
			s.blocked = map[string]int{}
		}
		s.blocked[code]++
	}
	var cur map[string]*clientStat
	switch m := unix / 60; {
	case m == l.minute:
		cur = l.clients[0]
	case m == l.minute+1:
		l.clients[1], l.clients[0], l.minute = l.clients[0], map[string]*clientStat{}, m
		cur = l.clients[0]
	case m > l.minute+1:
		l.clients[1], l.clients[0], l.minute = map[string]*clientStat{}, map[string]*clientStat{}, m
		cur = l.clients[0]
	case m == l.minute-1:
		cur = l.clients[1]
	default:
		return
	}
	cs := cur[clientIP]
	if cs == nil {
		if len(cur) >= maxClients/liveParts {
			return
		}
		cs = &clientStat{}
		cur[clientIP] = cs
	}
	cs.requests++
	if code != "" {
		cs.refused++
	}
}

// Emit implements pipeline.Events: the dashboard's copy of the stream.
func (l *Live) Emit(ev pipeline.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	l.mu.Lock()
	if len(l.events) < maxEvents {
		l.events = append(l.events, ev)
	} else {
		l.events[l.next] = ev
	}
	l.next = (l.next + 1) % maxEvents
	l.mu.Unlock()
}

// Snapshot is the dashboard's view of the last minute: series of its
// complete seconds, totals that include the current one.
type Snapshot struct {
	Time     int64          `json:"time"`
	Seconds  []int64        `json:"seconds"` // unix seconds, oldest first
	RPS      []int          `json:"rps"`
	Blocked  []int          `json:"blocked"`
	P50      []float64      `json:"p50_ms"`
	P99      []float64      `json:"p99_ms"`
	Classes  map[string]int `json:"status_classes"` // over the minute
	Reasons  []Count        `json:"blocked_by_reason"`
	Clients  []ClientCount  `json:"top_clients"`
	Offender []ClientCount  `json:"top_offenders"`
	Events   []EventView    `json:"events"` // newest first
	// Categories are the minute's requests, refusals and findings by
	// route category (every category, in config order).
	Categories []CategoryCount `json:"categories"`
}

// CategoryCount is one route category's traffic in the window: its
// requests, those refused, and the findings (security events other than
// refusals) among the latest events that name it.
type CategoryCount struct {
	Category string `json:"category"`
	Requests int    `json:"requests"`
	Refused  int    `json:"refused"`
	Findings int    `json:"findings"`
}

// Count is a labelled count.
type Count struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// ClientCount is a client's requests and refusals in the window.
type ClientCount struct {
	IP       string `json:"ip"`
	Requests int    `json:"requests"`
	Refused  int    `json:"refused"`
}

// EventView is an event as the dashboard shows it (already redacted
// fields only: no reason text, no request details beyond the path).
type EventView struct {
	Time     string   `json:"time"`
	Event    string   `json:"event"`
	Code     string   `json:"code"`
	Stage    string   `json:"stage"`
	Route    string   `json:"route"`
	ClientIP string   `json:"client_ip"`
	Subject  string   `json:"subject,omitempty"`
	Method   string   `json:"method,omitempty"`
	Path     string   `json:"path,omitempty"`
	Rules    []string `json:"rules,omitempty"`
	Detail   string   `json:"detail,omitempty"`
	// Count is how many events of this kind, code, client and route the
	// row stands for (repeats are collapsed), the newest at Time, the
	// oldest at First.
	Count int    `json:"count"`
	First string `json:"first"`
}

// Snapshot summarises the last minute at now. categoryOf names a route's
// category, for the findings whose events name their route only (nil:
// such findings are not counted by category).
func (l *Live) Snapshot(now time.Time, categoryOf func(route string) string) Snapshot {
	unix := now.Unix()
	snap := Snapshot{Time: unix, Classes: map[string]int{"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}}
	reasons := map[string]int{}
	cats := make([]CategoryCount, len(config.Categories))
	for i, c := range config.Categories {
		cats[i].Category = c
	}
	secs, clients := l.merged(unix / 60)
	// The series are the complete seconds of the window (the current one
	// is still filling and would draw as a drop); the totals include it.
	for t := unix - liveSeconds + 1; t <= unix; t++ {
		s := &secs[t%liveSeconds]
		blocked, requests, p50, p99 := 0, 0, 0.0, 0.0
		if s.unix == t {
			for code, n := range s.blocked {
				blocked += n
				reasons[code] += n
			}
			for i, n := range s.classes {
				snap.Classes[string(rune('1'+i))+"xx"] += n
			}
			requests, p50, p99 = s.requests, quantile(s.lat[:], s.requests, 0.50), quantile(s.lat[:], s.requests, 0.99)
			for i := range config.Categories {
				cats[i].Requests += s.cats[i][0]
				cats[i].Refused += s.cats[i][1]
			}
		}
		if t == unix {
			break
		}
		snap.Seconds = append(snap.Seconds, t)
		snap.RPS = append(snap.RPS, requests)
		snap.Blocked = append(snap.Blocked, blocked)
		snap.P50 = append(snap.P50, p50)
		snap.P99 = append(snap.P99, p99)
	}
	for k, n := range reasons {
		snap.Reasons = append(snap.Reasons, Count{k, n})
	}
	slices.SortFunc(snap.Reasons, func(a, b Count) int { return b.Count - a.Count })
	all := make([]ClientCount, 0, len(clients))
	for _, c := range clients {
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b ClientCount) int { return b.Requests - a.Requests })
	snap.Clients = append([]ClientCount(nil), all[:min(10, len(all))]...)
	slices.SortFunc(all, func(a, b ClientCount) int { return b.Refused - a.Refused })
	for _, c := range all[:min(10, len(all))] {
		if c.Refused > 0 {
			snap.Offender = append(snap.Offender, c)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	snap.Events = l.eventRows(50)
	for _, ev := range l.events {
		if ev.Name == "refusal" {
			continue
		}
		c := ev.Attrs["category"]
		if c == "" && ev.Route != "" && categoryOf != nil {
			c = categoryOf(ev.Route)
		}
		if i := categorySlot(c); i < len(cats) {
			cats[i].Findings++
		}
	}
	snap.Categories = cats
	return snap
}

// merged adds up the parts: each second of the window (a second a part
// has not seen yet counts as empty there) and each client's counts of
// minute and the one before (a part that saw no request since holds
// older ones).
func (l *Live) merged(minute int64) (*[liveSeconds]liveSecond, map[string]ClientCount) {
	var secs [liveSeconds]liveSecond
	clients := map[string]ClientCount{}
	for i := range l.parts {
		p := &l.parts[i]
		p.mu.Lock()
		for j := range p.secs {
			addSecond(&secs[j], &p.secs[j])
		}
		for k, m := range p.clients {
			if at := p.minute - int64(k); at != minute && at != minute-1 {
				continue
			}
			for ip, c := range m {
				cc := clients[ip]
				cc.IP, cc.Requests, cc.Refused = ip, cc.Requests+c.requests, cc.Refused+c.refused
				clients[ip] = cc
			}
		}
		p.mu.Unlock()
	}
	return &secs, clients
}

// addSecond adds src to dst, the newer second winning a slot they hold
// for different seconds.
func addSecond(dst, src *liveSecond) {
	switch {
	case src.unix == 0 || src.unix < dst.unix:
		return
	case src.unix > dst.unix:
		*dst = liveSecond{unix: src.unix}
	}
	dst.requests += src.requests
	for i, n := range src.classes {
		dst.classes[i] += n
	}
	for i, n := range src.lat {
		dst.lat[i] += n
	}
	for i, c := range src.cats {
		dst.cats[i][0] += c[0]
		dst.cats[i][1] += c[1]
	}
	for code, n := range src.blocked {
		if dst.blocked == nil {
			dst.blocked = map[string]int{}
		}
		dst.blocked[code] += n
	}
}

// eventRows lists the recent events newest first, repeats of one kind,
// code, client and route collapsed into one row with their count: a
// banned client's hundred refusals are one row, not the whole table.
// Caller holds l.mu.
func (l *Live) eventRows(max int) []EventView {
	var rows []EventView
	index := map[string]int{}
	for i := 0; i < len(l.events); i++ {
		// Newest first: next is one past the newest (and equals the
		// length until the ring is full).
		ev := l.events[((l.next-1-i)%maxEvents+maxEvents)%maxEvents]
		when := ev.Time.UTC().Format(time.RFC3339)
		key := ev.Name + "\x00" + ev.Code + "\x00" + ev.ClientIP + "\x00" + ev.Route
		if j, ok := index[key]; ok {
			rows[j].Count++
			rows[j].First = when
			continue
		}
		if len(rows) == max {
			continue // only counts of rows already shown from here
		}
		stage, _, _ := strings.Cut(ev.Code, ".")
		v := EventView{Time: when, First: when, Count: 1, Event: ev.Name, Code: ev.Code, Stage: stage, Route: ev.Route,
			ClientIP: ev.ClientIP, Subject: ev.Subject, Method: ev.Method, Path: clipText(ev.Path, 200), Rules: ev.Rules}
		if d := ev.Attrs["detector"]; d != "" {
			v.Detail = d
		} else if s := ev.Attrs["signal"]; s != "" {
			v.Detail = s
			if o := ev.Attrs["observed"]; o != "" {
				v.Detail += " " + o + ", expected " + ev.Attrs["expected"]
			}
		}
		index[key] = len(rows)
		rows = append(rows, v)
	}
	return rows
}

// quantile estimates a latency quantile (ms) from histogram buckets,
// interpolating linearly inside the bucket that holds it (as Prometheus's
// histogram_quantile does), so that it is not stuck on a bucket bound.
// A quantile in the last, open bucket is its lower bound.
func quantile(buckets []int, total int, q float64) float64 {
	if total == 0 {
		return 0
	}
	want := float64(total) * q
	seen := 0
	for i, n := range buckets {
		if n == 0 || float64(seen+n) < want {
			seen += n
			continue
		}
		if i >= len(latBounds) {
			return float64(latBounds[len(latBounds)-1]) / 1000
		}
		lower := 0.0
		if i > 0 {
			lower = float64(latBounds[i-1])
		}
		frac := (want - float64(seen)) / float64(n)
		return (lower + (float64(latBounds[i])-lower)*frac) / 1000
	}
	return 0
}
