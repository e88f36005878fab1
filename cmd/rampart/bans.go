package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rampart-gw/rampart/internal/abuse"
	"github.com/rampart-gw/rampart/internal/ratelimit"
)

// cmdBans is `rampart bans lift`: it lifts a ban in the Redis that the
// config's instances share, so that every instance lifts it.
func cmdBans(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bans lift", "rampart bans lift --config FILE IP|IPv6-PREFIX|identity:SUBJECT@ISSUER|session:HASH", stderr).withConfig("config file (its rate_limiting.redis section)")
	if len(args) == 0 || args[0] != "lift" {
		return fs.bad()
	}
	if !fs.parse(args[1:]) {
		return 2
	}
	if fs.NArg() != 1 {
		return fs.bad()
	}
	cfg := fs.load()
	if cfg == nil {
		return 1
	}
	ip, err := abuse.ParseKey(fs.Arg(0), cfg.ClientIP.IPv6Prefix)
	if err != nil {
		fmt.Fprintf(stderr, "error: %q is not a client address, identity or session: %v\n", fs.Arg(0), err)
		return 2
	}
	rc := cfg.RateLimiting.Redis
	if rc == nil {
		fmt.Fprintln(stderr, "error: bans are shared only through rate_limiting.redis; without it, restart rampart to clear bans")
		return 1
	}
	client := ratelimit.Client(rc)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := abuse.LiftShared(ctx, client, abuse.KeyPrefix(rc.KeyPrefix), ip); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "ban on %s lifted\n", ip)
	return 0
}
