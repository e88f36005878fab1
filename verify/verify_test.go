package verify

import (
	"crypto"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/assert"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// TestMiddleware drives verify with keys given out of band: the gateway's
// assertion passes once; forged, missing, re-targeted, other-audience and
// expired assertions do not.
func TestMiddleware(t *testing.T) {
	key, err := assert.LoadOrCreate(filepath.Join(t.TempDir(), "gw.key"), "EdDSA", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := assert.LoadOrCreate(filepath.Join(t.TempDir(), "other.key"), "EdDSA", nil)
	signer := assert.NewSigner("https://gw.test", time.Minute, key, nil)
	forger := assert.NewSigner("https://gw.test", time.Minute, other, nil)
	mw, err := Middleware(Options{
		Keys:   map[string]crypto.PublicKey{key.ID: publicOf(t, key)},
		Issuer: "https://gw.test", Audience: "orders", ReplayCache: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var caller *Caller
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, _ = FromContext(r.Context())
		io.WriteString(w, "ok")
	})))
	defer srv.Close()
	sc := func(path string) *pipeline.Scope {
		return &pipeline.Scope{RequestID: "rid-1", Host: "api.example.com", ForwardedHost: "api.example.com", Path: path, Identity: &pipeline.Identity{Subject: "alice", Method: "jwt", Scopes: []string{"orders:read"}}}
	}
	send := func(path, assertion string) int {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("X-Forwarded-Host", "api.example.com")
		if assertion != "" {
			req.Header.Set("X-Rampart-Assertion", assertion)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	now := time.Now()
	good, _ := signer.Sign("orders", "GET", sc("/orders/1"), now)
	if c := send("/orders/1", good); c != 200 || caller == nil || caller.Subject != "alice" || caller.RequestID != "rid-1" {
		t.Fatalf("good assertion: %d %+v", c, caller)
	}
	forged, _ := forger.Sign("orders", "GET", sc("/orders/1"), now)
	otherAud, _ := signer.Sign("billing", "GET", sc("/orders/1"), now)
	expired, _ := signer.Sign("orders", "GET", sc("/orders/1"), now.Add(-2*time.Minute))
	wrongPath, _ := signer.Sign("orders", "GET", sc("/orders/2"), now)
	wrongMethod, _ := signer.Sign("orders", "DELETE", sc("/orders/1"), now)
	for name, a := range map[string]string{
		"replayed": good, "forged": forged, "other audience": otherAud, "expired": expired,
		"other path": wrongPath, "other method": wrongMethod, "missing": "", "garbage": "a.b.c",
	} {
		if c := send("/orders/1", a); c != 401 {
			t.Errorf("%s: %d, want 401", name, c)
		}
	}
}

func publicOf(t *testing.T, k *assert.Key) crypto.PublicKey {
	t.Helper()
	pub, err := k.Public()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
