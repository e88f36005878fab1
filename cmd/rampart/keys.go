package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rampart-gw/rampart/internal/authn"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/store"
)

func cmdKeys(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("keys create", "rampart keys create --config FILE --consumer NAME [--scopes a,b] [--ttl 90d]", stderr).
		withConfig("config file (its authn.api_keys section)")
	if len(args) == 0 || args[0] != "create" {
		return fs.bad()
	}
	consumer := fs.String("consumer", "", "who the key is for")
	scopes := fs.String("scopes", "", "comma-separated scopes")
	ttl := fs.String("ttl", "90d", "validity (e.g. 90d, 720h; 0 = no expiry)")
	if !fs.parse(args[1:]) {
		return 2
	}
	if *consumer == "" {
		return fs.bad()
	}
	path := fs.config
	cfg := fs.load()
	if cfg == nil {
		return 1
	}
	k := cfg.Authn.APIKeys
	if k == nil {
		fmt.Fprintf(stderr, "error: %s has no authn.api_keys section\n", *path)
		return 1
	}
	d, err := config.ParseDuration(*ttl)
	if err != nil {
		fmt.Fprintf(stderr, "error: --ttl: %v\n", err)
		return 2
	}
	var sc []string
	for _, s := range strings.Split(*scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			sc = append(sc, s)
		}
	}
	secrets, err := store.FromConfig(cfg.State)
	if err != nil {
		return fail(stderr, err)
	}
	keys, err := authn.LoadAPIKeys(k.File, secrets)
	if err != nil {
		return fail(stderr, err)
	}
	key, rec, err := authn.NewAPIKey([]byte(k.Secret.Reveal()), *consumer, sc, d, time.Now())
	if err != nil {
		return fail(stderr, err)
	}
	keys.Keys = append(keys.Keys, rec)
	if err := authn.SaveAPIKeys(k.File, keys, secrets); err != nil {
		return fail(stderr, err)
	}
	record(stderr, cfg, "apikey.created", map[string]string{"prefix": rec.Prefix, "consumer": rec.Consumer})
	fmt.Fprintf(stderr, "created key %s for %s in %s; it is shown once, store it now (reload rampart to use it):\n", rec.Prefix, rec.Consumer, k.File)
	fmt.Fprintln(stdout, key)
	return 0
}
