package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
)

// Role is what a principal may do; each role includes the ones below it.
type Role int

// Roles, least first.
const (
	Viewer Role = iota + 1
	Operator
	Admin
)

// ParseRole reads a configured role name (checked at load).
func ParseRole(s string) Role {
	switch s {
	case "admin":
		return Admin
	case "operator":
		return Operator
	}
	return Viewer
}

func (r Role) String() string {
	return map[Role]string{Viewer: "viewer", Operator: "operator", Admin: "admin"}[r]
}

// Operations of the admin listener.
const (
	OpMetrics       = "metrics.read"
	OpDashboardRead = "dashboard.read"
	OpBansLift      = "bans.lift"
)

// permissions is the one table of who may do what: the least role an
// operation needs. Deny by default: an operation not listed needs a role
// no principal has.
var permissions = map[string]Role{
	OpMetrics:       Viewer,
	OpDashboardRead: Viewer,
	OpPlanRead:      Viewer,
	OpBansRead:      Viewer,
	OpEventsRead:    Viewer,
	OpAPIDoc:        Viewer,
	OpRevokeRead:    Viewer,
	OpRevoke:        Operator,
	OpDrain:         Operator,
	OpKeysRead:      Viewer,
	OpKeysManage:    Admin,
	OpBansLift:      Operator,
	OpBansAdd:       Operator,
	OpReload:        Admin,
	OpRotateKey:     Admin,
	OpDiscovery:     Viewer,
	OpPosture:       Viewer,
}

// operations lists, sorted, the operations role may perform (the
// dashboard shows the actions of those).
func operations(role Role) []string {
	var ops []string
	for op := range permissions {
		if allowed(role, op) {
			ops = append(ops, op)
		}
	}
	slices.Sort(ops)
	return ops
}

// allowed reports whether role may perform op.
func allowed(role Role, op string) bool {
	need, ok := permissions[op]
	return ok && role >= need
}

// Principal is an admin user: a name, a role, and its credentials: the
// SHA-256 of its token and/or the subject alternative name of its client
// certificate.
type Principal struct {
	Name      string
	TokenHash [32]byte // zero: no token
	CertSAN   string
	Role      Role
}

// authenticate finds the principal of a request: by token when one is
// sent (every principal's hash is compared, in constant time, so neither
// which principal matched nor how much of a token was right shows in the
// time taken), else by the client certificate the TLS handshake
// verified.
func authenticate(ps []Principal, token string, r *http.Request) (Principal, bool) {
	if token == "" {
		return byCertificate(ps, r)
	}
	sum := sha256.Sum256([]byte(token))
	var found Principal
	ok := false
	for _, p := range ps {
		if subtle.ConstantTimeCompare(sum[:], p.TokenHash[:]) == 1 && p.TokenHash != ([32]byte{}) {
			found, ok = p, true
		}
	}
	return found, ok
}

// byCertificate finds the principal named by a subject alternative name
// (DNS, e-mail or URI) of the request's verified client certificate. A
// certificate the handshake did not verify names no one.
func byCertificate(ps []Principal, r *http.Request) (Principal, bool) {
	if r == nil || r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return Principal{}, false
	}
	leaf := r.TLS.VerifiedChains[0][0]
	names := append(append([]string{}, leaf.DNSNames...), leaf.EmailAddresses...)
	for _, u := range leaf.URIs {
		names = append(names, u.String())
	}
	for _, p := range ps {
		if p.CertSAN != "" && slices.Contains(names, p.CertSAN) {
			return p, true
		}
	}
	return Principal{}, false
}

// bearer is the request's bearer token ("" when none).
func bearer(r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return tok
}
