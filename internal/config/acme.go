package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
)

// validateACME checks a listener's acme section.
func (c *Config) validateACME(p *Problems, base, listener string, a *ACME) {
	if c.State == nil {
		p.Add(base, "needs state.master_key: ACME account and certificate keys are stored encrypted")
	}
	if _, err := mail.ParseAddress(a.Email); err != nil || strings.ContainsAny(a.Email, "<> ") {
		p.Add(base+".email", "%q is not an email address", a.Email)
	}
	if u, err := url.Parse(a.CA); err != nil || u.Scheme != "https" || u.Host == "" {
		p.Add(base+".ca", "want an https:// ACME directory URL, letsencrypt or letsencrypt-staging")
	}
	for i, ch := range a.Challenges {
		switch ch {
		case ChallengeTLSALPN01:
		case ChallengeHTTP01:
			if c.PlainListener() == nil {
				p.Add(fmt.Sprintf("%s.challenges[%d]", base, i), "http-01 is answered on a plain (non-TLS) listener, and the config has none")
			}
		default:
			p.Add(fmt.Sprintf("%s.challenges[%d]", base, i), "unknown challenge %q (want http-01 or tls-alpn-01)", ch)
		}
	}
	if !slices.Contains([]string{"p256", "p384", "rsa2048"}, a.KeyType) {
		p.Add(base+".key_type", "unknown key type %q (want p256, p384 or rsa2048)", a.KeyType)
	}
	switch a.Storage {
	case "file":
	case "redis":
		if c.RateLimiting.Redis == nil {
			p.Add(base+".storage", "redis storage needs rate_limiting.redis")
		}
	default:
		p.Add(base+".storage", "unknown storage %q (want file or redis)", a.Storage)
	}
	for i, d := range a.Domains {
		if err := checkACMEName(d); err != nil {
			p.Add(fmt.Sprintf("%s.domains[%d]", base, i), "%v", err)
		}
	}
	if len(a.Domains) == 0 && len(c.ACMEDomains(listener, a)) == 0 && !a.OnDemand {
		p.Add(base+".domains", "no names to obtain certificates for: list domains, or give this listener's routes exact hosts")
	}
}

// checkACMEName accepts a DNS name a CA can validate by http-01 or
// tls-alpn-01: no wildcard (that needs dns-01), no IP address.
func checkACMEName(d string) error {
	switch {
	case strings.Contains(d, "*"):
		return fmt.Errorf("%q: wildcard names need the dns-01 challenge; use on_demand with a wildcard route host instead", d)
	case strings.Trim(d, ".") != d || !strings.Contains(d, "."):
		return fmt.Errorf("%q is not a fully qualified domain name", d)
	}
	for _, r := range d {
		if !(r == '-' || r == '.' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return fmt.Errorf("%q: a domain is lower-case letters, digits, '-' and '.'", d)
		}
	}
	return nil
}

// ACMEDomains are the names a listener's ACME section obtains
// certificates for: its domains, or else the exact hosts of the routes
// served on the listener.
func (c *Config) ACMEDomains(listener string, a *ACME) []string {
	if len(a.Domains) > 0 {
		return a.Domains
	}
	var out []string
	for _, h := range c.ACMEHosts(listener) {
		if !strings.Contains(h, "*") && checkACMEName(h) == nil && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// ACMEHosts are the hosts of the routes served on a listener (exact and
// wildcard), which bound on-demand issuance.
func (c *Config) ACMEHosts(listener string) []string {
	var out []string
	for _, r := range c.Routes {
		if len(r.Listeners) > 0 && !slices.Contains(r.Listeners, listener) {
			continue
		}
		for _, h := range r.Hosts {
			out = append(out, strings.ToLower(h))
		}
	}
	return out
}
