package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/gateway"
	"github.com/rampart-gw/rampart/internal/observe"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/vaultref"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
)

func cmdRun(args []string, stderr io.Writer) int {
	fs := newFlags("run", "rampart run --config FILE [--drain-timeout 30s] [--watch=false] [--allow-literal-secrets]", stderr).withConfig("config file (YAML)")
	drain := fs.Duration("drain-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	watch := fs.Bool("watch", true, "reload when the config file changes")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until exit (diagnostics)")
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
	if path != "" {
		g.SetConfigFile(path)
	}
	if err := g.Start(); err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := func(reason string) { reloadFile(g, path, reason, log) }
	go keepVaultTokenAlive(ctx, g, log)
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

// tuneGC trades memory for CPU: a gateway's live heap is small (plans,
// pools, buffers), so collecting at 4× the live heap instead of 2× halves
// GC work at a cost of a few MB. GOGC and GOMEMLIMIT, when set, win.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
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
