package config

import (
	"context"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/vaultref"
)

// vaultReferencesToRead reports whether there are references to read
// from Vault; through fail, those that cannot be read whatever Vault
// answers (without a vault section, or in the vault section itself).
func vaultReferencesToRead(cfg *Config, pending []pendingSecret, fail func(string)) bool {
	if len(pending) == 0 {
		return false
	}
	if cfg.Vault == nil {
		fail("a ${vault:} reference needs a vault section")
		return false
	}
	for _, p := range pending {
		if strings.HasPrefix(p.path, "vault.") {
			fail("the vault section's own secrets come from ${env:} or ${file:}, not from Vault")
			return false
		}
	}
	return true
}

// resolveVault reads the ${vault:} references of a decoded config from
// its vault section. A problem (no vault section, a failed login, a
// missing field) is reported at each reference's key and line; the
// config then does not load, and on a reload the old one keeps serving.
func resolveVault(cfg *Config, pending []pendingSecret, probs *Problems) {
	fail := func(msg string) {
		for _, p := range pending {
			probs.addAt(p.line, p.path, "%s", msg)
		}
	}
	if !vaultReferencesToRead(cfg, pending, fail) {
		return
	}
	if cfg.opts.DeferSecrets {
		for _, p := range pending {
			p.secret.fill(placeholder(p.secret.ref))
		}
		return
	}
	v := cfg.Vault
	o := v.Options()
	if o.Token == "" && o.RoleID == "" {
		fail("vault needs token or approle to log in")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*o.Timeout)
	defer cancel()
	r, err := vaultref.Open(ctx, o)
	if err != nil {
		fail(err.Error())
		return
	}
	defer func() { _ = r.Close(ctx) }() // an AppRole token is not kept
	for _, p := range pending {
		val, err := r.Read(ctx, strings.TrimPrefix(p.secret.ref, "vault:"))
		if err != nil {
			probs.addAt(p.line, p.path, "%v", err)
			continue
		}
		p.secret.fill(val)
	}
}

// Options are the vault section's client options (login, TLS, timeout:
// 5 s by default).
func (v *Vault) Options() vaultref.Options {
	o := vaultref.Options{Address: v.Address, CAFile: v.CAFile, Namespace: v.Namespace, Timeout: v.Timeout.D(), Token: v.Token.Reveal()}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if a := v.AppRole; a != nil {
		o.RoleID, o.SecretID, o.AppRoleMount = a.RoleID.Reveal(), a.SecretID.Reveal(), a.Mount
	}
	return o
}
