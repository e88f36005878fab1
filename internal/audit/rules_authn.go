package audit

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

var authnRules = []Rule{
	{
		ID: "RA-AUTHN-001", Practice: Authenticate, Severity: High,
		Title: "A route that exposes internals is public",
		Why:   "Admin, debug, actuator and metrics endpoints let whoever reaches them read or change a service's internals; public, they are anyone's.",
		Refs:  []string{"CWE-306", "OWASP API5:2023", "OWASP API8:2023"},
		Fix:   "auth: {jwt: [corp]}\nauthorize: {roles_all: [admin]}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if w, ok := hasSegment(r, internalWords); ok && r.Public {
					ck.route(i, "public", "route %q (%s) is public and its path names %q", r.ID, r.Path+r.Prefix, w)
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-002", Practice: Authenticate, Severity: Medium,
		Title: "A payment route is public",
		Why:   "A payment anyone can call without an identity can only be limited by address, which attackers rotate; card testing and voucher abuse follow.",
		Refs:  []string{"CWE-306", "OWASP API6:2023"},
		Fix:   "auth: {jwt: [corp]}\nauthorize: {scopes_all: [\"payments:write\"]}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.Public && r.Category == "payment" {
					ck.route(i, "public", "route %q is a payment route (category payment) and is public", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-003", Practice: Authenticate, Severity: Medium,
		Title: "An API key alone authenticates a route",
		Why:   "API keys are long-lived bearer secrets without expiry, audience or holder binding; they identify a client, they do not authenticate a user.",
		Refs:  []string{"CWE-287", "OWASP API2:2023", "NIST SP 800-204 MS-SS-3"},
		Fix:   "auth: {jwt: [corp], api_key: true, combine: all_of}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				a := r.Auth
				if a == nil || !a.APIKey {
					continue
				}
				alone := len(a.JWT)+len(a.Introspection) == 0 && !a.MTLS
				if alone || a.Combine != "all_of" {
					ck.route(i, "auth.api_key", "route %q accepts an API key as its only credential", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-004", Practice: Authenticate, Severity: Medium,
		Title: "Tokens of any lifetime are accepted",
		Why:   "Without a maximum lifetime a token minted to last a year is accepted until it expires; a stolen one stays useful that long.",
		Refs:  []string{"CWE-613", "RFC 8725 §3.10"},
		Fix:   "auth: {jwt: [corp], max_token_lifetime: 1h}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if bearer(r) && r.Auth.MaxTokenLifetime == 0 {
					ck.route(i, "auth", "route %q sets no max_token_lifetime", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-005", Practice: Authenticate, Severity: Medium,
		Title: "Tokens valid for more than a day are accepted",
		Why:   "Access tokens are meant to be short-lived (minutes to an hour) and renewed; a day-long token outlives the session it was issued for.",
		Refs:  []string{"CWE-613", "RFC 9700 §2.2"},
		Fix:   "auth: {max_token_lifetime: 1h}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if bearer(r) && r.Auth.MaxTokenLifetime.D() > 24*time.Hour {
					ck.route(i, "auth.max_token_lifetime", "route %q accepts tokens valid for %s", r.ID, r.Auth.MaxTokenLifetime.D())
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-006", Practice: Authenticate, Severity: High,
		Title: "An issuer's tokens are signed with a shared secret (HS*)",
		Why:   "With HMAC every party that can verify a token can also mint one; one leaked copy of the secret forges any identity.",
		Refs:  []string{"CWE-321", "RFC 8725 §3.5"},
		Fix:   "algorithms: [ES256]\njwks_url: https://login.example.com/jwks.json",
		Check: func(c *config.Config, ck *checker) {
			for i, j := range c.Authn.JWT {
				for k, a := range j.Algorithms {
					if strings.HasPrefix(a, "HS") {
						ck.at(fmt.Sprintf("authn.jwt[%d].algorithms[%d]", i, k), "issuer %q accepts %s", j.Name, a)
					}
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-007", Practice: Authenticate, Severity: Medium,
		Title: "Tokens are read from the query string",
		Why:   "A token in the URL is written to access logs, proxies' logs, browser history and Referer headers.",
		Refs:  []string{"CWE-598", "RFC 6750 §5.3"},
		Fix:   "auth: {jwt: [corp]}   # Authorization: Bearer, the default",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.Auth != nil && r.Auth.TokenQueryParam != "" {
					ck.route(i, "auth.token_query_param", "route %q reads tokens from query parameter %q", r.ID, r.Auth.TokenQueryParam)
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-008", Practice: Authenticate, Severity: Medium,
		Title: "Tokens are read from a cookie",
		Why:   "A browser sends cookies with requests other sites trigger, so a cookie-borne token makes the route open to cross-site request forgery.",
		Refs:  []string{"CWE-352"},
		Fix:   "auth: {jwt: [corp]}   # Authorization: Bearer, the default",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.Auth != nil && r.Auth.TokenCookie != "" {
					ck.route(i, "auth.token_cookie", "route %q reads tokens from cookie %q", r.ID, r.Auth.TokenCookie)
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-009", Practice: Authenticate, Severity: Medium,
		Title: "Introspected tokens are not checked for an audience",
		Why:   "Without an audience check a token the authorization server issued for any other client or API is accepted here.",
		Refs:  []string{"CWE-287", "RFC 7662 §4"},
		Fix:   "audiences: [orders-api]",
		Check: func(c *config.Config, ck *checker) {
			for i, in := range c.Authn.Introspection {
				if len(in.Audiences) == 0 {
					ck.at(fmt.Sprintf("authn.introspection[%d]", i), "introspection endpoint %q checks no audience", in.Name)
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-010", Practice: Authenticate, Severity: High,
		Title: "An issuer's keys are fetched over plaintext",
		Why:   "Whoever can change the key set in transit can sign tokens the gateway accepts: every identity becomes forgeable.",
		Refs:  []string{"CWE-319", "CWE-347"},
		Fix:   "jwks_url: https://login.example.com/jwks.json   # and drop allow_plaintext",
		Check: func(c *config.Config, ck *checker) {
			for i, j := range c.Authn.JWT {
				if plaintextRemote(j.JWKSURL) || (j.Discovery && plaintextRemote(j.Issuer)) {
					ck.at(fmt.Sprintf("authn.jwt[%d].allow_plaintext", i), "issuer %q's keys are fetched over http:// from a remote host", j.Name)
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-011", Practice: Authenticate, Severity: High,
		Title: "Tokens are introspected over plaintext",
		Why:   "The token and the client secret cross the network readable, and a forged 'active: true' answer admits any token.",
		Refs:  []string{"CWE-319"},
		Fix:   "endpoint: https://login.example.com/oauth2/introspect",
		Check: func(c *config.Config, ck *checker) {
			for i, in := range c.Authn.Introspection {
				if plaintextRemote(in.Endpoint) {
					ck.at(fmt.Sprintf("authn.introspection[%d].endpoint", i), "introspection endpoint %q is http:// to a remote host", in.Name)
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-012", Practice: Authenticate, Severity: Low,
		Title: "An issuer's tokens are not checked for type",
		Why:   "Without a typ check an ID token or another JWT of the same issuer and audience passes as an access token.",
		Refs:  []string{"RFC 9068 §4", "RFC 8725 §3.11"},
		Fix:   "require_type: at+jwt",
		Check: func(c *config.Config, ck *checker) {
			for i, j := range c.Authn.JWT {
				if j.RequireType == "" {
					ck.at(fmt.Sprintf("authn.jwt[%d]", i), "issuer %q sets no require_type", j.Name)
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-013", Practice: Authenticate, Severity: Low,
		Title: "Long-lived tokens cannot be revoked one by one",
		Why:   "Revocation names a token by its jti; a route that accepts tokens for over an hour without requiring one cannot cut off a stolen token early.",
		Refs:  []string{"CWE-613"},
		Fix:   "auth: {jwt: [corp], required_claims: [jti]}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if !bearer(r) || slices.Contains(r.Auth.RequiredClaims, "jti") {
					continue
				}
				if life := r.Auth.MaxTokenLifetime.D(); life == 0 || life > time.Hour {
					ck.route(i, "auth", "route %q accepts tokens for over an hour and does not require jti", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-014", Practice: Authenticate, Severity: Low,
		Title: "An issuer allows more than a minute of clock skew",
		Why:   "Skew extends every token's life and accepts tokens issued 'in the future'; clocks synchronised by NTP need seconds.",
		Refs:  []string{"RFC 7519 §4.1.4"},
		Fix:   "clock_skew: 30s",
		Check: func(c *config.Config, ck *checker) {
			for i, j := range c.Authn.JWT {
				if j.ClockSkew.D() > time.Minute {
					ck.at(fmt.Sprintf("authn.jwt[%d].clock_skew", i), "issuer %q allows %s of skew", j.Name, j.ClockSkew.D())
				}
			}
		},
	},
	{
		ID: "RA-AUTHN-015", Practice: Authenticate, Severity: Medium,
		Title: "Client certificates are accepted with no revocation list",
		Why:   "A client certificate whose key leaked stays valid until it expires unless the listener checks a CRL or a list of revoked serials.",
		Refs:  []string{"CWE-299"},
		Fix:   "tls: {client_ca_file: clients-ca.pem, client_crl_file: clients.crl}",
		Check: func(c *config.Config, ck *checker) {
			for i, l := range c.Listeners {
				if t := l.TLS; t != nil && t.ClientCAFile != "" && t.ClientCRLFile == "" && len(t.ClientRevokedSerials) == 0 {
					ck.at(fmt.Sprintf("listeners[%d].tls.client_ca_file", i), "listener %q verifies client certificates without revocation", l.Name)
				}
			}
		},
	},
}
