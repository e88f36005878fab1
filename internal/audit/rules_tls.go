package audit

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

var tlsRules = []Rule{
	{
		ID: "RA-TLS-001", Practice: Encrypt, Severity: High,
		Title: "A plaintext listener is reachable off this host",
		Why:   "Tokens, cookies and personal data cross the network readable and changeable by anyone on the path.",
		Refs:  []string{"CWE-319", "OWASP API8:2023"},
		Fix:   "tls: {cert_file: gateway.crt, key_file: gateway.key}   # or tls: {acme: {email: ops@example.com}}",
		Check: func(c *config.Config, ck *checker) {
			for i, l := range c.Listeners {
				if l.TLS == nil && !loopbackAddress(l.Address) {
					ck.at(fmt.Sprintf("listeners[%d].address", i), "listener %q serves plaintext HTTP on %s", l.Name, l.Address)
				}
			}
		},
	},
	{
		ID: "RA-TLS-002", Practice: Encrypt, Severity: Medium,
		Title: "HSTS is off on a TLS listener",
		Why:   "Without Strict-Transport-Security a browser's first request may go over http://, where an attacker on the path can strip TLS.",
		Refs:  []string{"CWE-319", "RFC 6797"},
		Fix:   "tls: {hsts: {enabled: true, max_age: 365d}}",
		Check: func(c *config.Config, ck *checker) {
			for i, l := range c.Listeners {
				if l.TLS != nil && l.TLS.HSTS.Enabled != nil && !*l.TLS.HSTS.Enabled {
					ck.at(fmt.Sprintf("listeners[%d].tls.hsts.enabled", i), "listener %q sends no HSTS header", l.Name)
				}
			}
		},
	},
	{
		ID: "RA-TLS-003", Practice: Encrypt, Severity: Low,
		Title: "HSTS lasts less than 180 days",
		Why:   "A short max-age lets the protection lapse between visits; scanners and preload lists want at least 180 days.",
		Refs:  []string{"RFC 6797 §11.2"},
		Fix:   "tls: {hsts: {max_age: 365d}}",
		Check: func(c *config.Config, ck *checker) {
			for i, l := range c.Listeners {
				if t := l.TLS; t != nil && t.HSTS.Enabled != nil && *t.HSTS.Enabled && t.HSTS.MaxAge.D() < 180*24*time.Hour {
					ck.at(fmt.Sprintf("listeners[%d].tls.hsts.max_age", i), "listener %q's HSTS max_age is %s", l.Name, t.HSTS.MaxAge.D())
				}
			}
		},
	},
	{
		ID: "RA-TLS-004", Practice: Encrypt, Severity: High,
		Title: "A service is reached over plaintext across the network",
		Why:   "Requests to the service carry the caller's data and the gateway's assertion; in plaintext anyone between the two reads or changes them.",
		Refs:  []string{"CWE-319", "NIST SP 800-204 MS-SS-1"},
		Fix:   "targets: [{url: https://orders.internal:8443}]\ntls: {ca_file: internal-ca.pem}",
		Check: func(c *config.Config, ck *checker) {
			for i, u := range c.Upstreams {
				for j, t := range u.Targets {
					if plaintextRemote(t.URL) {
						ck.at(fmt.Sprintf("upstreams[%d].targets[%d].url", i, j), "upstream %q target %s is http:// to a remote host", u.Name, t.URL)
					}
				}
			}
		},
	},
	{
		ID: "RA-TLS-005", Practice: Encrypt, Severity: Low,
		Title: "The gateway does not authenticate itself to a service (no mTLS)",
		Why:   "Without a client certificate a service cannot refuse connections that do not come from the gateway at the transport layer.",
		Refs:  []string{"NIST SP 800-204 MS-SS-1", "CWE-306"},
		Fix:   "tls: {cert_file: gateway-client.crt, key_file: gateway-client.key}",
		Check: func(c *config.Config, ck *checker) {
			for i, u := range c.Upstreams {
				if usesHTTPS(u) && u.TLS.CertFile == "" {
					ck.at(fmt.Sprintf("upstreams[%d].tls", i), "upstream %q is reached over TLS without a client certificate", u.Name)
				}
			}
		},
	},
	{
		ID: "RA-TLS-006", Practice: Encrypt, Severity: Low,
		Title: "A service's identity is not pinned",
		Why:   "Any certificate the CA bundle trusts for the host name is accepted; pinning the SPIFFE ID or the key narrows that to the one service.",
		Refs:  []string{"CWE-295"},
		Fix:   "tls: {ca_file: internal-ca.pem, spiffe_id: spiffe://example.org/orders}",
		Check: func(c *config.Config, ck *checker) {
			for i, u := range c.Upstreams {
				if usesHTTPS(u) && u.TLS.SPIFFEID == "" && len(u.TLS.SPKISHA256) == 0 {
					ck.at(fmt.Sprintf("upstreams[%d].tls", i), "upstream %q pins neither a SPIFFE ID nor a key", u.Name)
				}
			}
		},
	},
	{
		ID: "RA-TLS-007", Practice: Encrypt, Severity: Medium,
		Title: "Traces are exported over plaintext",
		Why:   "Spans carry routes, client addresses and identities; in plaintext they can be read or forged on the way to the collector.",
		Refs:  []string{"CWE-319"},
		Fix:   "tracing: {endpoint: https://otel-collector.example.com:4318}",
		Check: func(c *config.Config, ck *checker) {
			if t := c.Tracing; t != nil && t.AllowPlaintext && !loopbackEndpoint(t.Endpoint) {
				ck.at("tracing.allow_plaintext", "spans go to %s in plaintext", t.Endpoint)
			}
		},
	},
	{
		ID: "RA-TLS-008", Practice: Encrypt, Severity: Medium,
		Title: "Security events are sent over plaintext",
		Why:   "Events name clients, identities and attacks; in plaintext they can be read, dropped or forged on the way to the SIEM.",
		Refs:  []string{"CWE-319"},
		Fix:   "security_events: {webhook: {url: https://siem.example.com/rampart}}",
		Check: func(c *config.Config, ck *checker) {
			if w := c.SecurityEvents.Webhook; w != nil && plaintextRemote(w.URL) {
				ck.at("security_events.webhook.url", "events go to %s in plaintext", w.URL)
			}
		},
	},
}

// usesHTTPS reports whether one of the upstream's targets is https://.
func usesHTTPS(u config.Upstream) bool {
	for _, t := range u.Targets {
		if strings.HasPrefix(t.URL, "https://") {
			return true
		}
	}
	return false
}

// loopbackEndpoint reports whether an endpoint (a URL or host:port) is
// on loopback.
func loopbackEndpoint(e string) bool {
	if u, err := url.Parse(e); err == nil && u.Host != "" {
		return loopbackHost(u.Hostname())
	}
	host, _, err := net.SplitHostPort(e)
	return err == nil && loopbackHost(host)
}
