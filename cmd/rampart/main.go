// Command rampart is a security-first API gateway.
//
//	rampart run --config FILE      serve the configured listeners
//	rampart check --config FILE    validate a config, print every problem
//	rampart quickstart             run the embedded demo on 127.0.0.1:8080
//	rampart version                print the version
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"

	"github.com/rampart-gw/rampart/internal/abuse"
	"github.com/rampart-gw/rampart/internal/authn"
	"github.com/rampart-gw/rampart/internal/clientip"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/devidp"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/observe"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/quickstart"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: rampart <command> [flags]

commands:
  run --config FILE       serve the configured listeners (SIGHUP or a file change reloads)
  check --config FILE     validate a config and print every problem (exit 1 on error)
  quickstart [--addr A] [--admin A]
                          run the embedded demo config in front of a built-in upstream,
                          with the live dashboard on the admin address
  traffic [--target URL] [--duration D] [--rate N]
                          send normal and attack traffic to the quickstart gateway
  token --key FILE ...    mint a test JWT from a private key (development only)
  keys create --config FILE --consumer NAME [--scopes a,b] [--ttl 90d]
                          create an API key (printed once; only its keyed hash is stored)
  bans lift --config FILE IP
                          lift an abuse ban on every instance sharing the config's Redis
  version                 print the version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "quickstart":
		return cmdQuickstart(args[1:], stdout, stderr)
	case "token":
		return cmdToken(args[1:], stdout, stderr)
	case "traffic":
		return cmdTraffic(args[1:], stdout, stderr)
	case "keys":
		return cmdKeys(args[1:], stdout, stderr)
	case "bans":
		return cmdBans(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "rampart: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func versionString() string {
	v, rev := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " " + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("rampart %s (%s%s)", v, runtime.Version(), rev)
}

func configFlag(name string, args []string, stderr io.Writer) (string, *flag.FlagSet, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return "", fs, false
	}
	if *path == "" {
		fmt.Fprintf(stderr, "rampart %s: --config FILE is required\n", name)
		return "", fs, false
	}
	return *path, fs, true
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	path, _, ok := configFlag("check", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := config.Load(path)
	if err == nil {
		err = gateway.Check(cfg)
	}
	if cfg != nil {
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
	}
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d listeners, %d upstreams, %d routes)\n", path, len(cfg.Listeners), len(cfg.Upstreams), len(cfg.Routes))
	return 0
}

func printProblems(w io.Writer, err error) {
	probs := config.FieldErrors(err)
	if len(probs) == 0 {
		fmt.Fprintf(w, "error: %v\n", err)
		return
	}
	for _, p := range probs {
		fmt.Fprintf(w, "error: %s\n", p)
	}
	fmt.Fprintf(w, "%d problem(s)\n", len(probs))
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	drain := fs.Duration("drain-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	watch := fs.Bool("watch", true, "reload when the config file changes")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until exit (diagnostics)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "rampart run: --config FILE is required")
		return 2
	}
	log := newLogger(stderr)
	cfg, err := config.Load(*path)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		log.Warn("config", "warning", w.Error())
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fail(stderr, err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(stderr, err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	return serve(cfg, *path, *watch, *drain, log, stderr)
}

// serve runs a gateway until SIGINT/SIGTERM, reloading on SIGHUP and, when
// watch is set, on changes of the config file.
func serve(cfg *config.Config, path string, watch bool, drain time.Duration, log *slog.Logger, stderr io.Writer) int {
	tuneGC()
	// OpenTelemetry reports export failures through a process-wide
	// handler (by default Go's log package, plain text on stderr): route
	// them into the JSON operational log, once, here in main.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: export failed", "error", err.Error())
	}))
	// go-redis's process-wide logger prints plain text too, a line per
	// failed dial; route it into the JSON log, throttled.
	redis.SetLogger(&observe.LibraryLog{Log: log, Source: "redis", Every: 10 * time.Second, Now: time.Now})
	g, err := gateway.New(cfg, pipeline.Deps{Log: log, Now: time.Now})
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	if err := g.Start(); err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := func(reason string) {
		next, err := g.ReloadFile(path, reason)
		if err != nil {
			msgs := []string{}
			for _, p := range config.FieldErrors(err) {
				msgs = append(msgs, p.Error())
			}
			if len(msgs) == 0 {
				msgs = append(msgs, err.Error())
			}
			log.Error("reload rejected; the previous config keeps serving", "trigger", reason, "problems", msgs)
			return
		}
		for _, w := range next.Warnings {
			log.Warn("config", "warning", w.Error())
		}
		log.Info("config reloaded", "trigger", reason, "routes", len(next.Routes))
	}
	if path != "" && watch {
		if err := gateway.Watch(ctx, path, log, func() { reload("file change") }); err != nil {
			log.Warn("config watch unavailable; reload with SIGHUP", "error", err.Error())
		}
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				if path != "" {
					reload("SIGHUP")
				}
				continue
			case syscall.SIGUSR1: // log rotation
				if err := g.ReopenLogs(); err != nil {
					log.Error("reopening log files failed; still writing to the old ones", "error", err.Error())
				} else {
					log.Info("log files reopened")
				}
				continue
			}
			log.Info("shutting down; draining in-flight requests", "signal", sig.String(), "timeout", drain.String())
			sctx, scancel := context.WithTimeout(context.Background(), drain)
			// Exit 0 once the drain ran its course, requests still in
			// flight at the deadline included (they are answered 503
			// gateway.shutdown); 1 only if logs, events or spans could not
			// be written out.
			err := g.Shutdown(sctx)
			scancel()
			if err != nil {
				log.Error("shutdown: not everything was written out", "error", err.Error())
				return 1
			}
			log.Info("stopped")
			return 0
		case err := <-g.Errors():
			if err != nil {
				log.Error("listener failed", "error", err.Error())
				sctx, scancel := context.WithTimeout(context.Background(), drain)
				_ = g.Shutdown(sctx)
				scancel()
				return 1
			}
		}
	}
}

