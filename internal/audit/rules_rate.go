package audit

import (
	"fmt"
	"net/netip"

	"github.com/rampart-gw/rampart/internal/config"
)

var rateRules = []Rule{
	{
		ID: "RA-RATE-001", Practice: RateLimit, Severity: High,
		Title: "A login, recovery or payment route has no rate limit",
		Why:   "Credential guessing, card testing and code brute force are many cheap requests; without a limit they run at the speed of the network.",
		Refs:  []string{"CWE-307", "OWASP API4:2023", "OWASP API6:2023"},
		Fix:   "rate_limits:\n  - {key: [client_ip], rate: 5, per: 1m}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if credentialRoute(r) && len(r.RateLimits) == 0 {
					ck.route(i, "", "route %q (%s) has no rate limit", r.ID, r.Category)
				}
			}
		},
	},
	{
		ID: "RA-RATE-002", Practice: RateLimit, Severity: Medium,
		Title: "A public route has no per-client limit",
		Why:   "One client can take the whole capacity of a public route (and of the service behind it) without any identity to ban.",
		Refs:  []string{"CWE-770", "OWASP API4:2023"},
		Fix:   "rate_limits:\n  - {key: [client_ip], rate: 600, per: 1m}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.Public && !keyedBy(r, config.LimitKeyClientIP) {
					ck.route(i, "", "public route %q has no rate limit keyed by client_ip", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-RATE-003", Practice: RateLimit, Severity: High,
		Title: "Trusted proxies cover more than a private network",
		Why:   "Every address in trusted_proxies may name the client in X-Forwarded-For; trusting the internet lets any client choose its own address and escape per-IP limits and bans.",
		Refs:  []string{"CWE-348", "CWE-290"},
		Fix:   "trusted_proxies: [10.0.0.0/16]   # only your load balancers",
		Check: func(c *config.Config, ck *checker) {
			eachTrusted(c, func(path, name string, p netip.Prefix) {
				if !withinPrivate(p) && p.Bits() < broadBits(p) {
					ck.at(path, "listener %q trusts X-Forwarded-For from %s", name, p)
				}
			})
		},
	},
	{
		ID: "RA-RATE-004", Practice: RateLimit, Severity: Low,
		Title: "Public addresses are trusted as proxies",
		Why:   "Right for a CDN's published ranges, and only if the CDN overwrites X-Forwarded-For; anyone else in those ranges can name any client.",
		Refs:  []string{"CWE-348"},
		Fix:   "trusted_proxies: [10.0.0.0/16]   # or exactly your CDN's published ranges",
		Check: func(c *config.Config, ck *checker) {
			eachTrusted(c, func(path, name string, p netip.Prefix) {
				if !withinPrivate(p) && p.Bits() >= broadBits(p) {
					ck.at(path, "listener %q trusts the public range %s", name, p)
				}
			})
		},
	},
	{
		ID: "RA-RATE-005", Practice: RateLimit, Severity: Medium,
		Title: "A sensitive route's shared limit fails open",
		Why:   "With on_store_error: fail_open an attacker who makes Redis slow or unreachable lifts the limit on the routes that need it most.",
		Refs:  []string{"CWE-636"},
		Fix:   "rate_limits:\n  - {key: [client_ip], rate: 5, per: 1m, on_store_error: fail_closed}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if !sensitive(r) {
					continue
				}
				for j, rl := range r.RateLimits {
					if rl.Store == "redis" && rl.OnStoreError == "fail_open" {
						ck.route(i, fmt.Sprintf("rate_limits[%d]", j), "route %q's limit %q fails open when Redis fails", r.ID, rl.Name)
					}
				}
			}
		},
	},
	{
		ID: "RA-RATE-006", Practice: RateLimit, Severity: Medium,
		Title: "No behaviour-based abuse detection",
		Why:   "Fixed limits do not see brute force spread under the limit, scanning or enumeration; the abuse detectors do, and ban.",
		Refs:  []string{"OWASP API4:2023", "OWASP API6:2023"},
		Fix:   "abuse: {ban_for: 15m}",
		Check: func(c *config.Config, ck *checker) {
			if c.Abuse == nil {
				ck.at("abuse", "the abuse section is not set: no brute-force, scanning or enumeration detection")
			}
		},
	},
	{
		ID: "RA-RATE-007", Practice: RateLimit, Severity: Low,
		Title: "An authenticated route has no per-caller limit",
		Why:   "A limit by address alone lets one caller spread its requests over many addresses; a limit by identity follows the caller.",
		Refs:  []string{"OWASP API4:2023"},
		Fix:   "rate_limits:\n  - {key: [subject], rate: 120, per: 1m}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if authenticated(r) && !keyedBy(r, config.LimitKeySubject, config.LimitKeyAPIKey, config.LimitKeyClaim) && len(r.Quotas) == 0 {
					ck.route(i, "", "authenticated route %q has no limit keyed by the caller", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-RATE-008", Practice: RateLimit, Severity: Medium,
		Title: "The brute-force detector is off",
		Why:   "Repeated failed authentications are the signature of credential guessing; without the detector nobody is banned for them.",
		Refs:  []string{"CWE-307"},
		Fix:   "abuse: {brute_force: {threshold: 10, window: 1m}}",
		Check: func(c *config.Config, ck *checker) {
			if c.Abuse != nil && c.Abuse.BruteForce.Disabled {
				ck.at("abuse.brute_force.disabled", "brute-force detection is disabled")
			}
		},
	},
	{
		ID: "RA-RATE-009", Practice: RateLimit, Severity: Low,
		Title: "Load shedding is off on a route",
		Why:   "Past its capacity the route queues without bound: every caller waits seconds, and other routes wait with it.",
		Refs:  []string{"CWE-400"},
		Fix:   "overload: {}   # the default: an adaptive concurrency limit",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.Overload != nil && r.Overload.Off && !r.Stream {
					ck.route(i, "overload.off", "route %q sheds no load", r.ID)
				}
			}
		},
	},
	{
		ID: "RA-RATE-010", Practice: RateLimit, Severity: Low,
		Title: "A listener does not bound connections per client address",
		Why:   "One address can hold the listener's whole connection budget open (slow clients, idle keep-alives) and starve everyone else.",
		Refs:  []string{"CWE-770"},
		Fix:   "limits: {max_connections_per_ip: 256}",
		Check: func(c *config.Config, ck *checker) {
			for i, l := range c.Listeners {
				if l.Limits.MaxConnectionsPerIP == 0 && !loopbackAddress(l.Address) {
					ck.at(fmt.Sprintf("listeners[%d].limits", i), "listener %q has no max_connections_per_ip", l.Name)
				}
			}
		},
	},
	{
		ID: "RA-RATE-011", Practice: RateLimit, Severity: Low,
		Title: "A login route does not count attempts per account",
		Why:   "Credential stuffing tries one account from many addresses; only counting by the account named in the body catches it.",
		Refs:  []string{"CWE-307", "OWASP API2:2023"},
		Fix:   "abuse_account: {json_field: username, form_field: username}",
		Check: func(c *config.Config, ck *checker) {
			for i, r := range c.Routes {
				if r.Category == "login" && r.Public && takesBody(r) && r.AbuseAccount == nil {
					ck.route(i, "", "login route %q does not name its account field (abuse_account)", r.ID)
				}
			}
		},
	},
}

// broadBits is the prefix length below which a public range is the
// internet rather than one organisation's network.
func broadBits(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 16
	}
	return 32
}

// eachTrusted calls f for every trusted proxy range of every listener.
func eachTrusted(c *config.Config, f func(path, listener string, p netip.Prefix)) {
	for i, l := range c.Listeners {
		for j, s := range l.TrustedProxies {
			if p, err := config.ParsePrefix(s); err == nil {
				f(fmt.Sprintf("listeners[%d].trusted_proxies[%d]", i, j), l.Name, p)
			}
		}
	}
}
