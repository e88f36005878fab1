// Package authz authorizes authenticated callers: scopes, roles, claims,
// object-level binding of path parameters to claims (OWASP API1),
// per-method policies (OWASP API5) and CEL expressions. Policies are
// compiled once, when the plan is built.
package authz

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// CodeDenied is the decision code of every authorization refusal; the
// failing rule is logged, not sent.
const CodeDenied = "authz.denied"

// policy is a compiled config.Authorize.
type policy struct {
	any                  bool
	scopesAll, scopesAny []string
	rolesAll, rolesAny   []string
	claims               map[string][]string
	bind                 map[string][]string // param → claim path
	prog                 cel.Program
	headers              []string
	methods              map[string]*policy
}

// New compiles a route's policy into its authorize stage (nil when the
// route has no policy). A CEL expression that does not compile or is not
// boolean is an error naming the expression.
func New(a *config.Authorize) (pipeline.Middleware, error) {
	if a == nil {
		return nil, nil
	}
	p, err := compile(a)
	if err != nil {
		return nil, err
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			s := pipeline.ScopeOf(r.Context())
			if s == nil || s.Identity == nil {
				return pipeline.Deny(http.StatusForbidden, CodeDenied, "access denied")
			}
			if rule := p.check(r, s); rule != "" {
				return pipeline.DenyErr(http.StatusForbidden, CodeDenied, "access denied", ruleError(rule))
			}
			return next(w, r)
		}
	}, nil
}

type ruleError string

func (e ruleError) Error() string { return "policy: " + string(e) }

func compile(a *config.Authorize) (*policy, error) {
	p := &policy{
		any: a.AnyAuthenticated, scopesAll: a.ScopesAll, scopesAny: a.ScopesAny,
		rolesAll: a.RolesAll, rolesAny: a.RolesAny, claims: a.Claims, headers: a.Headers,
	}
	if len(a.Bind) > 0 {
		p.bind = map[string][]string{}
		for param, claim := range a.Bind {
			p.bind[param] = strings.Split(claim, ".")
		}
	}
	if a.CEL != "" {
		prog, err := compileCEL(a.CEL)
		if err != nil {
			return nil, err
		}
		p.prog = prog
	}
	if len(a.Methods) > 0 {
		p.methods = map[string]*policy{}
		for m, sub := range a.Methods {
			sp, err := compile(sub)
			if err != nil {
				return nil, fmt.Errorf("methods.%s: %w", m, err)
			}
			p.methods[m] = sp
		}
	}
	return p, nil
}

// check returns the first failing rule, or "".
func (p *policy) check(r *http.Request, s *pipeline.Scope) string {
	if p.any {
		return ""
	}
	id := s.Identity
	for _, sc := range p.scopesAll {
		if !slices.Contains(id.Scopes, sc) {
			return "scopes_all: missing " + sc
		}
	}
	if len(p.scopesAny) > 0 && !anyIn(id.Scopes, p.scopesAny) {
		return "scopes_any"
	}
	for _, ro := range p.rolesAll {
		if !slices.Contains(id.Roles, ro) {
			return "roles_all: missing " + ro
		}
	}
	if len(p.rolesAny) > 0 && !anyIn(id.Roles, p.rolesAny) {
		return "roles_any"
	}
	for claim, allowed := range p.claims {
		if !claimIn(claimValue(id, strings.Split(claim, ".")), allowed) {
			return "claims." + claim
		}
	}
	for param, path := range p.bind {
		v, ok := s.Params[param]
		want, isStr := scalarString(claimValue(id, path))
		// Security: compared on the decoded value of the normalised
		// path's segment, so no encoding reaches another user's object.
		if !ok || !isStr || v == "" || v != want {
			return "bind." + param
		}
	}
	if p.prog != nil {
		out, _, err := p.prog.Eval(activation(r, s, p.headers))
		if err != nil {
			return "cel: " + err.Error()
		}
		if b, ok := out.Value().(bool); !ok || !b {
			return "cel"
		}
	}
	if sub := p.methods[r.Method]; sub != nil {
		if rule := sub.check(r, s); rule != "" {
			return "methods." + r.Method + "." + rule
		}
	}
	return ""
}

func anyIn(have, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

// claimValue reads a claim of the identity: sub and iss from the
// identity itself, anything else from its exposed claims (dotted path).
func claimValue(id *pipeline.Identity, path []string) any {
	if len(path) == 1 {
		switch path[0] {
		case "sub":
			return id.Subject
		case "iss":
			return id.Issuer
		case "method":
			return id.Method
		}
	}
	return pipeline.ClaimPath(id.Claims, path)
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func claimIn(v any, allowed []string) bool {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if s, ok := scalarString(e); ok && slices.Contains(allowed, s) {
				return true
			}
		}
		return false
	}
	s, ok := scalarString(v)
	return ok && slices.Contains(allowed, s)
}

// compileCEL type-checks a boolean expression over identity, request and
// now.
func compileCEL(expr string) (cel.Program, error) {
	env, err := cel.NewEnv(
		cel.Variable("identity", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("now", cel.TimestampType),
	)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("cel %q: %v", expr, iss.Err())
	}
	if ast.OutputType() != cel.BoolType {
		return nil, fmt.Errorf("cel %q: must be a boolean expression, is %s", expr, ast.OutputType())
	}
	return env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(10000))
}

func activation(r *http.Request, s *pipeline.Scope, headers []string) map[string]any {
	id := s.Identity
	claims := id.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	params := map[string]any{}
	for k, v := range s.Params {
		params[k] = v
	}
	hdrs := map[string]any{}
	for _, h := range headers {
		hdrs[strings.ToLower(h)] = r.Header.Get(h)
	}
	return map[string]any{
		"identity": map[string]any{
			"sub": id.Subject, "iss": id.Issuer, "method": id.Method,
			"scopes": strList(id.Scopes), "roles": strList(id.Roles), "claims": claims,
		},
		"request": map[string]any{
			"method": r.Method, "path": s.Path, "params": params, "headers": hdrs, "client_ip": s.ClientIPText, "host": s.Host,
		},
		"now": time.Now(),
	}
}

func strList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
