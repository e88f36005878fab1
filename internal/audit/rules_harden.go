package audit

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
)

var hardenRules = []Rule{
	{
		ID: "RA-HARD-001", Practice: Harden, Severity: High,
		Title: "The admin listener is reachable off this host without client certificates",
		Why:   "The admin API revokes tokens, bans clients and drains services; off loopback, one leaked token is all an attacker needs.",
		Refs:  []string{"CWE-306", "CWE-308", "OWASP API8:2023"},
		Fix:   "admin: {tls: {cert_file: admin.crt, key_file: admin.key, client_ca_file: operators-ca.pem}}",
		Check: func(c *config.Config, ck *checker) {
			if a := c.Admin; a != nil && !loopbackAddress(a.Address) && (a.TLS == nil || a.TLS.ClientCAFile == "") {
				ck.at("admin.address", "the admin listener on %s accepts tokens alone", a.Address)
			}
		},
	},
	{
		ID: "RA-HARD-002", Practice: Harden, Severity: Medium,
		Title: "One shared admin token, no roles",
		Why:   "Everyone who operates the gateway holds the same all-powerful token: no least privilege, and the journal cannot say who did what.",
		Refs:  []string{"CWE-250", "CWE-1390"},
		Fix:   "admin:\n  principals:\n    - {name: alice, role: operator, token: \"${env:ADMIN_TOKEN_ALICE}\"}\n    - {name: grafana, role: viewer, token: \"${env:ADMIN_TOKEN_GRAFANA}\"}",
		Check: func(c *config.Config, ck *checker) {
			if a := c.Admin; a != nil && a.Token.IsSet() && len(a.Principals) == 0 {
				ck.at("admin.token", "the admin API has a single token with the admin role")
			}
		},
	},
	{
		ID: "RA-HARD-003", Practice: Harden, Severity: Low,
		Title: "Every admin principal has the admin role",
		Why:   "Dashboards and scrapers need viewer, on-call staff operator; giving everyone admin defeats the roles.",
		Refs:  []string{"CWE-250"},
		Fix:   "- {name: grafana, role: viewer, token: \"${env:ADMIN_TOKEN_GRAFANA}\"}",
		Check: func(c *config.Config, ck *checker) {
			a := c.Admin
			if a == nil || len(a.Principals) < 2 {
				return
			}
			for _, p := range a.Principals {
				if p.Role != "admin" {
					return
				}
			}
			ck.at("admin.principals", "all %d admin principals have the admin role", len(a.Principals))
		},
	},
	{
		ID: "RA-HARD-004", Practice: Harden, Severity: Medium,
		Title: "Local state is not encrypted",
		Why:   "Without state.master_key the assertion signing key, the API key store and the runtime state are plain files: a copied disk or backup can sign assertions.",
		Refs:  []string{"CWE-311", "CWE-312"},
		Fix:   "state: {master_key: \"${env:RAMPART_MASTER_KEY}\"}",
		Check: func(c *config.Config, ck *checker) {
			if c.State == nil && (c.Assertion != nil || c.Authn.APIKeys != nil || hasACME(c)) {
				ck.at("state", "secret state is written unencrypted")
			}
		},
	},
	{
		ID: "RA-HARD-005", Practice: Harden, Severity: Critical,
		Title: "A secret is written in the config file",
		Why:   "Config files are committed, copied and printed; a secret in one is a secret in every copy.",
		Refs:  []string{"CWE-798", "CWE-260"},
		Fix:   "token: \"${env:RAMPART_ADMIN_TOKEN}\"   # or ${file:/run/secrets/admin-token}, ${vault:...}",
		Check: func(c *config.Config, ck *checker) {
			walkSecrets(reflect.ValueOf(c).Elem(), "", func(path string, s config.Secret) {
				if s.Literal() {
					ck.at(path, "a literal secret")
				}
			})
		},
	},
	{
		ID: "RA-HARD-006", Practice: Harden, Severity: Low,
		Title: "A listener waits long for request headers",
		Why:   "A long header timeout lets slow clients hold connections open with a byte at a time (Slowloris).",
		Refs:  []string{"CWE-400"},
		Fix:   "limits: {read_header_timeout: 5s}",
		Check: func(c *config.Config, ck *checker) {
			for i, l := range c.Listeners {
				if l.Limits.ReadHeaderTimeout.D() > 10*time.Second {
					ck.at(fmt.Sprintf("listeners[%d].limits.read_header_timeout", i), "listener %q waits %s for headers", l.Name, l.Limits.ReadHeaderTimeout.D())
				}
			}
		},
	},
	{
		ID: "RA-HARD-007", Practice: Harden, Severity: Low,
		Title: "A listener accepts very large headers",
		Why:   "Headers above 64 KiB serve no real client and multiply the memory each connection can hold.",
		Refs:  []string{"CWE-770"},
		Fix:   "limits: {max_header_bytes: 32KiB}",
		Check: func(c *config.Config, ck *checker) {
			for i, l := range c.Listeners {
				if l.Limits.MaxHeaderBytes > 64<<10 {
					ck.at(fmt.Sprintf("listeners[%d].limits.max_header_bytes", i), "listener %q accepts %d bytes of headers", l.Name, l.Limits.MaxHeaderBytes)
				}
			}
		},
	},
	{
		ID: "RA-HARD-008", Practice: Harden, Severity: Medium,
		Title: "Redis is used without a password",
		Why:   "Anyone who reaches the Redis server can reset every limit, lift bans and read idempotency records.",
		Refs:  []string{"CWE-306"},
		Fix:   "rate_limiting: {redis: {password: \"${env:RAMPART_REDIS_PASSWORD}\"}}",
		Check: func(c *config.Config, ck *checker) {
			if r := c.RateLimiting.Redis; r != nil && !r.Password.IsSet() {
				ck.at("rate_limiting.redis", "Redis at %s is used without a password", strings.Join(r.Addresses, ", "))
			}
		},
	},
	{
		ID: "RA-HARD-009", Practice: Harden, Severity: Medium,
		Title: "The admin listener is open to every address that reaches it",
		Why:   "Off loopback the admin API should answer only the operators' network; an allow-list keeps it out of reach of everyone else.",
		Refs:  []string{"CWE-284"},
		Fix:   "admin: {access: {allow: [10.20.0.0/24]}}",
		Check: func(c *config.Config, ck *checker) {
			if a := c.Admin; a != nil && !loopbackAddress(a.Address) && (a.Access == nil || len(a.Access.Allow)+len(a.Access.AllowFiles) == 0) {
				ck.at("admin.address", "the admin listener on %s has no address allow-list", a.Address)
			}
		},
	},
}

// hasACME reports whether a listener obtains certificates by ACME (their
// keys are state).
func hasACME(c *config.Config) bool {
	for _, l := range c.Listeners {
		if l.TLS != nil && l.TLS.ACME != nil {
			return true
		}
	}
	return false
}

var secretType = reflect.TypeOf(config.Secret{})

// walkSecrets calls f with the key path of every secret in v.
func walkSecrets(v reflect.Value, path string, f func(string, config.Secret)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkSecrets(v.Elem(), path, f)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walkSecrets(v.Index(i), fmt.Sprintf("%s[%d]", path, i), f)
		}
	case reflect.Struct:
		if v.Type() == secretType {
			f(path, v.Interface().(config.Secret))
			return
		}
		for i := range v.NumField() {
			field := v.Type().Field(i)
			name, _, _ := strings.Cut(field.Tag.Get("yaml"), ",")
			if !field.IsExported() || name == "" || name == "-" {
				continue
			}
			walkSecrets(v.Field(i), joinKey(path, name), f)
		}
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
