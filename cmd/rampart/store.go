package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/rampart-gw/rampart/internal/assert"
	"github.com/rampart-gw/rampart/internal/store"
)

// cmdStore is `rampart store rekey`: it rewrites the state files the
// config names (assertion keys, the API key store, the runtime state) under state.master_key.
// Files written under a previous master key, or before encryption was
// configured, are read and rewritten; running gateways keep reading them
// as long as the old key stays in previous_master_keys until they reload.
func cmdStore(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("store rekey", "rampart store rekey --config FILE", stderr).withConfig("config file (its state section)")
	cfg, code := fs.subcommand(args, "rekey")
	if cfg == nil {
		return code
	}
	if cfg.State == nil {
		fmt.Fprintf(stderr, "error: %s has no state section (state.master_key)\n", *fs.config)
		return 1
	}
	secrets, err := store.FromConfig(cfg.State)
	if err != nil {
		return fail(stderr, err)
	}
	var files []string
	if a := cfg.Assertion; a != nil {
		files = append(append(files, a.KeyFile, a.KeyFile+assert.NextSuffix, a.KeyFile+assert.RetiredSuffix), a.PreviousKeyFiles...)
	}
	if k := cfg.Authn.APIKeys; k != nil {
		files = append(files, k.File)
	}
	if f := cfg.State.RuntimeFile; f != "" {
		files = append(files, f)
	}
	n, err := secrets.Rekey(files)
	if err != nil {
		return fail(stderr, err)
	}
	record(stderr, cfg, "state.rekeyed", map[string]string{"files": strconv.Itoa(n)})
	fmt.Fprintf(stdout, "rewrote %d state file(s) under the current master key\n", n)
	return 0
}
