package audit

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// clean follows every practice: no rule may find anything in it. The
// file is placed in examples/ so that its certificates and document
// resolve.
const clean = `version: 1
listeners:
  - name: public
    address: 0.0.0.0:8443
    tls:
      cert_file: tls/gateway.crt
      key_file: tls/gateway.key
      client_ca_file: tls/ca.pem
      client_crl_file: tls/clients.crl
    trusted_proxies: [10.0.0.0/16]
    limits: {max_connections_per_ip: 256}
upstreams:
  - name: orders
    targets: [{url: "https://orders.internal:8443"}]
    tls: {ca_file: tls/ca.pem, cert_file: tls/client.crt, key_file: tls/client.key, spiffe_id: "spiffe://example.org/orders"}
authn:
  jwt:
    - name: corp
      issuer: https://login.example.com
      jwks_url: https://login.example.com/jwks.json
      audiences: [orders-api]
      algorithms: [ES256]
      require_type: at+jwt
assertion:
  issuer: https://gateway.example.com
  key_file: state/assertion.key
rate_limiting:
  redis: {addresses: ["redis.internal:6379"], password: "${env:AUDIT_TEST_SECRET}"}
abuse:
  anomaly: {}
routes:
  - id: orders
    path: /v1/orders/{orderId}
    methods: [GET, HEAD]
    upstream: orders
    auth: {jwt: [corp], max_token_lifetime: 1h}
    authorize: {scopes_all: ["orders:read"]}
    rate_limits:
      - {key: [client_ip], rate: 300, per: 1m}
      - {key: [subject], rate: 120, per: 1m}
    openapi: {spec: specs/orders.yaml}
  - id: create
    path: /v1/orders
    methods: [POST]
    upstream: orders
    auth: {jwt: [corp], max_token_lifetime: 15m}
    authorize: {scopes_all: ["orders:write"]}
    rate_limits:
      - {key: [client_ip], rate: 60, per: 1m}
      - {key: [subject], rate: 10, per: 1m}
    max_body_bytes: 64KiB
    validate: {content_types: [application/json]}
    openapi: {spec: specs/orders.yaml}
    waf: {paranoia: 1}
  - id: catalog
    path: /v1/catalog
    methods: [GET]
    upstream: orders
    public: true
    rate_limits:
      - {key: [client_ip], rate: 600, per: 1m}
    openapi: {spec: specs/orders.yaml}
  # more routes
admin:
  address: 127.0.0.1:9901
  principals:
    - {name: alice, role: operator, token: "${env:AUDIT_TEST_SECRET}"}
    - {name: grafana, role: viewer, token: "${env:AUDIT_TEST_SECRET_2}"}
tracing: {endpoint: "otel.example.com:4318"}
security_events: {output: stdout}
journal: {output: /var/lib/rampart/journal.jsonl, checkpoint_key: "${env:AUDIT_TEST_SECRET}"}
state: {master_key: "${env:AUDIT_TEST_MASTER_KEY}"}
docs: {title: Test API}
discovery: {}
`

// edit changes the clean config.
type edit func(string) string

// sub replaces old (which must occur) by repl.
func sub(old, repl string) edit {
	return func(s string) string {
		if !strings.Contains(s, old) {
			panic(fmt.Sprintf("edit: %q not in the config", old))
		}
		return strings.Replace(s, old, repl, 1)
	}
}

// in adds indented lines to the route with id.
func in(id, lines string) edit { return sub("  - id: "+id+"\n", "  - id: "+id+"\n"+lines) }

// route adds a route.
func route(yaml string) edit { return sub("  # more routes\n", yaml+"  # more routes\n") }

// top adds top-level sections.
func top(yaml string) edit { return func(s string) string { return s + yaml } }

// drop removes a line.
func drop(line string) edit { return sub(line, "") }

func chain(es ...edit) edit {
	return func(s string) string {
		for _, e := range es {
			s = e(s)
		}
		return s
	}
}

func same(s string) string { return s }

