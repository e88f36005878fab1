package audit

import (
	"github.com/rampart-gw/rampart/internal/config"
)

var authzRules = []Rule{
	{
		ID: "RA-AUTHZ-001", Practice: Authorize, Severity: High,
		Title: "Services cannot tell the gateway's requests from anyone else's",
		Why:   "Without a signed assertion per request a service trusts whatever reaches it, so a caller who reaches it directly (or a compromised neighbour) bypasses every check the gateway makes.",
		Refs:  []string{"CWE-288", "NIST SP 800-204 MS-SS-2", "OWASP API8:2023"},
		Fix:   "assertion:\n  issuer: https://gateway.example.com\n  key_file: state/assertion.key",
		Check: func(c *config.Config, ck *checker) {
			if c.Assertion != nil {
				return
			}
			for _, r := range c.Routes {
				if authenticated(r) {
					ck.at("assertion", "routes authenticate callers but no assertion is signed for the services (route %q and others)", r.ID)
					return
				}
			}
		},
	},
	{
		ID: "RA-AUTHZ-002", Practice: Authorize, Severity: Medium,
		Title: "An authenticated route skips the signed assertion",
		Why:   "The service behind it cannot verify that the gateway authenticated the caller; it must trust headers anyone who reaches it can send.",
		Refs:  []string{"CWE-288", "NIST SP 800-204 MS-SS-2"},
		Fix:   "skip_assertion: false",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.SkipAssertion && authenticated(r) && c.Assertion != nil {
					ck.route(i, "skip_assertion", "route %q authenticates callers but sends no assertion", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-AUTHZ-003", Practice: Authorize, Severity: Medium,
		Title: "The caller's token is forwarded to the service",
		Why:   "A service (or whoever compromises it) holding callers' bearer tokens can replay them against every other API that accepts them.",
		Refs:  []string{"CWE-522", "RFC 8693 §1"},
		Fix:   "forward_authorization: false   # the service reads the signed assertion",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.ForwardAuthorization {
					ck.route(i, "forward_authorization", "route %q forwards the caller's Authorization header", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-AUTHZ-004", Practice: Authorize, Severity: Medium,
		Title: "Any authenticated caller may change state",
		Why:   "any_authenticated admits every token of the issuer, whatever it was issued for: function-level authorization is missing on a route that writes.",
		Refs:  []string{"CWE-285", "OWASP API5:2023"},
		Fix:   "authorize: {scopes_all: [\"orders:write\"]}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				a := r.Authorize
				if a == nil || !a.AnyAuthenticated || !changesState(r) || len(a.ScopesAll)+len(a.ScopesAny)+len(a.RolesAll)+len(a.RolesAny)+len(a.Claims) > 0 || a.CEL != "" {
					continue
				}
				ck.route(i, "authorize.any_authenticated", "route %q changes state and requires only an authenticated caller", r.ID)
			}
		},
	},
	{
		ID: "RA-AUTHZ-005", Practice: Authorize, Severity: Low,
		Title: "A policy decides on request headers",
		Why:   "Headers are the client's to set; a policy that reads them can be steered by the caller it is meant to judge.",
		Refs:  []string{"CWE-807", "OWASP API1:2023"},
		Fix:   "authorize: {claims: {tenant: [acme]}}   # decide on verified claims",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.Authorize != nil && len(r.Authorize.Headers) > 0 {
					ck.route(i, "authorize.headers", "route %q's policy reads request headers %v", r.ID, r.Authorize.Headers)
				}
			}
		},
	},
	{
		ID: "RA-AUTHZ-006", Practice: Authorize, Severity: Medium,
		Title: "A public route changes state",
		Why:   "Anyone may write through it; unless the service itself authenticates, writes cannot be attributed, limited per caller or undone per caller.",
		Refs:  []string{"CWE-306", "OWASP API5:2023"},
		Fix:   "methods: [GET, HEAD]   # or auth: {jwt: [corp]} with a policy",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.Public && changesState(r) && r.Category != "login" && r.Category != "account" {
					ck.route(i, "public", "public route %q accepts %s", r.ID, methodsText(r))
				}
			}
		},
	},
	{
		ID: "RA-AUTHZ-007", Practice: Authorize, Severity: Medium,
		Title: "Client-sent decision fields are not stripped",
		Why:   "Headers and parameters such as X-Role, X-Plan or is_admin reach services that may trust them to decide who the caller is.",
		Refs:  []string{"CWE-807", "CWE-639"},
		Fix:   "decision_fields: {}   # the default list of headers and parameters",
		Check: func(c *config.Config, ck *checker) {
			if len(c.DecisionFields.Headers) == 0 {
				ck.at("decision_fields.headers", "no decision headers are removed from requests")
			}
			if len(c.DecisionFields.QueryParams) == 0 {
				ck.at("decision_fields.query_params", "no decision parameters are removed from requests")
			}
		},
	},
	{
		ID: "RA-AUTHZ-008", Practice: Authorize, Severity: Low,
		Title: "The client's Host reaches a service unchecked",
		Why:   "With preserve_host and no hosts list, links, redirects and cache keys a service builds from Host can be poisoned by the caller.",
		Refs:  []string{"CWE-644"},
		Fix:   "hosts: [api.example.com]",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.PreserveHost && len(r.Hosts) == 0 {
					ck.route(i, "preserve_host", "route %q preserves Host but lists no hosts", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-AUTHZ-009", Practice: Authorize, Severity: Low,
		Title: "Signed assertions are reused across requests",
		Why:   "A reused assertion is no longer bound to one request: one captured on the way to a service can be replayed for others within its lifetime.",
		Refs:  []string{"CWE-294"},
		Fix:   "assertion: {reuse: 0s}   # one assertion per request",
		Check: func(c *config.Config, ck *checker) {
			if a := c.Assertion; a != nil && a.Reuse > 0 {
				ck.at("assertion.reuse", "assertions are reused for %s", a.Reuse.D())
			}
		},
	},
	{
		ID: "RA-AUTHZ-010", Practice: Authorize, Severity: Medium,
		Title: "Client-sent identity headers reach services",
		Why:   "Services that read X-User-* or X-Forwarded-User to learn the caller can be told any identity by the caller.",
		Refs:  []string{"CWE-290"},
		Fix:   "strip_identity_headers: [\"X-Auth-*\", \"X-User-*\", X-Forwarded-User, X-Remote-User]",
		Check: func(c *config.Config, ck *checker) {
			if len(c.StripIdentityHeaders) == 0 {
				ck.at("strip_identity_headers", "no identity headers are removed from requests")
			}
		},
	},
}

// methodsText names a route's methods for a message.
func methodsText(r config.Route) string {
	if len(r.Methods) == 0 {
		return "every method"
	}
	s := ""
	for i, m := range r.Methods {
		if i > 0 {
			s += ", "
		}
		s += m
	}
	return s
}
