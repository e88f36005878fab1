package main

import (
	"fmt"
	"io"
	"os"

	"github.com/rampart-gw/rampart/internal/audit"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/plan"
	"github.com/rampart-gw/rampart/internal/speclint"
)

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	f := newFlags("check", "rampart check --config FILE [--allow-literal-secrets]", stderr).withConfig("config file (YAML)")
	if !f.parse(args) {
		return 2
	}
	path := *f.config
	cfg, err := config.LoadWith(path, f.loadOptions())
	if err == nil {
		err = plan.Check(cfg)
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
	// The security lint of the attached OpenAPI documents: warnings here;
	// `rampart spec lint --config` fails on them by severity.
	if findings, err := lintAttached(cfg, speclint.Options{}); err == nil {
		for _, f := range findings {
			fmt.Fprintf(stderr, "warning: spec lint: %s\n", f)
		}
	}
	fmt.Fprintf(stdout, "%s: OK (%d listeners, %d upstreams, %d routes)\n", path, len(cfg.Listeners), len(cfg.Upstreams), len(cfg.Routes))
	r := audit.Run(cfg, audit.Options{Documents: os.ReadFile})
	fmt.Fprintf(stdout, "audit: %s (rampart audit --config %s for the findings)\n", r.Summary(), path)
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