// ruleCases are each rule's bad config (the rule must find it) and a
// good one as close to it as can be (the rule must not).
var ruleCases = map[string]struct{ bad, good edit }{
	"RA-AUTHN-001": {route("  - {id: adm, prefix: /admin, upstream: orders, public: true}\n"),
		route("  - {id: adm, prefix: /administration-guide, upstream: orders, public: true, methods: [GET], rate_limits: [{key: [client_ip], rate: 5, per: 1m}], openapi: {spec: specs/orders.yaml}}\n")},
	"RA-AUTHN-002": {route("  - {id: pay, path: /pay, methods: [POST], upstream: orders, public: true}\n"),
		route("  - {id: pay, path: /pay, methods: [POST], upstream: orders, auth: {jwt: [corp]}, authorize: {scopes_all: [pay]}}\n")},
	"RA-AUTHN-003": {chain(sub("authn:\n", "authn:\n  api_keys: {secret: \"${env:AUDIT_TEST_SECRET}\", file: state/keys.db}\n"), sub("auth: {jwt: [corp], max_token_lifetime: 1h}", "auth: {jwt: [corp], api_key: true, combine: any_of, max_token_lifetime: 1h}")),
		chain(sub("authn:\n", "authn:\n  api_keys: {secret: \"${env:AUDIT_TEST_SECRET}\", file: state/keys.db}\n"), sub("auth: {jwt: [corp], max_token_lifetime: 1h}", "auth: {jwt: [corp], api_key: true, combine: all_of, max_token_lifetime: 1h}"))},
	"RA-AUTHN-004": {sub("auth: {jwt: [corp], max_token_lifetime: 1h}", "auth: {jwt: [corp]}"), same},
	"RA-AUTHN-005": {sub("max_token_lifetime: 1h", "max_token_lifetime: 48h"), sub("max_token_lifetime: 1h", "max_token_lifetime: 24h")},
	"RA-AUTHN-006": {sub("      jwks_url: https://login.example.com/jwks.json\n      audiences: [orders-api]\n      algorithms: [ES256]",
		"      keys: [{algorithm: HS256, secret: \"${env:AUDIT_TEST_MASTER_KEY}\"}]\n      audiences: [orders-api]\n      algorithms: [HS256]"), same},
	"RA-AUTHN-007": {sub("max_token_lifetime: 15m}", "max_token_lifetime: 15m, token_query_param: access_token}"), same},
	"RA-AUTHN-008": {sub("max_token_lifetime: 15m}", "max_token_lifetime: 15m, token_cookie: session}"), same},
	"RA-AUTHN-009": {sub("authn:\n", "authn:\n  introspection:\n    - {name: as, endpoint: https://login.example.com/introspect, client_id: gw, client_secret: \"${env:AUDIT_TEST_SECRET}\"}\n"),
		sub("authn:\n", "authn:\n  introspection:\n    - {name: as, endpoint: https://login.example.com/introspect, client_id: gw, client_secret: \"${env:AUDIT_TEST_SECRET}\", audiences: [orders-api]}\n")},
	"RA-AUTHN-010": {sub("jwks_url: https://login.example.com/jwks.json", "jwks_url: http://login.example.com/jwks.json\n      allow_plaintext: true"),
		sub("jwks_url: https://login.example.com/jwks.json", "jwks_url: http://127.0.0.1:8081/jwks.json\n      allow_plaintext: true")},
	"RA-AUTHN-011": {sub("authn:\n", "authn:\n  introspection:\n    - {name: as, endpoint: http://login.example.com/introspect, allow_plaintext: true, audiences: [a], client_id: gw, client_secret: \"${env:AUDIT_TEST_SECRET}\"}\n"),
		sub("authn:\n", "authn:\n  introspection:\n    - {name: as, endpoint: http://127.0.0.1:9000/introspect, allow_plaintext: true, audiences: [a], client_id: gw, client_secret: \"${env:AUDIT_TEST_SECRET}\"}\n")},
	"RA-AUTHN-012": {drop("      require_type: at+jwt\n"), same},
	"RA-AUTHN-013": {sub("max_token_lifetime: 1h", "max_token_lifetime: 2h"), sub("max_token_lifetime: 1h}", "max_token_lifetime: 2h, required_claims: [jti]}")},
	"RA-AUTHN-014": {sub("      require_type: at+jwt\n", "      require_type: at+jwt\n      clock_skew: 5m\n"), sub("      require_type: at+jwt\n", "      require_type: at+jwt\n      clock_skew: 1m\n")},
	"RA-AUTHN-015": {drop("      client_crl_file: tls/clients.crl\n"), sub("      client_crl_file: tls/clients.crl\n", "      client_revoked_serials: [\"01\"]\n")},

	"RA-AUTHZ-001": {chain(sub("assertion:\n  issuer: https://gateway.example.com\n  key_file: state/assertion.key\n", "")), same},
	"RA-AUTHZ-002": {in("create", "    skip_assertion: true\n"), in("catalog", "    skip_assertion: true\n")},
	"RA-AUTHZ-003": {in("create", "    forward_authorization: true\n"), same},
	"RA-AUTHZ-004": {sub("authorize: {scopes_all: [\"orders:write\"]}", "authorize: {any_authenticated: true}"), sub("authorize: {scopes_all: [\"orders:read\"]}", "authorize: {any_authenticated: true}")},
	"RA-AUTHZ-005": {sub("authorize: {scopes_all: [\"orders:read\"]}", "authorize: {scopes_all: [\"orders:read\"], headers: [X-Tenant], cel: \"request.headers['x-tenant'] == 'a'\"}"), same},
	"RA-AUTHZ-006": {route("  - {id: hook, path: /v1/hooks, methods: [POST], upstream: orders, public: true}\n"), route("  - {id: signup, path: /v1/signup, methods: [POST], upstream: orders, public: true}\n")},
	"RA-AUTHZ-007": {top("decision_fields: {headers: [], query_params: []}\n"), top("decision_fields: {headers: [X-Role], query_params: [role]}\n")},
	"RA-AUTHZ-008": {in("catalog", "    preserve_host: true\n"), in("catalog", "    preserve_host: true\n    hosts: [api.example.com]\n")},
	"RA-AUTHZ-009": {sub("  key_file: state/assertion.key\n", "  key_file: state/assertion.key\n  reuse: 10s\n"), same},
	"RA-AUTHZ-010": {top("strip_identity_headers: []\n"), top("strip_identity_headers: [X-User-*]\n")},

	"RA-TLS-001": {sub("    tls:\n      cert_file: tls/gateway.crt\n      key_file: tls/gateway.key\n      client_ca_file: tls/ca.pem\n      client_crl_file: tls/clients.crl\n", ""),
		chain(sub("    tls:\n      cert_file: tls/gateway.crt\n      key_file: tls/gateway.key\n      client_ca_file: tls/ca.pem\n      client_crl_file: tls/clients.crl\n", ""), sub("0.0.0.0:8443", "127.0.0.1:8080"))},
	"RA-TLS-002": {sub("      key_file: tls/gateway.key\n", "      key_file: tls/gateway.key\n      hsts: {enabled: false}\n"), sub("      key_file: tls/gateway.key\n", "      key_file: tls/gateway.key\n      hsts: {enabled: true}\n")},
	"RA-TLS-003": {sub("      key_file: tls/gateway.key\n", "      key_file: tls/gateway.key\n      hsts: {max_age: 30d}\n"), sub("      key_file: tls/gateway.key\n", "      key_file: tls/gateway.key\n      hsts: {max_age: 180d}\n")},
	"RA-TLS-004": {sub("upstreams:\n", "upstreams:\n  - {name: legacy, targets: [{url: \"http://legacy.internal:8080\"}], allow_plaintext: true}\n"),
		sub("upstreams:\n", "upstreams:\n  - {name: legacy, targets: [{url: \"http://127.0.0.1:8080\"}], allow_plaintext: true}\n")},
	"RA-TLS-005": {sub(", cert_file: tls/client.crt, key_file: tls/client.key", ""), same},
	"RA-TLS-006": {sub(", spiffe_id: \"spiffe://example.org/orders\"", ""), sub(", spiffe_id: \"spiffe://example.org/orders\"", ", spki_sha256: [\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]")},
	"RA-TLS-007": {sub("tracing: {endpoint: \"otel.example.com:4318\"}", "tracing: {endpoint: \"otel.example.com:4318\", allow_plaintext: true}"),
		sub("tracing: {endpoint: \"otel.example.com:4318\"}", "tracing: {endpoint: \"127.0.0.1:4318\", allow_plaintext: true}")},
	"RA-TLS-008": {sub("security_events: {output: stdout}", "security_events: {output: stdout, webhook: {url: \"http://siem.example.com/in\", allow_plaintext: true}}"),
		sub("security_events: {output: stdout}", "security_events: {output: stdout, webhook: {url: \"https://siem.example.com/in\"}}")},

	"RA-RATE-001": {route("  - {id: login, path: /v1/login, methods: [POST], upstream: orders, public: true, abuse_account: {json_field: user}}\n"),
		route("  - {id: login, path: /v1/login, methods: [POST], upstream: orders, public: true, abuse_account: {json_field: user}, rate_limits: [{rate: 5, per: 1m}]}\n")},
	"RA-RATE-002": {sub("      - {key: [client_ip], rate: 600, per: 1m}\n", "      - {key: [route], rate: 6000, per: 1m}\n"), same},
	"RA-RATE-003": {sub("trusted_proxies: [10.0.0.0/16]", "trusted_proxies: [0.0.0.0/0]"), sub("trusted_proxies: [10.0.0.0/16]", "trusted_proxies: [10.0.0.0/8, 192.168.0.0/16]")},
	"RA-RATE-004": {sub("trusted_proxies: [10.0.0.0/16]", "trusted_proxies: [173.245.48.0/20]"), same},
	"RA-RATE-005": {in("create", "    sensitive: true\n"), chain(in("create", "    sensitive: true\n"), sub("      - {key: [subject], rate: 10, per: 1m}\n", "      - {key: [subject], rate: 10, per: 1m, on_store_error: fail_closed}\n"), sub("      - {key: [client_ip], rate: 60, per: 1m}\n", "      - {key: [client_ip], rate: 60, per: 1m, store: local}\n"))},
	"RA-RATE-006": {sub("abuse:\n  anomaly: {}\n", ""), same},
	"RA-RATE-007": {drop("      - {key: [subject], rate: 120, per: 1m}\n"), sub("      - {key: [subject], rate: 120, per: 1m}\n", "      - {key: [\"claim:tenant\"], rate: 120, per: 1m}\n")},
	"RA-RATE-008": {sub("abuse:\n  anomaly: {}\n", "abuse:\n  anomaly: {}\n  brute_force: {disabled: true}\n"), sub("abuse:\n  anomaly: {}\n", "abuse:\n  anomaly: {}\n  scanning: {disabled: true}\n")},
	"RA-RATE-009": {in("catalog", "    overload: {off: true}\n"), in("catalog", "    overload: {off: true}\n    stream: true\n")},
	"RA-RATE-010": {sub("    limits: {max_connections_per_ip: 256}\n", ""), chain(sub("    limits: {max_connections_per_ip: 256}\n", ""), sub("0.0.0.0:8443", "127.0.0.1:8443"))},
	"RA-RATE-011": {route("  - {id: login, path: /v1/login, methods: [POST], upstream: orders, public: true, rate_limits: [{rate: 5, per: 1m}]}\n"),
		route("  - {id: login, path: /v1/login, methods: [POST], upstream: orders, public: true, rate_limits: [{rate: 5, per: 1m}], abuse_account: {form_field: user}}\n")},

	"RA-VALID-001": {chain(sub("    max_body_bytes: 64KiB\n    validate: {content_types: [application/json]}\n    openapi: {spec: specs/orders.yaml}\n", "    max_body_bytes: 8MiB\n")),
		sub("    max_body_bytes: 64KiB\n", "    max_body_bytes: 8MiB\n")},
	"RA-VALID-002": {sub("    waf: {paranoia: 1}\n", "    waf: {paranoia: 1, detection_only: true}\n"), in("catalog", "    waf: {detection_only: true}\n")},
	"RA-VALID-003": {sub("    waf: {paranoia: 1}\n", "    waf: {paranoia: 1, anomaly_threshold: 25}\n"), sub("    waf: {paranoia: 1}\n", "    waf: {paranoia: 1, anomaly_threshold: 10}\n")},
	"RA-VALID-004": {sub("    openapi: {spec: specs/orders.yaml}\n    waf", "    openapi: {spec: specs/orders.yaml, undocumented: monitor}\n    waf"), same},
	"RA-VALID-005": {in("catalog", "    cors: {origins: [\"https://*.example.com\"], credentials: true}\n"), in("catalog", "    cors: {origins: [\"https://shop.example.com\"], credentials: true}\n")},
	"RA-VALID-006": {top("response_headers: {remove: [X-Frame-Options]}\n"), top("response_headers: {remove: [Server]}\n")},
	"RA-VALID-007": {sub("validate: {content_types: [application/json]}", "validate: {content_types: [application/json], json: {allow_duplicate_names: true}}"),
		sub("validate: {content_types: [application/json]}", "validate: {content_types: [application/json], json: {max_depth: 8}}")},
	"RA-VALID-008": {route("  - {id: upload, path: /v1/upload, methods: [PUT], upstream: orders, auth: {jwt: [corp], max_token_lifetime: 1h}, authorize: {scopes_all: [u]}, rate_limits: [{key: [subject], rate: 1, per: 1s}]}\n"),
		route("  - {id: upload, path: /v1/upload, methods: [PUT], upstream: orders, auth: {jwt: [corp], max_token_lifetime: 1h}, authorize: {scopes_all: [u]}, rate_limits: [{key: [subject], rate: 1, per: 1s}], openapi: {spec: specs/orders.yaml}}\n")},
	"RA-VALID-009": {sub("    waf: {paranoia: 1}\n", "    waf: {paranoia: 1, exclude_tags: [attack-sqli]}\n"), sub("    waf: {paranoia: 1}\n", "    waf: {paranoia: 1, exclude_tags: [language-php]}\n")},
	"RA-VALID-010": {in("create", "    sensitive: true\n"), chain(in("create", "    sensitive: true\n"), sub("    openapi: {spec: specs/orders.yaml}\n    waf", "    openapi: {spec: specs/orders.yaml, response: enforce}\n    waf"))},
	"RA-VALID-011": {sub("    max_body_bytes: 64KiB\n", "    max_body_bytes: 512KiB\n"), sub("    max_body_bytes: 64KiB\n", "    max_body_bytes: 128KiB\n")},
	"RA-VALID-012": {in("catalog", "    cors: {origins: [\"*\"]}\n"), in("catalog", "    cors: {origins: [\"https://shop.example.com\"]}\n")},

	"RA-MON-001": {top("access_log: {enabled: false}\n"), top("access_log: {enabled: true}\n")},
	"RA-MON-002": {sub("security_events: {output: stdout}", "security_events: {enabled: false}"), same},
	"RA-MON-003": {sub("admin:\n  address: 127.0.0.1:9901\n  principals:\n    - {name: alice, role: operator, token: \"${env:AUDIT_TEST_SECRET}\"}\n    - {name: grafana, role: viewer, token: \"${env:AUDIT_TEST_SECRET_2}\"}\n", ""), same},
	"RA-MON-004": {sub("tracing: {endpoint: \"otel.example.com:4318\"}", "tracing: {endpoint: \"otel.example.com:4318\", trust_incoming: all}"),
		sub("tracing: {endpoint: \"otel.example.com:4318\"}", "tracing: {endpoint: \"otel.example.com:4318\", trust_incoming: none}")},
	"RA-MON-005": {drop("tracing: {endpoint: \"otel.example.com:4318\"}\n"), same},
	"RA-MON-006": {sub("abuse:\n  anomaly: {}\n", "abuse:\n  ban_for: 1m\n"), same},
	"RA-MON-007": {drop("journal: {output: /var/lib/rampart/journal.jsonl, checkpoint_key: \"${env:AUDIT_TEST_SECRET}\"}\n"), same},
	"RA-MON-008": {top("access_log: {output: /dev/null}\n"), top("access_log: {output: /var/log/rampart/access.log}\n")},

	"RA-HARD-001": {sub("  address: 127.0.0.1:9901\n", "  address: 0.0.0.0:9901\n  allow_remote: true\n  tls: {cert_file: tls/gateway.crt, key_file: tls/gateway.key}\n  access: {allow: [10.20.0.0/24]}\n"),
		sub("  address: 127.0.0.1:9901\n", "  address: 0.0.0.0:9901\n  allow_remote: true\n  tls: {cert_file: tls/gateway.crt, key_file: tls/gateway.key, client_ca_file: tls/ca.pem}\n  access: {allow: [10.20.0.0/24]}\n")},
	"RA-HARD-002": {sub("  principals:\n    - {name: alice, role: operator, token: \"${env:AUDIT_TEST_SECRET}\"}\n    - {name: grafana, role: viewer, token: \"${env:AUDIT_TEST_SECRET_2}\"}\n", "  token: \"${env:AUDIT_TEST_SECRET}\"\n"), same},
	"RA-HARD-003": {chain(sub("role: operator", "role: admin"), sub("role: viewer", "role: admin")), sub("role: viewer", "role: admin")},
	"RA-HARD-004": {drop("state: {master_key: \"${env:AUDIT_TEST_MASTER_KEY}\"}\n"), chain(drop("state: {master_key: \"${env:AUDIT_TEST_MASTER_KEY}\"}\n"), drop("assertion:\n  issuer: https://gateway.example.com\n  key_file: state/assertion.key\n"))},
	"RA-HARD-005": {sub("token: \"${env:AUDIT_TEST_SECRET_2}\"", "token: \"a-literal-admin-token-0123456789abcdef\""), same},
	"RA-HARD-006": {sub("    limits: {max_connections_per_ip: 256}\n", "    limits: {max_connections_per_ip: 256, read_header_timeout: 1m}\n"), sub("    limits: {max_connections_per_ip: 256}\n", "    limits: {max_connections_per_ip: 256, read_header_timeout: 10s}\n")},
	"RA-HARD-007": {sub("    limits: {max_connections_per_ip: 256}\n", "    limits: {max_connections_per_ip: 256, max_header_bytes: 1MiB}\n"), sub("    limits: {max_connections_per_ip: 256}\n", "    limits: {max_connections_per_ip: 256, max_header_bytes: 64KiB}\n")},
	"RA-HARD-008": {sub(", password: \"${env:AUDIT_TEST_SECRET}\"", ""), same},
	"RA-HARD-009": {sub("  address: 127.0.0.1:9901\n", "  address: 0.0.0.0:9901\n  allow_remote: true\n  tls: {cert_file: tls/gateway.crt, key_file: tls/gateway.key, client_ca_file: tls/ca.pem}\n"),
		sub("  address: 127.0.0.1:9901\n", "  address: 0.0.0.0:9901\n  allow_remote: true\n  tls: {cert_file: tls/gateway.crt, key_file: tls/gateway.key, client_ca_file: tls/ca.pem}\n  access: {allow: [10.20.0.0/24]}\n")},

	"RA-DOC-001": {sub("      - {key: [client_ip], rate: 600, per: 1m}\n    openapi: {spec: specs/orders.yaml}\n", "      - {key: [client_ip], rate: 600, per: 1m}\n"), same},
	"RA-DOC-002": {same, same}, // the documents differ: see documentsFor
	"RA-DOC-003": {same, same},
	"RA-DOC-004": {drop("discovery: {}\n"), same},
	"RA-DOC-005": {drop("docs: {title: Test API}\n"), same},
}

