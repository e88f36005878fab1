package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
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
}

// allowed reports whether role may perform op.
func allowed(role Role, op string) bool {
	need, ok := permissions[op]
	return ok && role >= need
}

// Principal is an admin user: a name, the SHA-256 of its token and a role.
type Principal struct {
	Name      string
	TokenHash [32]byte
	Role      Role
}

// authenticate finds the principal whose token this is. Every principal's
// hash is compared, in constant time, so neither which principal matched
// nor how much of a token was right shows in the time taken.
func authenticate(ps []Principal, token string) (Principal, bool) {
	if token == "" {
		return Principal{}, false
	}
	sum := sha256.Sum256([]byte(token))
	var found Principal
	ok := false
	for _, p := range ps {
		if subtle.ConstantTimeCompare(sum[:], p.TokenHash[:]) == 1 {
			found, ok = p, true
		}
	}
	return found, ok
}

// bearer is the request's bearer token ("" when none).
func bearer(r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return tok
}
