package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadConfigsGolden loads every testdata/bad/*.yaml and compares the
// full error report (every problem, with file:line and key path) with its
// .golden file. Regenerate with -update.
func TestBadConfigsGolden(t *testing.T) {
	t.Setenv("RAMPART_TEST_SHORT_SECRET", "only-16-bytes!!!")
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no test configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatal("bad config loaded without error")
			}
			var b strings.Builder
			for _, fe := range FieldErrors(err) {
				b.WriteString(fe.Error())
				b.WriteByte('\n')
			}
			got := b.String()
			if got == "" {
				t.Fatalf("error is not made of FieldErrors: %v", err)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("errors changed:\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

func TestErrorsNameFileLineAndPath(t *testing.T) {
	_, err := Load("testdata/bad/many_problems.yaml")
	want := "testdata/bad/many_problems.yaml:16: routes[0].upstream: unknown upstream \"ordrs\" (did you mean \"orders\"?)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("want %q in:\n%v", want, err)
	}
	if n := len(FieldErrors(err)); n < 10 {
		t.Fatalf("only %d problems reported; all must be reported at once", n)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`version: 1
listeners:
  - name: l
    address: 127.0.0.1:0
    tls: {cert_file: ../../examples/tls/gateway.crt, key_file: ../../examples/tls/gateway.key}
upstreams:
  - name: u
    targets: [{url: "https://u.internal"}]
    health_check: {path: /h}
    circuit_breaker: {}
routes:
  - id: r
    prefix: /
    upstream: u
    public: true
`), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Listeners[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"read_header_timeout", l.Limits.ReadHeaderTimeout.D(), DefaultReadHeaderTimeout},
		{"read_timeout", l.Limits.ReadTimeout.D(), DefaultReadTimeout},
		{"write_timeout", l.Limits.WriteTimeout.D(), DefaultWriteTimeout},
		{"idle_timeout", l.Limits.IdleTimeout.D(), DefaultIdleTimeout},
		{"max_header_bytes", int64(l.Limits.MaxHeaderBytes), int64(64 << 10)},
		{"max_connections", l.Limits.MaxConnections, DefaultMaxConnections},
		{"max_body_bytes", int64(l.Limits.MaxBodyBytes), int64(1 << 20)},
		{"hsts", *l.TLS.HSTS.Enabled && *l.TLS.HSTS.IncludeSubdomains && !l.TLS.HSTS.Preload, true},
		{"hsts max_age", l.TLS.HSTS.MaxAge.D(), DefaultHSTSMaxAge},
		{"balance", cfg.Upstreams[0].Balance, "round_robin"},
		{"weight", cfg.Upstreams[0].Targets[0].Weight, 1},
		{"connect", cfg.Upstreams[0].Timeouts.Connect.D(), DefaultConnectTimeout},
		{"response", cfg.Upstreams[0].Timeouts.Response.D(), DefaultResponseTimeout},
		{"health interval", cfg.Upstreams[0].HealthCheck.Interval.D(), DefaultHealthInterval},
		{"passive", *cfg.Upstreams[0].Passive.Enabled, true},
		{"breaker", cfg.Upstreams[0].CircuitBreaker.ConsecutiveFailures, DefaultBreakerFailures},
		{"retries", cfg.Routes[0].Retries.Attempts, DefaultRetryAttempts},
		{"retry on", strings.Join(cfg.Routes[0].Retries.On, ","), "connect_failure"},
		{"access log", *cfg.AccessLog.Enabled && cfg.AccessLog.Output == "stdout", true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "key")
	if err := os.WriteFile(f, []byte("from-file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RAMPART_TEST_KEY", "from-env-secret")
	base := `version: 1
listeners: [{name: l, address: "127.0.0.1:0"}]
upstreams:
  - name: u
    targets: [{url: "https://u.internal"}]
    credential: {header: X-Key, value: "%s"}
routes: [{id: r, prefix: /, upstream: u, public: true}]
`
	for ref, want := range map[string]string{"${env:RAMPART_TEST_KEY}": "from-env-secret", "${file:" + f + "}": "from-file-secret"} {
		cfg, err := Parse([]byte(strings.Replace(base, "%s", ref, 1)), "s.yaml")
		if err != nil {
			t.Fatal(err)
		}
		s := cfg.Upstreams[0].Credential.Value
		if s.Reveal() != want || s.Literal() || len(cfg.Warnings) != 0 {
			t.Errorf("%s: got %q literal=%v warnings=%v", ref, s.Reveal(), s.Literal(), cfg.Warnings)
		}
		for _, out := range []string{s.String(), s.GoString(), s.LogValue().String()} {
			if strings.Contains(out, want) {
				t.Errorf("secret printed: %q", out)
			}
		}
	}
	// A fixed prefix before one reference.
	cfg, err := Parse([]byte(strings.Replace(base, "%s", "Bearer ${env:RAMPART_TEST_KEY}", 1)), "s.yaml")
	if err != nil || cfg.Upstreams[0].Credential.Value.Reveal() != "Bearer from-env-secret" || cfg.Upstreams[0].Credential.Value.Literal() {
		t.Errorf("prefixed reference: %v", err)
	}
	for _, bad := range []string{"${env:RAMPART_TEST_KEY} suffix", "a ${env:RAMPART_TEST_KEY}${env:RAMPART_TEST_KEY}", "Bearer ${env:RAMPART_TEST_KEY"} {
		if _, err := Parse([]byte(strings.Replace(base, "%s", bad, 1)), "s.yaml"); err == nil || !strings.Contains(err.Error(), "s.yaml:6: upstreams[0].credential.value") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// A literal is an error, with the way out named; with that way out, a
	// warning.
	literal := []byte(strings.Replace(base, "%s", "literal-secret-value", 1))
	if _, err := Parse(literal, "s.yaml"); err == nil || !strings.Contains(err.Error(), "s.yaml:6: upstreams[0].credential.value: literal secret in config") ||
		!strings.Contains(err.Error(), "--allow-literal-secrets") {
		t.Errorf("literal secret: %v", err)
	}
	cfg, err = ParseWith(literal, "s.yaml", LoadOptions{AllowLiteralSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), "s.yaml:6: upstreams[0].credential.value: literal secret") {
		t.Errorf("literal secret warning: %v", cfg.Warnings)
	}
}

func TestEmptyAndMultiDocument(t *testing.T) {
	if _, err := Parse([]byte(""), "e.yaml"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty: %v", err)
	}
	if _, err := Parse([]byte("version: 1\n---\nversion: 1\n"), "m.yaml"); err == nil || !strings.Contains(err.Error(), "more than one") {
		t.Errorf("multi-document: %v", err)
	}
	if _, err := Load("testdata/does-not-exist.yaml"); err == nil || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseValues(t *testing.T) {
	for in, want := range map[string]int64{"65536": 65536, "64KiB": 65536, "1MiB": 1 << 20, "1MB": 1000000, "10 KiB": 10240} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"-1", "1TiB", "KiB", "1.5MiB", ""} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
	for _, in := range []string{"-5s", "5", "5 s", "d", "40000d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

// TestOptOutWarnings: opting out of a protection is never silent:
// duplicate JSON names and the former home of ipv6_prefix warn; two
// different prefixes are an error.
func TestOptOutWarnings(t *testing.T) {
	base := "version: 1\nlisteners: [{name: public, address: \"127.0.0.1:8080\"}]\nupstreams: [{name: svc, allow_plaintext: true, targets: [{url: \"http://127.0.0.1:9\"}]}]\n"
	route := "routes:\n  - {id: r, prefix: /, upstream: svc, public: true, validate: {json: {allow_duplicate_names: true}}}\n"
	cfg, err := Parse([]byte(base+"rate_limiting: {ipv6_prefix: 56}\n"+route), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, w := range cfg.Warnings {
		all = append(all, w.Error())
	}
	got := strings.Join(all, "\n")
	for _, want := range []string{"w.yaml:6: routes[0].validate.json.allow_duplicate_names:", "rate_limiting.ipv6_prefix: moved to client_ip.ipv6_prefix"} {
		if !strings.Contains(got, want) {
			t.Errorf("no warning %q in:\n%s", want, got)
		}
	}
	if cfg.ClientIP.IPv6Prefix != 56 {
		t.Errorf("the former ipv6_prefix is not used: %d", cfg.ClientIP.IPv6Prefix)
	}
	if _, err := Parse([]byte(base+"client_ip: {ipv6_prefix: 64}\nrate_limiting: {ipv6_prefix: 56}\n"+route), "w.yaml"); err == nil || !strings.Contains(err.Error(), "rate_limiting.ipv6_prefix") {
		t.Errorf("two different prefixes: %v", err)
	}
}

// TestEnumsEnforcedByDecoder: a value outside a field's enum tag is an
// error at its line, reported together with the other problems.
func TestEnumsEnforcedByDecoder(t *testing.T) {
	_, err := Parse([]byte(`version: 1
listeners: [{name: public, address: "127.0.0.1:8080"}]
upstreams: [{name: svc, allow_plaintext: true, balance: fastest, targets: [{url: "http://127.0.0.1:9"}]}]
tracing: {endpoint: "127.0.0.1:4317", protocol: udp}
routes:
  - id: r
    prefix: /
    upstream: nowhere
    public: true
    openapi: {spec: /tmp/x.yaml, undocumented: refus}
    retries: {on: [connect_failure, timeout]}
`), "e.yaml")
	got := ""
	for _, fe := range FieldErrors(err) {
		got += fe.Error() + "\n"
	}
	for _, want := range []string{
		`e.yaml:3: upstreams[0].balance: "fastest": use round_robin, least_requests or consistent_hash`,
		`e.yaml:4: tracing.protocol: "udp": use http`,
		`e.yaml:10: routes[0].openapi.undocumented: "refus": use refuse or monitor`,
		`e.yaml:11: routes[0].retries.on[1]: "timeout": use connect_failure, 502, 503 or 504`,
		`routes[0].upstream: unknown upstream "nowhere"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

// TestPreserveHostWarning: forwarding the client's Host on a route that
// names no hosts is reported; with hosts it is not.
func TestPreserveHostWarning(t *testing.T) {
	base := "version: 1\nlisteners: [{name: public, address: \"127.0.0.1:8080\"}]\nupstreams: [{name: svc, allow_plaintext: true, targets: [{url: \"http://127.0.0.1:9\"}]}]\nroutes:\n"
	for _, c := range []struct {
		route string
		warn  bool
	}{
		{"  - {id: r, prefix: /, upstream: svc, public: true, preserve_host: true}\n", true},
		{"  - {id: r, prefix: /, upstream: svc, public: true, preserve_host: true, hosts: [shop.example.com]}\n", false},
	} {
		cfg, err := Parse([]byte(base+c.route), "h.yaml")
		if err != nil {
			t.Fatal(err)
		}
		got := false
		for _, w := range cfg.Warnings {
			got = got || strings.Contains(w.Error(), "routes[0].preserve_host")
		}
		if got != c.warn {
			t.Errorf("%s: warning %v, want %v", c.route, got, c.warn)
		}
	}
}

// TestCredentialValueChecked: a credential whose value would break the
// header it travels in (a secret file with a second line) is refused at
// load, without printing the secret.
func TestCredentialValueChecked(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "token")
	os.WriteFile(f, []byte("s3cr3t-value\nX-Admin: 1\n"), 0o600)
	_, err := Parse([]byte(`version: 1
listeners: [{name: public, address: "127.0.0.1:8080"}]
upstreams: [{name: svc, credential: {header: Authorization, value: "${file:`+f+`}"}, targets: [{url: "https://svc.internal"}]}]
routes: [{id: r, prefix: /, upstream: svc, public: true}]
`), "c.yaml")
	if err == nil || !strings.Contains(err.Error(), "upstreams[0].credential.value: holds control characters") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatal("the error prints the secret")
	}
}

// TestEveryProblemAtOnce: an unset variable, a short admin token and a
// missing certificate are reported together, sorted by line, and the
// unset variable is not reported a second time as "required".
func TestEveryProblemAtOnce(t *testing.T) {
	t.Setenv("RAMPART_TEST_SHORT", "short")
	_, err := Parse([]byte(`version: 1
listeners:
  - name: public
    address: 127.0.0.1:8443
    tls: {cert_file: /nonexistent/gw.crt, key_file: /nonexistent/gw.key}
upstreams:
  - name: u
    targets: [{url: "https://u.internal"}]
    credential: {header: X-Key, value: "${env:RAMPART_TEST_UNSET_FOR_SURE}"}
routes: [{id: r, prefix: /, upstream: u, public: true}]
admin: {token: "${env:RAMPART_TEST_SHORT}"}
`), "all.yaml")
	want := []string{
		"all.yaml:5: listeners[0].tls.cert_file: /nonexistent/gw.crt does not exist",
		"all.yaml:5: listeners[0].tls.key_file: /nonexistent/gw.key does not exist",
		"all.yaml:9: upstreams[0].credential.value: secret reference: environment variable RAMPART_TEST_UNSET_FOR_SURE is not set",
		"all.yaml:11: admin.token: must be at least 32 bytes",
	}
	fe := FieldErrors(err)
	if len(fe) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(fe), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(fe[i].Error(), w) {
			t.Errorf("problem %d: %s\nwant %s", i, fe[i], w)
		}
	}
}

// Categories are inferred from path segments, then from the methods.
func TestInferCategory(t *testing.T) {
	for _, c := range []struct {
		path    string
		methods []string
		want    string
	}{
		{"/v1/orders/{id}/checkout", []string{"POST"}, "payment"},
		{"/vouchers/redeem", nil, "payment"},
		{"/oauth/token", []string{"POST"}, "login"},
		{"/admin/users", nil, "admin"},
		{"/v1/me", []string{"GET", "PATCH"}, "account"},
		{"/search", []string{"GET"}, "search"},
		{"/assets/app.js", []string{"GET"}, "static"},
		{"/v1/orders", []string{"GET", "HEAD"}, "read"},
		{"/v1/orders", []string{"GET", "POST"}, "write"},
		{"/v1/orders", nil, "write"},
		{"/v1/payroll", []string{"GET"}, "read"}, // a segment, not a substring
	} {
		if got := InferCategory(c.path, c.methods); got != c.want {
			t.Errorf("%s %v: %s, want %s", c.path, c.methods, got, c.want)
		}
	}
	cfg, err := Parse([]byte(`version: 1
listeners: [{name: p, address: "127.0.0.1:0"}]
upstreams: [{name: u, allow_plaintext: true, targets: [{url: "http://127.0.0.1:9"}]}]
routes:
  - {id: pay, path: /pay, upstream: u, public: true}
  - {id: list, path: /items, methods: [GET], upstream: u, public: true}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pay, list := cfg.Routes[0], cfg.Routes[1]
	if pay.Category != "payment" || *pay.MaxInFlightPerIdentity != 1 || pay.Race.Action != "refuse" || pay.Race.Requests != 2 ||
		list.Category != "read" || *list.MaxInFlightPerIdentity != 0 || list.Race.Action != "off" {
		t.Fatalf("defaults: %+v %+v / %+v %+v", pay, pay.Race, list, list.Race)
	}
}

// Shedding is on for every route but streams, with its defaults; its
// limits are checked and a bad one is named by its key and line.
func TestOverloadDefaultsAndProblems(t *testing.T) {
	cfg, err := Parse([]byte(`version: 1
listeners: [{name: l, address: 127.0.0.1:8080}]
upstreams: [{name: u, allow_plaintext: true, targets: [{url: "http://127.0.0.1:9"}]}]
routes:
  - {id: api, prefix: /api, upstream: u, public: true}
  - {id: events, prefix: /events, upstream: u, public: true, stream: true}
  - {id: tuned, prefix: /t, upstream: u, public: true, overload: {queue: 0, tolerance: 3}}
`), "o.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if o := cfg.Routes[0].Overload; o.Off || o.MinLimit != 2 || o.MaxLimit != 1000 || o.Tolerance != 2 || *o.Queue != 16 || o.MaxWait.D() != 50*time.Millisecond {
		t.Errorf("defaults %+v", o)
	}
	if !cfg.Routes[1].Overload.Off {
		t.Error("a stream route sheds by default")
	}
	if o := cfg.Routes[2].Overload; *o.Queue != 0 || o.Tolerance != 3 || o.MinLimit != 2 {
		t.Errorf("tuned: %+v", o)
	}
	_, err = Parse([]byte(`version: 1
listeners: [{name: l, address: 127.0.0.1:8080}]
upstreams: [{name: u, allow_plaintext: true, targets: [{url: "http://127.0.0.1:9"}]}]
routes:
  - id: api
    prefix: /api
    upstream: u
    public: true
    overload: {min_limit: 5, max_limit: 3, tolerance: 1, queue: -1, max_wait: 1m}
`), "o.yaml")
	for _, w := range []string{"o.yaml:9: routes[0].overload.max_limit", "o.yaml:9: routes[0].overload.tolerance",
		"o.yaml:9: routes[0].overload.queue", "o.yaml:9: routes[0].overload.max_wait"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want %q in %v", w, err)
		}
	}
}

// DeferSecrets judges a config whose secrets are not present: every
// reference (env, file, vault) stands for a distinct placeholder, and
// malformed references are still errors.
func TestDeferSecrets(t *testing.T) {
	yaml := `version: 1
listeners: [{name: l, address: "127.0.0.1:0"}]
vault: {address: "https://vault.example.com", token: "${env:RAMPART_TEST_UNSET_VAULT_TOKEN}"}
admin:
  principals:
    - {name: a, role: admin, token: "${env:RAMPART_TEST_UNSET_A}"}
    - {name: b, role: viewer, token: "${file:/nonexistent/rampart-token}"}
    - {name: c, role: viewer, token: "${vault:secret/data/rampart#token}"}
routes: []
`
	if _, err := Parse([]byte(yaml), "defer.yaml"); err == nil {
		t.Fatal("unset references accepted without DeferSecrets")
	}
	cfg, err := ParseWith([]byte(yaml), "defer.yaml", LoadOptions{DeferSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range cfg.Admin.Principals {
		if !p.Token.IsSet() || p.Token.Literal() || seen[p.Token.Reveal()] {
			t.Errorf("principal %s: token %v", p.Name, p.Token.Ref())
		}
		seen[p.Token.Reveal()] = true
	}
	novault := strings.Replace(yaml, "vault: {address: \"https://vault.example.com\", token: \"${env:RAMPART_TEST_UNSET_VAULT_TOKEN}\"}\n", "", 1)
	if _, err := ParseWith([]byte(novault), "defer.yaml", LoadOptions{DeferSecrets: true}); err == nil || !strings.Contains(err.Error(), "needs a vault section") {
		t.Errorf("a vault reference without a vault section: %v", err)
	}
	bad := strings.Replace(yaml, "${env:RAMPART_TEST_UNSET_A}", "${env:}", 1)
	if _, err := ParseWith([]byte(bad), "defer.yaml", LoadOptions{DeferSecrets: true}); err == nil || !strings.Contains(err.Error(), "admin.principals[0].token") {
		t.Errorf("malformed reference: %v", err)
	}
}