// setEnv sets the secrets the test configs reference.
func setEnv(t *testing.T) {
	t.Setenv("AUDIT_TEST_SECRET", "audit-test-secret-0123456789abcdef0123")
	t.Setenv("AUDIT_TEST_SECRET_2", "audit-test-secret-2-0123456789abcdef0123")
	t.Setenv("AUDIT_TEST_MASTER_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
}

// parse loads a test config as a file in examples/ (literal secrets
// allowed, so that the rule that reports them can see one).
func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.ParseWith([]byte(yaml), "../../examples/audit-test.yaml", config.LoadOptions{AllowLiteralSecrets: true})
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	return cfg
}

func TestCleanConfigHasNoFindings(t *testing.T) {
	setEnv(t)
	r := Run(parse(t, clean), Options{Documents: documentsFor("clean")})
	for _, f := range r.Findings {
		t.Errorf("finding in the clean config: %s", f)
	}
	if r.Grade != "A" || r.Score != 100 {
		t.Errorf("grade %s (%d), want A (100)", r.Grade, r.Score)
	}
}

func TestEveryRuleFindsItsCaseAndOnlyIt(t *testing.T) {
	setEnv(t)
	for _, rule := range Rules() {
		t.Run(rule.ID, func(t *testing.T) {
			c, ok := ruleCases[rule.ID]
			if !ok {
				t.Fatal("no test case: add a bad and a good config to ruleCases")
			}
			docs := documentsFor(rule.ID)
			bad := RunRules(parse(t, c.bad(clean)), Options{Documents: docs}, []Rule{rule})
			if len(bad.Findings) == 0 {
				t.Fatalf("found nothing in the bad config")
			}
			for _, f := range bad.Findings {
				if f.Rule != rule.ID || f.Line <= 0 || f.File == "" || f.Message == "" || f.Path == "" {
					t.Errorf("incomplete finding: %+v", f)
				}
			}
			if good := RunRules(parse(t, c.good(clean)), Options{Documents: documentsFor("clean")}, []Rule{rule}); len(good.Findings) > 0 {
				t.Errorf("finding in the good config: %s", good.Findings[0])
			}
		})
	}
}