// tuneGC trades memory for CPU: a gateway's live heap is small (plans,
// pools, buffers), so collecting at 4× the live heap instead of 2× halves
// GC work at a cost of a few MB. GOGC and GOMEMLIMIT, when set, win.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
}

func cmdQuickstart(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "gateway listen address")
	adminAddr := fs.String("admin", "127.0.0.1:9901", "admin listener (dashboard, metrics) address")
	if err := fs.Parse(args); err != nil {
		return 2
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

	cfg, err := config.Parse(quickstart.Config(*addr, ln.Addr().String(), idpLn.Addr().String(), *adminAddr), "quickstart.yaml (embedded)")
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	fmt.Fprint(stdout, quickstart.Guide(*addr, token, wrongAud, *adminAddr, adminToken))
	code := serve(cfg, "", false, 5*time.Second, newLogger(stderr), stderr)
	if code != 0 {
		fmt.Fprintf(stderr, "hint: is %s or %s already in use? try: rampart quickstart --addr 127.0.0.1:8081 --admin 127.0.0.1:9902\n", *addr, *adminAddr)
	}
	return code
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func cmdTraffic(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("traffic", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "http://127.0.0.1:8080", "the quickstart gateway's base URL")
	dur := fs.Duration("duration", time.Minute, "how long to send (at most 1h)")
	rate := fs.Int("rate", 30, "requests per second")
	if err := fs.Parse(args); err != nil {
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

func cmdToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "PEM private key (EC, RSA or Ed25519)")
	kid := fs.String("kid", "", "key id (kid header)")
	alg := fs.String("alg", "", "algorithm (default: from the key type)")
	iss := fs.String("iss", "", "issuer (iss)")
	aud := fs.String("aud", "", "audience (aud)")
	sub := fs.String("sub", "", "subject (sub)")
	scope := fs.String("scope", "", "space-separated scopes")
	ttl := fs.Duration("ttl", 15*time.Minute, "lifetime")
	typ := fs.String("typ", "at+jwt", "typ header")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *key == "" || *iss == "" || *aud == "" || *sub == "" {
		fmt.Fprintln(stderr, "rampart token: --key, --iss, --aud and --sub are required")
		return 2
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

func cmdKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: rampart keys create --config FILE --consumer NAME [--scopes a,b] [--ttl 90d]")
		return 2
	}
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (its authn.api_keys section)")
	consumer := fs.String("consumer", "", "who the key is for")
	scopes := fs.String("scopes", "", "comma-separated scopes")
	ttl := fs.String("ttl", "90d", "validity (e.g. 90d, 720h; 0 = no expiry)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *path == "" || *consumer == "" {
		fmt.Fprintln(stderr, "rampart keys create: --config and --consumer are required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printProblems(stderr, err)
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
	store, err := authn.LoadAPIKeys(k.File)
	if err != nil {
		return fail(stderr, err)
	}
	key, rec, err := authn.NewAPIKey([]byte(k.Secret.Reveal()), *consumer, sc, d, time.Now())
	if err != nil {
		return fail(stderr, err)
	}
	store.Keys = append(store.Keys, rec)
	if err := authn.SaveAPIKeys(k.File, store); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stderr, "created key %s for %s in %s; it is shown once, store it now (reload rampart to use it):\n", rec.Prefix, rec.Consumer, k.File)
	fmt.Fprintln(stdout, key)
	return 0
}

func cmdBans(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "lift" {
		fmt.Fprintln(stderr, "usage: rampart bans lift --config FILE IP")
		return 2
	}
	fs := flag.NewFlagSet("bans lift", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (its rate_limiting.redis section)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: rampart bans lift --config FILE IP|IPv6-PREFIX")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	ip, err := clientip.ParseKey(fs.Arg(0), cfg.ClientIP.IPv6Prefix)
	if err != nil {
		fmt.Fprintf(stderr, "error: %q is not a client address: %v\n", fs.Arg(0), err)
		return 2
	}
	rc := cfg.RateLimiting.Redis
	if rc == nil {
		fmt.Fprintln(stderr, "error: bans are shared only through rate_limiting.redis; without it, restart rampart to clear bans")
		return 1
	}
	client := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: rc.Addresses, MasterName: rc.MasterName, Username: rc.Username, Password: rc.Password.Reveal(), DB: rc.DB})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := abuse.LiftShared(ctx, client, rc.KeyPrefix+"abuse:", ip); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "ban on %s lifted\n", clientip.KeyString(ip))
	return 0
}

// fail prints err as the command's error and returns exit status 1.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "error: %v\n", err)
	return 1
}
