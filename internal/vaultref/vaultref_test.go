package vaultref

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// tokenServer is Vault's token endpoints for three tokens: a renewable
// one with a 40 s TTL, a root token (no TTL) and a revoked one.
func tokenServer(t *testing.T, renewals *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		tok := r.Header.Get("X-Vault-Token")
		switch {
		case tok == "revoked":
			http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
		case r.URL.Path == "/v1/auth/token/lookup-self" && tok == "root":
			w.Write([]byte(`{"data":{"renewable":false,"ttl":0}}`))
		case r.URL.Path == "/v1/auth/token/lookup-self":
			w.Write([]byte(`{"data":{"renewable":true,"ttl":40}}`))
		case r.URL.Path == "/v1/auth/token/renew-self" && r.Method == http.MethodPut:
			renewals.Add(1)
			w.Write([]byte(`{"auth":{"client_token":"periodic","renewable":true,"lease_duration":40}}`))
		default:
			http.Error(w, `{"errors":[]}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A renewable token is renewed and the next renewal is due at half its
// TTL; a root token is left alone; a revoked token is an error.
func TestRenew(t *testing.T) {
	var renewals atomic.Int32
	srv := tokenServer(t, &renewals)
	ctx := context.Background()
	o := Options{Address: srv.URL, Timeout: time.Second}
	o.Token = "periodic"
	if next, err := Renew(ctx, o); err != nil || next != 20*time.Second || renewals.Load() != 1 {
		t.Fatalf("periodic token: next %v, %v, %d renewals", next, err, renewals.Load())
	}
	o.Token = "root"
	if next, err := Renew(ctx, o); err != nil || next != 0 || renewals.Load() != 1 {
		t.Fatalf("root token: next %v, %v, %d renewals", next, err, renewals.Load())
	}
	o.Token = "revoked"
	if _, err := Renew(ctx, o); err == nil {
		t.Fatal("a revoked token renewed")
	}
}

// KeepAlive renews at once and reports failures; it stops with ctx.
func TestKeepAlive(t *testing.T) {
	var renewals atomic.Int32
	srv := tokenServer(t, &renewals)
	ctx, cancel := context.WithCancel(context.Background())
	failures := make(chan error, 4)
	done := make(chan struct{})
	token := "periodic"
	go func() {
		KeepAlive(ctx, func() (Options, bool) { return Options{Address: srv.URL, Timeout: time.Second, Token: token}, true },
			func(err error) { failures <- err })
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for renewals.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if renewals.Load() != 1 || len(failures) != 0 {
		t.Fatalf("%d renewals, %d failures", renewals.Load(), len(failures))
	}
	token = "revoked"
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		KeepAlive(ctx, func() (Options, bool) { return Options{Address: srv.URL, Timeout: time.Second, Token: "revoked"}, true },
			func(err error) { failures <- err })
	}()
	select {
	case <-failures:
	case <-time.After(5 * time.Second):
		t.Fatal("a failed renewal was not reported")
	}
	cancel()
}
