// Package vaultref reads the values of ${vault:PATH#FIELD} secret
// references from HashiCorp Vault (KV version 2 or 1) with the official
// client. It logs in for each config load and reads the values afresh.
// An AppRole login's token is revoked once the load has read its values
// (no token or lease is left behind); a configured token is kept alive by
// KeepAlive, which renews it at half its remaining TTL while the gateway
// runs.
package vaultref

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Options say where Vault is and how to log in.
type Options struct {
	Address   string
	CAFile    string // PEM bundle of Vault's CA ("": the system pool)
	Namespace string
	Timeout   time.Duration
	// Token authenticates directly; otherwise RoleID and SecretID log in
	// with AppRole at AppRoleMount (default "approle").
	Token, RoleID, SecretID, AppRoleMount string
}

// Reader reads fields of secrets at paths, each path once per load.
type Reader struct {
	c       *vault.Client
	cache   map[string]map[string]any
	ownsTok bool // the token came from a login of this Reader
}

// Open logs in.
func Open(ctx context.Context, o Options) (*Reader, error) {
	cfg := vault.DefaultConfig()
	cfg.Address = o.Address
	cfg.Timeout = o.Timeout
	cfg.MaxRetries = 1
	if o.CAFile != "" {
		if err := cfg.ConfigureTLS(&vault.TLSConfig{CACert: o.CAFile}); err != nil {
			return nil, fmt.Errorf("vault ca_file: %w", err)
		}
	}
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken("") // never VAULT_TOKEN from the environment by accident
	if o.Namespace != "" {
		c.SetNamespace(o.Namespace)
	}
	if o.Token != "" {
		c.SetToken(o.Token)
		return &Reader{c: c, cache: map[string]map[string]any{}}, nil
	}
	if err := appRole(ctx, c, o); err != nil {
		return nil, err
	}
	return &Reader{c: c, cache: map[string]map[string]any{}, ownsTok: true}, nil
}

// Close revokes the token of an AppRole login (a configured token is
// left alone): the values are read, the token is not needed any more.
func (r *Reader) Close(ctx context.Context) error {
	if !r.ownsTok {
		return nil
	}
	return r.c.Auth().Token().RevokeSelfWithContext(ctx, "")
}

// Renew renews the configured token of o and returns when to renew it
// again: half its new TTL. A token that cannot be renewed, or never
// expires (a root token), returns 0: nothing to keep alive.
func Renew(ctx context.Context, o Options) (time.Duration, error) {
	if o.Token == "" {
		return 0, nil
	}
	r, err := Open(ctx, o)
	if err != nil {
		return 0, err
	}
	self, err := r.c.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("vault token lookup: %w", err)
	}
	renewable, _ := self.TokenIsRenewable()
	ttl, _ := self.TokenTTL()
	if !renewable || ttl <= 0 {
		return 0, nil
	}
	s, err := r.c.Auth().Token().RenewSelfWithContext(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("vault token renewal: %w", err)
	}
	if s == nil || s.Auth == nil || s.Auth.LeaseDuration <= 0 {
		return 0, errors.New("vault token renewal: no lease in the answer")
	}
	return time.Duration(s.Auth.LeaseDuration) * time.Second / 2, nil
}

// KeepAlive renews the configured token (options() reports the current
// one, false when there is none) until ctx ends: at half its TTL, every
// 30 s after a failure (reported), hourly when there is nothing to renew.
func KeepAlive(ctx context.Context, options func() (Options, bool), failed func(error)) {
	for {
		wait := time.Hour
		if o, ok := options(); ok {
			rctx, cancel := context.WithTimeout(ctx, 4*max(o.Timeout, time.Second))
			next, err := Renew(rctx, o)
			cancel()
			switch {
			case err != nil && ctx.Err() == nil:
				failed(err)
				wait = 30 * time.Second
			case next > 0:
				wait = min(max(next, 5*time.Second), time.Hour)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// appRole logs in with a role id and secret id.
func appRole(ctx context.Context, c *vault.Client, o Options) error {
	mount := o.AppRoleMount
	if mount == "" {
		mount = "approle"
	}
	s, err := c.Logical().WriteWithContext(ctx, "auth/"+mount+"/login", map[string]any{"role_id": o.RoleID, "secret_id": o.SecretID})
	if err != nil {
		return fmt.Errorf("vault AppRole login: %w", err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return errors.New("vault AppRole login: no token in the answer")
	}
	c.SetToken(s.Auth.ClientToken)
	return nil
}

// Read returns the field of the secret at ref ("PATH#FIELD"). A KV v2
// path names the data endpoint (secret/data/rampart); its versioned
// wrapper is unwrapped.
func (r *Reader) Read(ctx context.Context, ref string) (string, error) {
	path, field, ok := strings.Cut(ref, "#")
	if !ok || path == "" || field == "" {
		return "", fmt.Errorf("${vault:%s}: want ${vault:PATH#FIELD}", ref)
	}
	data, ok := r.cache[path]
	if !ok {
		s, err := r.c.Logical().ReadWithContext(ctx, path)
		if err != nil {
			return "", fmt.Errorf("vault %s: %w", path, err)
		}
		if s == nil || s.Data == nil {
			return "", fmt.Errorf("vault %s: no secret there", path)
		}
		data = s.Data
		if inner, ok := data["data"].(map[string]any); ok && data["metadata"] != nil {
			data = inner // KV v2
		}
		r.cache[path] = data
	}
	v, ok := data[field]
	if !ok {
		return "", fmt.Errorf("vault %s: no field %q", path, field)
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return "", fmt.Errorf("vault %s: field %q is not a non-empty string", path, field)
	}
	return s, nil
}
