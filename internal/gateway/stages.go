package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/abuse"
	"github.com/rampart-gw/rampart/internal/config"

	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/proxy"
)

// bodyLimit refuses bodies over max bytes with 413: at once when
// Content-Length says so (before a 100-continue is sent), otherwise when
// the streamed body crosses the limit. It records any body read error in
// the scope, and when a later stage fails after the body could not be
// read, the body's failure is the decision (413 request.body_too_large or
// 400 request.body_error), whatever that stage made of its read error: a
// JSON check, the OpenAPI validator, the WAF or the proxy may be the one
// that reads past the limit first.
func bodyLimit(max int64) pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			if r.ContentLength > max {
				return pipeline.BodyTooLarge(nil)
			}
			if r.Body == nil || r.Body == http.NoBody {
				return next(w, r)
			}
			s := pipeline.ScopeOf(r.Context())
			r.Body = &bodyGuard{ReadCloser: http.MaxBytesReader(nil, r.Body, max), scope: s}
			err := next(w, r)
			if err != nil && s != nil && s.BodyError != nil {
				if pe, ok := errors.AsType[*pipeline.Error](err); !ok || pe.Status != 499 {
					return pipeline.BodyReadError(s.BodyError)
				}
			}
			return err
		}
	}
}

// bodyGuard records the first body read error other than EOF.
type bodyGuard struct {
	io.ReadCloser
	scope *pipeline.Scope
}

func (b *bodyGuard) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.scope != nil && b.scope.BodyError == nil {
		b.scope.BodyError = err
	}
	return n, err
}

// maxAccountBody bounds how much of a login body is read to find the
// account.
const maxAccountBody = 64 << 10

// accountStage reads the account a login request names (a JSON or form
// field), refuses requests for a locked account (403
// abuse.account_locked), and records the account for detection after the
// answer. The body is restored for the upstream unchanged.
func accountStage(aa *config.AbuseAccount, guard func() *abuse.Guard) pipeline.Middleware {
	if aa == nil {
		return nil
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			g := guard()
			if g == nil || r.Body == nil || r.Body == http.NoBody {
				return next(w, r)
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, maxAccountBody+1))
			if err != nil {
				return next(w, r) // the proxy reports the body error
			}
			if len(body) > maxAccountBody {
				// Too large for a login form: forward it untouched.
				r.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
				return next(w, r)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			account := extractAccount(aa, r.Header.Get("Content-Type"), body)
			s := pipeline.ScopeOf(r.Context())
			if s != nil {
				s.Account = account
			}
			if g.AccountLocked(account, time.Now()) {
				return pipeline.Deny(http.StatusForbidden, CodeAccountLocked, "account temporarily locked")
			}
			return next(w, r)
		}
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

func extractAccount(aa *config.AbuseAccount, contentType string, body []byte) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case aa.JSONField != "" && (mt == "application/json" || strings.HasSuffix(mt, "+json")):
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			if v, ok := m[aa.JSONField].(string); ok && len(v) <= 256 {
				return strings.ToLower(strings.TrimSpace(v))
			}
		}
	case aa.FormField != "" && mt == "application/x-www-form-urlencoded":
		if vals, err := url.ParseQuery(string(body)); err == nil {
			if v := vals.Get(aa.FormField); len(v) <= 256 {
				return strings.ToLower(strings.TrimSpace(v))
			}
		}
	}
	return ""
}

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
