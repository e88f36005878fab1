package main

import (
	"fmt"
	"io"
	"os"

	"github.com/rampart-gw/rampart/internal/audit"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/quickstart"
)

// cmdAudit is `rampart audit`: the config graded against the eight
// practices, every finding with its place, why it matters and the fix.
// Secrets are not read (references stand for placeholders) and literal
// secrets are findings, so a pipeline without the secrets can run it.
// Exit status 1 when a finding that is not accepted reaches --fail-on,
// 2 for usage or a config that does not load.
func cmdAudit(args []string, stdout, stderr io.Writer) int {
	f := newFlags("audit", "rampart audit --config FILE | --quickstart [--format text|json|sarif] [--fail-on low|medium|high|critical|none] | rampart audit --rules", stderr)
	path := f.String("config", "", "config file (YAML)")
	format := f.String("format", "text", "text, json or sarif")
	failOn := f.String("fail-on", "", "exit 1 when a finding that is not accepted is at least this severe (default: the config's audit.fail_on, else high)")
	rules := f.Bool("rules", false, "list the rules")
	qs := f.Bool("quickstart", false, "audit the embedded config of rampart quickstart")
	if err := f.Parse(args); err != nil {
		return 2
	}
	if *rules {
		for _, r := range audit.Rules() {
			fmt.Fprintf(stdout, "%-13s %-9s %-13s %s\n", r.ID, r.Severity, r.Practice, r.Title)
		}
		return 0
	}
	if (*path == "") == !*qs || !validFormat(*format) || f.NArg() > 0 {
		return f.bad()
	}
	opts := config.LoadOptions{AllowLiteralSecrets: true, DeferSecrets: true}
	var cfg *config.Config
	var err error
	if *qs {
		src := quickstart.Config("127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:9901", quickstart.DefaultStateDir())
		cfg, err = config.ParseWith(src, "quickstart.yaml (embedded)", opts)
	} else {
		cfg, err = config.LoadWith(*path, opts)
	}
	if err != nil {
		printProblems(stderr, err)
		return 2
	}
	threshold, ok := auditThreshold(*failOn, cfg)
	if !ok {
		return f.bad()
	}
	r := audit.Run(cfg, audit.Options{Documents: os.ReadFile})
	for i := range r.Findings {
		r.Findings[i].File = displayPath(r.Findings[i].File)
	}
	if !*qs {
		r.File = displayPath(r.File)
	}
	switch *format {
	case "json":
		err = audit.WriteJSON(stdout, r)
	case "sarif":
		err = audit.WriteSARIF(stdout, r, version)
	default:
		audit.WriteText(stdout, r)
	}
	if err != nil {
		return fail(stderr, err)
	}
	if n := len(r.Failing(threshold)); n > 0 {
		fmt.Fprintf(stderr, "rampart audit: %d finding(s) at or above %s\n", n, threshold)
		return 1
	}
	return 0
}

// auditThreshold is --fail-on, else the config's audit.fail_on, else
// high.
func auditThreshold(flag string, cfg *config.Config) (audit.Severity, bool) {
	switch {
	case flag != "":
		return audit.ParseSeverity(flag)
	case cfg.Audit != nil && cfg.Audit.FailOn != "":
		return audit.ParseSeverity(cfg.Audit.FailOn)
	}
	return audit.High, true
}
