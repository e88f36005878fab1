package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rampart-gw/rampart/internal/audit"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/devidp"
	"github.com/rampart-gw/rampart/internal/quickstart"
)

func cmdQuickstart(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("quickstart", "rampart quickstart [--addr 127.0.0.1:8080] [--admin 127.0.0.1:9901]", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "gateway listen address")
	adminAddr := fs.String("admin", "127.0.0.1:9901", "admin listener (dashboard, metrics) address")
	stateDir := fs.String("state", quickstart.DefaultStateDir(), "directory of the master key and the encrypted runtime state")
	if !fs.parse(args) {
		return 2
	}
	dir, err := filepath.Abs(*stateDir)
	if err != nil {
		return fail(stderr, err)
	}
	created, err := quickstart.PrepareState(dir)
	if err != nil {
		fmt.Fprintf(stderr, "error: state directory %s: %v\n", dir, err)
		return 1
	}
	// A fresh admin token at every start: the dashboard's sign-in.
	adminToken := randomToken()
	os.Setenv("RAMPART_QUICKSTART_ADMIN_TOKEN", adminToken)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "error: demo upstream: %v\n", err)
		return 1
	}
	demo := &http.Server{Handler: quickstart.Demo(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = demo.Serve(ln) }()
	defer demo.Close()

	// The development identity provider: an ephemeral ES256 key, its
	// JWKS and discovery document on loopback.
	idpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "error: development IdP: %v\n", err)
		return 1
	}
	issuer := "http://" + idpLn.Addr().String()
	signer, err := devidp.NewES256("dev-1")
	if err != nil {
		return fail(stderr, err)
	}
	idp := &http.Server{Handler: devidp.Handler(issuer, signer), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = idp.Serve(idpLn) }()
	defer idp.Close()
	token, err := signer.Sign(devidp.Claims{Issuer: issuer, Subject: "alice", Audience: "rampart-demo", TTL: time.Hour, Scope: "orders:read"})
	if err != nil {
		return fail(stderr, err)
	}
	wrongAud, _ := signer.Sign(devidp.Claims{Issuer: issuer, Subject: "alice", Audience: "some-other-api", TTL: time.Hour})
	noScope, _ := signer.Sign(devidp.Claims{Issuer: issuer, Subject: "bob", Audience: "rampart-demo", TTL: time.Hour, Scope: "profile"})

	cfg, err := config.Parse(quickstart.Config(*addr, ln.Addr().String(), idpLn.Addr().String(), *adminAddr, dir), "quickstart.yaml (embedded)")
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	fmt.Fprint(stdout, quickstart.Guide(quickstart.GuideOptions{Addr: *addr, Admin: *adminAddr, Token: token, NoScope: noScope,
		WrongAudience: wrongAud, AdminToken: adminToken, Self: invocation(), Issuer: issuer, StateDir: dir, KeyCreated: created,
		Audit: audit.Run(cfg, audit.Options{Documents: os.ReadFile}).Summary()}))
	code := serve(cfg, runOptions{drain: 5 * time.Second}, newLogger(stderr), stderr)
	if code != 0 {
		fmt.Fprintf(stderr, "hint: is %s or %s already in use? try: %s quickstart --addr 127.0.0.1:8081 --admin 127.0.0.1:9902\n", *addr, *adminAddr, invocation())
	}
	return code
}

// invocation is how the user started rampart, for the commands printed
// to them: "go run ./cmd/rampart" under go run (whose binary lives in the
// build cache), otherwise the path they ran ("rampart", "./rampart").
func invocation() string {
	exe := os.Args[0]
	if strings.Contains(exe, string(os.PathSeparator)+"go-build") {
		return "go run ./cmd/rampart"
	}
	return exe
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func cmdTraffic(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("traffic", "rampart traffic [--target URL] [--duration 1m] [--rate 30]", stderr)
	target := fs.String("target", "http://127.0.0.1:8080", "the quickstart gateway's base URL")
	dur := fs.Duration("duration", time.Minute, "how long to send (at most 1h)")
	rate := fs.Int("rate", 30, "requests per second")
	if !fs.parse(args) {
		return 2
	}
	if !strings.Contains(*target, "://") {
		*target = "http://" + *target
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "sending normal and attack traffic to %s for %v at %d requests/s\n", *target, *dur, *rate)
	if err := quickstart.Traffic(ctx, quickstart.TrafficOptions{Target: *target, Duration: *dur, Rate: *rate, Out: stdout}); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 2
	}
	return 0
}
