package abuse

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Decision codes of the abuse defence.
const (
	CodeBanned        = "abuse.banned"
	CodeThrottled     = "abuse.throttled"
	CodeAccountLocked = "abuse.account_locked"
)

// maxAccountBody bounds how much of a login body is read to find the
// account.
const maxAccountBody = 64 << 10

// AccountStage reads the account a login request names (a JSON or form
// field), refuses requests for a locked account (403
// abuse.account_locked), and records the account for detection after the
// answer. The body is restored for the upstream unchanged.
func AccountStage(aa *config.AbuseAccount, guard func() *Guard) pipeline.Middleware {
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