func TestRuleCatalogue(t *testing.T) {
	rules := Rules()
	if len(rules) < 50 {
		t.Errorf("%d rules, want at least 50", len(rules))
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.ID] {
			t.Errorf("duplicate id %s", r.ID)
		}
		seen[r.ID] = true
		prefix := map[Practice]string{Authenticate: "RA-AUTHN-", Authorize: "RA-AUTHZ-", Encrypt: "RA-TLS-", RateLimit: "RA-RATE-",
			Validate: "RA-VALID-", Monitor: "RA-MON-", Harden: "RA-HARD-", Document: "RA-DOC-"}[r.Practice]
		if prefix == "" || !strings.HasPrefix(r.ID, prefix) {
			t.Errorf("%s: id does not name its practice %q", r.ID, r.Practice)
		}
		if r.Severity < Low || r.Severity > Critical || r.Title == "" || r.Fix == "" || (r.Check == nil && r.Documents == nil) {
			t.Errorf("%s: incomplete rule", r.ID)
		}
		if !strings.HasSuffix(r.Why, ".") || strings.Count(strings.TrimSuffix(r.Why, "."), ". ") > 0 {
			t.Errorf("%s: why must be one sentence: %q", r.ID, r.Why)
		}
	}
	for id := range ruleCases {
		if !seen[id] {
			t.Errorf("test case for unknown rule %s", id)
		}
	}
}

// documentsFor reads the attached documents from disk, except that for
// the document rules' bad cases it breaks them: a string without a
// length limit (a lint error) or an operation without a 500 response
// (a lint warning).
func documentsFor(id string) func(string) ([]byte, error) {
	return func(path string) ([]byte, error) {
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		switch id {
		case "RA-DOC-002":
			src = []byte(strings.Replace(string(src), "sku: {type: string, maxLength: 20, ", "sku: {type: string, ", 1))
		case "RA-DOC-003":
			src = []byte(strings.Replace(string(src), "        \"500\": {$ref: \"#/components/responses/Problem\"}\n", "", 1))
		}
		return src, nil
	}
}
