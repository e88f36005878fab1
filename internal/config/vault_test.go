package config

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeVault is a Vault HTTP API with AppRole login, a KV v2 and a KV v1
// secret (the vault/api client talks to it as to a real server).
func fakeVault(t *testing.T, up *atomic.Bool, revoked *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, `{"errors":["sealed"]}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/auth/token/revoke-self" && r.Header.Get("X-Vault-Token") == "tok-from-approle":
			revoked.Add(1)
			w.WriteHeader(http.StatusNoContent)
		case r.Method == "PUT" || r.Method == "POST":
			var body map[string]string
			json.NewDecoder(r.Body).Decode(&body)
			if r.URL.Path != "/v1/auth/approle/login" || body["role_id"] != "role-1" || body["secret_id"] != "secret-1" {
				http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
				return
			}
			w.Write([]byte(`{"auth":{"client_token":"tok-from-approle","lease_duration":60}}`))
		case r.Header.Get("X-Vault-Token") != "tok-from-approle":
			http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
		case r.URL.Path == "/v1/secret/data/rampart":
			w.Write([]byte(`{"data":{"data":{"upstream_key":"kv2-key-value","admin":"kv2-admin-token-0123456789abcdef0123"},"metadata":{"version":3}}}`))
		case r.URL.Path == "/v1/kv1/rampart":
			w.Write([]byte(`{"data":{"upstream_key":"kv1-key-value"}}`))
		default:
			http.Error(w, `{"errors":[]}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestVaultReferences: values come from KV v2 and v1 after an AppRole
// login, with a fixed prefix, and the login's token is revoked once read;
// a missing field, a missing secret and an outage are errors at each
// reference's key and line.
func TestVaultReferences(t *testing.T) {
	var up atomic.Bool
	var revoked atomic.Int32
	up.Store(true)
	srv := fakeVault(t, &up, &revoked)
	t.Setenv("RAMPART_TEST_ROLE", "role-1")
	t.Setenv("RAMPART_TEST_SECRET_ID", "secret-1")
	doc := func(a, b string) string {
		return `version: 1
listeners: [{name: l, address: "127.0.0.1:0"}]
vault:
  address: ` + srv.URL + `
  approle: {role_id: "${env:RAMPART_TEST_ROLE}", secret_id: "${env:RAMPART_TEST_SECRET_ID}"}
upstreams:
  - {name: a, targets: [{url: "https://a.internal"}], credential: {header: X-Key, value: "` + a + `"}}
  - {name: b, targets: [{url: "https://b.internal"}], credential: {header: Authorization, value: "` + b + `"}}
routes: [{id: r, prefix: /, upstream: a, public: true}]
`
	}
	cfg, err := Parse([]byte(doc("${vault:secret/data/rampart#upstream_key}", "Bearer ${vault:kv1/rampart#upstream_key}")), "v.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Upstreams[0].Credential.Value.Reveal(); got != "kv2-key-value" {
		t.Errorf("KV v2: %q", got)
	}
	if got := cfg.Upstreams[1].Credential.Value.Reveal(); got != "Bearer kv1-key-value" {
		t.Errorf("KV v1 with prefix: %q", got)
	}
	if cfg.Upstreams[0].Credential.Value.Literal() || strings.Contains(cfg.Upstreams[0].Credential.Value.String(), "kv2") {
		t.Error("a vault value counts as literal or prints")
	}
	if revoked.Load() != 1 {
		t.Errorf("the AppRole token was revoked %d times after the load, want 1", revoked.Load())
	}
	_, err = Parse([]byte(doc("${vault:secret/data/rampart#nope}", "${vault:secret/data/missing#x}")), "v.yaml")
	fe := FieldErrors(err)
	if len(fe) != 2 || fe[0].Path != "upstreams[0].credential.value" || !strings.Contains(fe[0].Msg, `no field "nope"`) ||
		fe[1].Path != "upstreams[1].credential.value" || fe[0].Line == 0 {
		t.Errorf("missing field and secret: %v", err)
	}
	up.Store(false)
	if _, err := Parse([]byte(doc("${vault:secret/data/rampart#upstream_key}", "x")), "v.yaml"); err == nil || !strings.Contains(err.Error(), "v.yaml:7: upstreams[0].credential.value") {
		t.Errorf("an outage: %v", err)
	}
	noVault := doc("${vault:secret/data/rampart#upstream_key}", "x")
	i, j := strings.Index(noVault, "vault:\n"), strings.Index(noVault, "upstreams:")
	noVault = noVault[:i] + noVault[j:]
	if _, err := Parse([]byte(noVault), "v.yaml"); err == nil || !strings.Contains(err.Error(), "needs a vault section") {
		t.Errorf("a vault reference without a vault section: %v", err)
	}
}
