package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/gctune"
	"github.com/rampart-gw/rampart/internal/observe"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/vaultref"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
)

func cmdRun(args []string, stderr io.Writer) int {
	fs := newFlags("run", "rampart run --config FILE [--drain-timeout 30s] [--watch=false] [--upgrade-socket PATH] [--allow-literal-secrets]", stderr).withConfig("config file (YAML)")
	drain := fs.Duration("drain-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	watch := fs.Bool("watch", true, "reload when the config file changes")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until exit (diagnostics)")
	upgradeSocket := fs.String("upgrade-socket", "", "Unix socket for upgrades without downtime: a gateway started with the same path takes over the listening sockets of the one running (SIGUSR2 starts it)")
	if !fs.parse(args) {
		return 2
	}
	path := fs.config
	log := newLogger(stderr)
	cfg, err := config.LoadWith(*path, fs.loadOptions())
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
	return serve(cfg, runOptions{path: *path, watch: *watch, drain: *drain, upgradeSocket: *upgradeSocket}, log, stderr)
}

// runOptions are run's flags that shape serving.
type runOptions struct {
	path, upgradeSocket string
	watch               bool
	drain               time.Duration
}

// serve runs a gateway until SIGINT/SIGTERM or its successor takes over,
// reloading on SIGHUP and, when watch is set, on changes of the config
// file.
func serve(cfg *config.Config, ro runOptions, log *slog.Logger, stderr io.Writer) int {
	path, watch, drain := ro.path, ro.watch, ro.drain
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
	if path != "" {
		g.SetConfigFile(path)
	}
	ho, err := takeOver(ro.upgradeSocket, g, log)
	if err != nil {
		return fail(stderr, err)
	}
	if err := ho.started(g, g.Start()); err != nil {
		return fail(stderr, err)
	}
	defer ho.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := func(reason string) { reloadFile(g, path, reason, log) }
	go keepVaultTokenAlive(ctx, g, log)
	if path != "" && watch {
		files := func() []string { return append([]string{path}, g.Plan().Config.WatchedFiles()...) }
		if err := gateway.Watch(ctx, files, log, func() { reload("file change") }); err != nil {
			log.Warn("config watch unavailable; reload with SIGHUP", "error", err.Error())
		}
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGINT, syscall.SIGTERM)
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
			case syscall.SIGUSR2: // upgrade: start the successor
				ho.spawn()
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
			return shutdown(g, drain, log)
		case pid := <-ho.handedOff():
			ho.succeeded(pid)
			log.Info("the new gateway serves; draining in-flight requests", "pid", pid, "timeout", drain.String())
			return shutdown(g, drain, log)
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

// shutdown drains g and stops it. Exit 0 once the drain ran its course,
// requests still in flight at the deadline included (they are answered
// 503 gateway.shutdown); 1 only if logs, events or spans could not be
// written out.
func shutdown(g *gateway.Gateway, drain time.Duration, log *slog.Logger) int {
	sctx, scancel := context.WithTimeout(context.Background(), drain)
	err := g.Shutdown(sctx)
	scancel()
	if err != nil {
		log.Error("shutdown: not everything was written out", "error", err.Error())
		return 1
	}
	log.Info("stopped")
	return 0
}

// reloadFile applies the config file (SIGHUP, a file change) and logs the
// outcome; a rejected file changes nothing.
func reloadFile(g *gateway.Gateway, path, reason string, log *slog.Logger) {
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

// tuneGC paces the collector by the live heap (gctune): a small heap is
// collected at 5× its size (half the collection work of Go's default 2×
// for a few MB), a large one with a bounded headroom, never above 2× it.
// GOGC, when set, wins.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		gctune.Start(gctune.Default)
	}
}

// keepVaultTokenAlive renews the running config's vault token, if it has
// one, until ctx ends.
func keepVaultTokenAlive(ctx context.Context, g *gateway.Gateway, log *slog.Logger) {
	vaultref.KeepAlive(ctx, func() (vaultref.Options, bool) {
		v := g.Plan().Config.Vault
		if v == nil || !v.Token.IsSet() {
			return vaultref.Options{}, false
		}
		return v.Options(), true
	}, func(err error) { log.Warn("vault token not renewed; retrying in 30s", "error", err.Error()) })
}
