// Package vaultref reads the values of ${vault:PATH#FIELD} secret
// references from HashiCorp Vault (KV version 2 or 1) with the official
// client. It logs in for each config load (a token, or AppRole) and
// keeps no Vault token between loads, so there is no lease to renew:
// every load and reload reads the values afresh.
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
	c     *vault.Client
	cache map[string]map[string]any
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
	} else if err := appRole(ctx, c, o); err != nil {
		return nil, err
	}
	return &Reader{c: c, cache: map[string]map[string]any{}}, nil
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
