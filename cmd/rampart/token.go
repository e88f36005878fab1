package main

import (
	"fmt"
	"io"
	"time"

	"github.com/rampart-gw/rampart/internal/devidp"
)

func cmdToken(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("token", "rampart token --key FILE --iss ISSUER --aud AUDIENCE --sub SUBJECT [--scope S] [--ttl 15m]", stderr)
	key := fs.String("key", "", "PEM private key (EC, RSA or Ed25519)")
	kid := fs.String("kid", "", "key id (kid header)")
	alg := fs.String("alg", "", "algorithm (default: from the key type)")
	iss := fs.String("iss", "", "issuer (iss)")
	aud := fs.String("aud", "", "audience (aud)")
	sub := fs.String("sub", "", "subject (sub)")
	scope := fs.String("scope", "", "space-separated scopes")
	ttl := fs.Duration("ttl", 15*time.Minute, "lifetime")
	typ := fs.String("typ", "at+jwt", "typ header")
	if !fs.parse(args) {
		return 2
	}
	if *key == "" || *iss == "" || *aud == "" || *sub == "" {
		return fs.bad()
	}
	s, err := devidp.LoadSigner(*key, *kid, *alg)
	if err != nil {
		return fail(stderr, err)
	}
	tok, err := s.Sign(devidp.Claims{Issuer: *iss, Subject: *sub, Audience: *aud, TTL: *ttl, Scope: *scope, Type: *typ})
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
