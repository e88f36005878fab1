package plan

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/proxy"
)

// decisionFields are client-controlled fields removed (or refused) before
// any stage reads them.
type decisionFields struct {
	headers map[string]bool // lower-case, '_' as '-'
	params  map[string]bool
	refuse  bool
}

func compileDecisionFields(d config.DecisionFields) decisionFields {
	f := decisionFields{headers: map[string]bool{}, params: map[string]bool{}, refuse: d.Refuse}
	for _, h := range d.Headers {
		f.headers[strings.ReplaceAll(strings.ToLower(h), "_", "-")] = true
	}
	for _, q := range d.QueryParams {
		f.params[strings.ToLower(q)] = true
	}
	return f
}

// reserved reports whether header name k is a decision field, in any
// letter case and with '_' for '-', without allocating (this runs for
// every header of every request).
func (f decisionFields) reserved(k string) bool {
	var buf [64]byte
	if len(k) > len(buf) {
		return f.headers[strings.ReplaceAll(strings.ToLower(k), "_", "-")]
	}
	return f.headers[string(proxy.FoldHeaderName(buf[:0], k))] // the lookup does not allocate
}

// apply removes decision fields from r, or reports the first one found
// when the config says to refuse.
func (f decisionFields) apply(r *http.Request) (string, bool) {
	for k := range r.Header {
		if f.reserved(k) {
			if f.refuse {
				return k, false
			}
			delete(r.Header, k)
		}
	}
	q := r.URL.RawQuery
	if q == "" || len(f.params) == 0 {
		return "", true
	}
	var kept []string
	changed := false
	for _, pair := range strings.Split(q, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if dk, err := url.QueryUnescape(k); err == nil && f.params[strings.ToLower(dk)] {
			if f.refuse {
				return dk, false
			}
			changed = true
			continue
		}
		kept = append(kept, pair)
	}
	if changed {
		r.URL.RawQuery = strings.Join(kept, "&")
	}
	return "", true
}
