package discovery

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/sensitive"
)

// Declared is the document attached to a route, as plain JSON values, with
// its servers' base path.
type Declared struct {
	Doc  map[string]any
	Base string
}

// LoadDeclared reads a route's OpenAPI document.
func LoadDeclared(file string) (Declared, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return Declared{}, err
	}
	var y any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		return Declared{}, fmt.Errorf("%s: %w", file, err)
	}
	js, _ := json.Marshal(y)
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		return Declared{}, fmt.Errorf("%s: not an OpenAPI document", file)
	}
	d := Declared{Doc: doc}
	if servers, _ := doc["servers"].([]any); len(servers) > 0 {
		u, _ := servers[0].(map[string]any)["url"].(string)
		if i := strings.Index(u, "://"); i >= 0 {
			u = u[i+3:]
			if j := strings.IndexByte(u, '/'); j >= 0 {
				u = u[j:]
			} else {
				u = ""
			}
		}
		d.Base = strings.TrimSuffix(u, "/")
	}
	return d, nil
}

// OpRef names an operation of the report.
type OpRef struct {
	Route  string    `json:"route"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Count  int64     `json:"count,omitempty"`
	Last   time.Time `json:"last_seen,omitzero"`
}

// Drift is a difference between what was seen and what is declared.
type Drift struct {
	OpRef
	Where    string `json:"where"`   // "request body", "response 200"
	Pointer  string `json:"pointer"` // in the body
	Kind     string `json:"kind"`    // undeclared_field, type_mismatch
	Seen     string `json:"seen"`
	Declared string `json:"declared,omitempty"`
}

// Exposure is a class of sensitive value seen in responses.
type Exposure struct {
	OpRef
	Status  int             `json:"status"`
	Pointer string          `json:"pointer"`
	Class   sensitive.Class `json:"class"`
	Times   int64           `json:"times"`
}

// Report is what the traffic says about the documents.
type Report struct {
	Since          time.Time  `json:"since"`
	WindowComplete bool       `json:"window_complete"` // zombies are reported once the window has passed
	Stats          Stats      `json:"stats"`
	Shadow         []OpRef    `json:"shadow"`
	Zombie         []OpRef    `json:"zombie"`
	Drift          []Drift    `json:"drift"`
	Sensitive      []Exposure `json:"sensitive_data"`
}

// maxItems bounds each list of the report.
const maxItems = 500

// Report compares what was seen with the documents attached to routes
// (declared, by route id; a route without one has only shadow
// operations) at now.
func (l *Learner) Report(declared map[string]Declared, now time.Time) Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.settings.Load()
	rep := Report{Since: l.started, WindowComplete: now.Sub(l.started) >= s.Window, Shadow: []OpRef{}, Zombie: []OpRef{},
		Drift: []Drift{}, Sensitive: []Exposure{}}
	rep.Stats = Stats{Learned: l.learned.Load(), Dropped: l.dropped.Load(), Bounded: l.bounded.Load(), Operations: l.ops}
	ops := l.operations()
	seen := map[string][]learnedOp{}
	for _, lo := range ops {
		seen[lo.route] = append(seen[lo.route], lo)
		ref := OpRef{Route: lo.route, Method: lo.method, Path: lo.template, Count: lo.op.Count, Last: lo.op.Last}
		exposures(&rep, ref, lo.op)
		d, ok := declared[lo.route]
		if !ok {
			add(&rep.Shadow, ref)
			continue
		}
		dop := d.find(lo.method, lo.template)
		if dop == nil {
			add(&rep.Shadow, ref)
			continue
		}
		if lo.op.Last.Before(now.Add(-s.Window)) && rep.WindowComplete {
			add(&rep.Zombie, ref)
		}
		drift(&rep, ref, d, dop, lo.op)
	}
	if rep.WindowComplete {
		for route, d := range declared {
			for _, dref := range d.operations(route) {
				if !anyMatch(seen[route], dref) {
					add(&rep.Zombie, dref)
				}
			}
		}
	}
	return rep
}

func add[T any](list *[]T, v T) {
	if len(*list) < maxItems {
		*list = append(*list, v)
	}
}

// operations are the documented operations under their public paths.
func (d Declared) operations(route string) []OpRef {
	var out []OpRef
	paths, _ := d.Doc["paths"].(map[string]any)
	for p, item := range paths {
		for m := range item.(map[string]any) {
			switch m {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				out = append(out, OpRef{Route: route, Method: strings.ToUpper(m), Path: d.Base + p})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path+out[i].Method < out[j].Path+out[j].Method })
	return out
}

// find is the documented operation a learned template matches.
func (d Declared) find(method, template string) map[string]any {
	paths, _ := d.Doc["paths"].(map[string]any)
	for p, item := range paths {
		if templatesMatch(d.Base+p, template) {
			if op, ok := item.(map[string]any)[strings.ToLower(method)].(map[string]any); ok {
				return op
			}
		}
	}
	return nil
}

func anyMatch(ops []learnedOp, ref OpRef) bool {
	for _, lo := range ops {
		if lo.method == ref.Method && templatesMatch(ref.Path, lo.template) {
			return true
		}
	}
	return false
}

// templatesMatch reports whether a documented template and a learned one
// name the same operation: same length, and each segment equal or a
// parameter on the documented side.
func templatesMatch(documented, learned string) bool {
	a, b := strings.Split(strings.Trim(documented, "/"), "/"), strings.Split(strings.Trim(learned, "/"), "/")
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !strings.HasPrefix(a[i], "{") {
			return false
		}
	}
	return true
}

// exposures lists the sensitive classes of an operation's responses.
func exposures(rep *Report, ref OpRef, op *opModel) {
	for st, r := range op.Statuses {
		walkShape(r.Body, "", func(ptr string, s *shape) {
			for c, n := range s.Sensitive {
				add(&rep.Sensitive, Exposure{OpRef: ref, Status: st, Pointer: ptr, Class: c, Times: n})
			}
		})
	}
}

func walkShape(s *shape, ptr string, f func(string, *shape)) {
	if s == nil {
		return
	}
	f(ptr, s)
	for k, p := range s.Props {
		walkShape(p, ptr+"/"+escape(k), f)
	}
	walkShape(s.Items, ptr+"/0", f)
}
