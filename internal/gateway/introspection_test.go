package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestIntrospection: active tokens pass and are cached; inactive ones are
// refused (and cached negatively); an erroring or hanging endpoint fails
// closed; the gateway authenticates to the endpoint.
func TestIntrospection(t *testing.T) {
	t.Setenv("RAMPART_TEST_INTRO_SECRET", "intro-secret")
	var hits atomic.Int32
	var badAuth atomic.Int32
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if id, secret, ok := r.BasicAuth(); !ok || id != "rampart" || secret != "intro-secret" {
			badAuth.Add(1)
			w.WriteHeader(401)
			return
		}
		r.ParseForm()
		switch tok := r.PostForm.Get("token"); tok {
		case "opaque-active":
			json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": "dave", "scope": "a b", "aud": "orders-api", "iss": "https://as.test", "exp": time.Now().Add(time.Hour).Unix()})
		case "opaque-other-aud":
			json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": "dave", "aud": "other", "iss": "https://as.test"})
		case "opaque-error":
			w.WriteHeader(500)
		case "opaque-slow":
			time.Sleep(2 * time.Second)
			json.NewEncoder(w).Encode(map[string]any{"active": true})
		default:
			json.NewEncoder(w).Encode(map[string]any{"active": false})
		}
	}))
	defer as.Close()
	up := newUpstream(t, nil)
	cfg := `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
authn:
  introspection:
    - name: as
      endpoint: ` + as.URL + `/introspect
      allow_plaintext: true
      client_id: rampart
      client_secret: ${env:RAMPART_TEST_INTRO_SECRET}
      issuer: https://as.test
      audiences: [orders-api]
      timeout: 300ms
routes:
  - id: orders
    prefix: /orders
    upstream: svc
    auth: {introspection: [as]}
    authorize: any_authenticated
`
	_, addr := startGateway(t, cfg)
	url := "http://" + addr + "/orders/1"
	if c := bearerGet(t, url, "opaque-active"); c != 200 {
		t.Fatalf("active: %d", c)
	}
	before := hits.Load()
	for i := 0; i < 5; i++ {
		if c := bearerGet(t, url, "opaque-active"); c != 200 {
			t.Fatalf("active (cached): %d", c)
		}
	}
	if hits.Load() != before {
		t.Errorf("active answer not cached: %d more calls", hits.Load()-before)
	}
	for _, tok := range []string{"opaque-inactive", "opaque-other-aud", "opaque-error"} {
		if c := bearerGet(t, url, tok); c != 401 {
			t.Errorf("%s: %d, want 401", tok, c)
		}
	}
	before = hits.Load()
	bearerGet(t, url, "opaque-inactive")
	if hits.Load() != before {
		t.Error("inactive answer not cached")
	}
	before = hits.Load()
	bearerGet(t, url, "opaque-error")
	if hits.Load() == before {
		t.Error("an error answer was cached (must fail closed and ask again)")
	}
	start := time.Now()
	if c := bearerGet(t, url, "opaque-slow"); c != 401 || time.Since(start) > time.Second {
		t.Errorf("slow endpoint: %d after %v, want 401 within the 300ms timeout", c, time.Since(start))
	}
	if badAuth.Load() != 0 {
		t.Error("gateway did not authenticate to the endpoint")
	}
	if n := len(up.received()); n != 6 {
		t.Errorf("upstream received %d requests, want 6", n)
	}
}
