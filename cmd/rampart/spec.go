package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/speclint"
)

// cmdSpec is `rampart spec lint` (an OpenAPI security lint of files, or of
// the documents a config attaches to its routes, with the cross-check
// against those routes) and `rampart spec rules` (the rules). Exit status
// 1 when a finding reaches --fail-on, 2 for usage or an unreadable
// document.
func cmdSpec(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "rules" {
		for _, r := range speclint.Rules() {
			fmt.Fprintf(stdout, "%-52s %-7s %s\n", r.ID, r.Severity, r.Summary)
		}
		return 0
	}
	fs := newFlags("spec lint", "rampart spec lint [--config FILE | FILE...] [--format text|json|sarif] [--fail-on error|warning|info|none] [--disable RULE,...]", stderr)
	cfgPath := fs.String("config", "", "lint the documents this config attaches to its routes, and check them against the routes")
	format := fs.String("format", "text", "text, json or sarif")
	failOn := fs.String("fail-on", "error", "exit 1 when a finding is at least this severe (error, warning, info; none: never)")
	disable := fs.String("disable", "", "rule ids not to run, comma-separated")
	if len(args) == 0 || args[0] != "lint" {
		return fs.bad()
	}
	if !fs.parse(args[1:]) {
		return 2
	}
	threshold, ok := speclint.ParseSeverity(*failOn)
	if !ok && *failOn != "none" || (*cfgPath == "") == (fs.NArg() == 0) || !validFormat(*format) {
		return fs.bad()
	}
	o := speclint.Options{Disable: splitList(*disable)}
	for _, id := range o.Disable {
		if !speclint.Known(id) {
			fmt.Fprintf(stderr, "rampart spec lint: unknown rule %q (rampart spec rules lists them)\n", id)
			return 2
		}
	}
	findings, err := lintTargets(*cfgPath, fs.Args(), o)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 2
	}
	if err := writeFindings(stdout, *format, findings); err != nil {
		return fail(stderr, err)
	}
	if *failOn != "none" && len(findings) > 0 && speclint.Worst(findings) >= threshold {
		return 1
	}
	return 0
}

func validFormat(f string) bool { return f == "text" || f == "json" || f == "sarif" }

// lintTargets lints the files, or the documents attached to the routes of
// the config at cfgPath with their cross-checks.
func lintTargets(cfgPath string, files []string, o speclint.Options) ([]speclint.Finding, error) {
	var out []speclint.Finding
	if cfgPath == "" {
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			fs, err := speclint.Lint(f, src, o)
			if err != nil {
				return nil, err
			}
			out = append(out, fs...)
		}
		return out, nil
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	return lintAttached(cfg, o)
}

// lintAttached lints every document the config attaches to a route
// (once per document) and checks each against the routes it is on.
func lintAttached(cfg *config.Config, o speclint.Options) ([]speclint.Finding, error) {
	docs, err := speclint.LintAttached(cfg.Routes, os.ReadFile, displayPath, o)
	if err != nil {
		return nil, err
	}
	var out []speclint.Finding
	for _, d := range docs {
		out = append(out, d.Findings...)
	}
	speclint.Sort(out)
	return out, nil
}

func writeFindings(w io.Writer, format string, fs []speclint.Finding) error {
	switch format {
	case "json":
		return speclint.WriteJSON(w, fs)
	case "sarif":
		return speclint.WriteSARIF(w, fs, version)
	}
	speclint.WriteText(w, fs)
	if len(fs) > 0 {
		counts := map[string]int{}
		for _, f := range fs {
			counts[f.Severity.String()]++
		}
		fmt.Fprintf(w, "%d finding(s): %d error, %d warning, %d info\n", len(fs), counts["error"], counts["warning"], counts["info"])
	}
	return nil
}

// displayPath is path relative to the working directory when it lies
// below it (config paths are absolute once loaded).
func displayPath(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return path
}
