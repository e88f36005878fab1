// Command rampart is a security-first API gateway. One file per command:
//
//	rampart run --config FILE        serve the configured listeners (run.go)
//	rampart check --config FILE      validate a config, print every problem (check.go)
//	rampart audit --config FILE      grade a config against the eight practices (audit.go)
//	rampart quickstart               run the embedded demo on 127.0.0.1:8080 (quickstart.go)
//	rampart traffic                  send demo traffic to the quickstart (quickstart.go)
//	rampart token --key FILE ...     mint a test JWT (token.go)
//	rampart keys create ...          create an API key, shown once (keys.go)
//	rampart bans lift ...            lift an abuse ban everywhere (bans.go)
//	rampart store rekey ...          rewrite state files under the current master key (store.go)
//	rampart journal verify ...       check the journal's hash chain (journal.go)
//	rampart admin OPERATION ...      call the admin API (admin.go)
//	rampart spec lint ...            lint OpenAPI documents for security (spec.go)
//	rampart docs --config FILE       write the published API document (docs.go)
//	rampart discover ...             learn the API from traffic (discover.go)
//	rampart version [--sbom]         print the version or the SBOM (sbom.go)
//	rampart health                   probe /healthz (health.go)
//
// It only wires flags to internal packages; the logic lives there.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/rampart-gw/rampart/internal/config"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: rampart <command> [flags]

commands:
  run --config FILE       serve the configured listeners (SIGHUP or a file change reloads)
  check --config FILE     validate a config and print every problem (exit 1 on error)
  audit --config FILE [--format text|json|sarif] [--fail-on low|medium|high|critical|none]
                          grade a config against the eight practices of gateway security:
                          every finding with its line, why it matters and the fix
  audit --rules           list the audit rules
  quickstart [--addr A] [--admin A]
                          run the embedded demo config in front of a built-in upstream,
                          with the live dashboard on the admin address
  traffic [--target URL] [--duration D] [--rate N]
                          send normal and attack traffic to the quickstart gateway
  token --key FILE ...    mint a test JWT from a private key (development only)
  keys create --config FILE --consumer NAME [--scopes a,b] [--ttl 90d]
                          create an API key (printed once; only its keyed hash is stored)
  bans lift --config FILE IP|IPv6-PREFIX|identity:SUBJECT@ISSUER|session:HASH
                          lift an abuse ban on every instance sharing the config's Redis
  store rekey --config FILE
                          rewrite the state files under state.master_key
  journal verify --config FILE
                          check the journal of changes for edits, deletions and a cut tail
  spec lint [--config FILE | FILE...] [--format text|json|sarif] [--fail-on error|warning|info|none]
                          lint OpenAPI documents for security (OWASP API Top 10 rules and
                          the gateway's own), with a config: against the routes they are on
  spec rules              list the lint rules
  docs --config FILE [--out FILE] [--format json|yaml]
                          write the API document the gateway publishes (attached documents
                          merged, with the gateway's security and answers; nothing internal)
  discover learn --from FILE [--config FILE] [--report]
                          learn the API from an access log or a recorded file: the learned
                          OpenAPI document, or the report against the config's documents
  discover export|report  what a running gateway learned (through its admin API)
  admin OPERATION [ARGS]  call the running gateway's admin API (plan, posture, bans, ban, unban,
                          revoke, unrevoke, drain, resume, reload, rotate-key, apikeys...);
                          the token from RAMPART_ADMIN_TOKEN or --token-file
  health [--url URL]      exit 0 when the gateway answers /healthz (container health checks)
  version [--sbom]        print the version, or a CycloneDX SBOM of the modules compiled in
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
	case "store":
		return cmdStore(args[1:], stdout, stderr)
	case "journal":
		return cmdJournal(args[1:], stdout, stderr)
	case "admin":
		return cmdAdmin(args[1:], stdout, stderr)
	case "spec":
		return cmdSpec(args[1:], stdout, stderr)
	case "audit":
		return cmdAudit(args[1:], stdout, stderr)
	case "docs":
		return cmdDocs(args[1:], stdout, stderr)
	case "discover":
		return cmdDiscover(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		return cmdVersion(args[1:], stdout, stderr)
	case "health":
		return cmdHealth(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "rampart: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// version is the release this source tree is (CHANGELOG.md's latest
// heading); a release build may set it with
// -ldflags "-X main.version=v1.2.3".
var version = "v0.9.0"

// versionString is the release, the module version when it differs (a
// go install of a tagged module) and, when the build recorded it, the
// commit, so that a build with -buildvcs=false still names its release.
func versionString() string {
	v, extra := version, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if mv := bi.Main.Version; mv != "" && mv != "(devel)" && mv != version {
			extra += " module " + mv
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				extra += " commit " + s.Value[:12]
			}
			if s.Key == "vcs.modified" && s.Value == "true" {
				extra += "+modified"
			}
		}
	}
	return fmt.Sprintf("rampart %s (%s%s)", v, runtime.Version(), extra)
}

// flags is one command's flag set: parse errors and usage go to stderr.
type flags struct {
	*flag.FlagSet
	usage  string
	stderr io.Writer
	config *string // --config, for commands that read a config file
	// --allow-literal-secrets, with --config: a literal secret in the file
	// is a warning, not an error (local development only).
	allowLiteral *bool
}

// newFlags makes the flag set of a command; usage is its usage line.
func newFlags(name, usage string, stderr io.Writer) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &flags{FlagSet: fs, usage: usage, stderr: stderr}
}

// withConfig adds the --config and --allow-literal-secrets flags.
func (f *flags) withConfig(help string) *flags {
	f.config = f.String("config", "", help)
	f.allowLiteral = f.Bool("allow-literal-secrets", false, "accept secrets written in the config file, with a warning (local development only)")
	return f
}

// loadOptions are the options of the --config file.
func (f *flags) loadOptions() config.LoadOptions {
	return config.LoadOptions{AllowLiteralSecrets: *f.allowLiteral}
}

// parse parses args; false means exit status 2 (the reason is printed).
// With --config, the flag is required.
func (f *flags) parse(args []string) bool {
	if err := f.Parse(args); err != nil {
		return false
	}
	if f.config != nil && *f.config == "" {
		fmt.Fprintf(f.stderr, "rampart %s: --config FILE is required\n", f.Name())
		return false
	}
	return true
}

// subcommand parses `<command> <sub> --config FILE` and loads the config;
// a nil config comes with the exit status to return.
func (f *flags) subcommand(args []string, sub string) (*config.Config, int) {
	if len(args) == 0 || args[0] != sub {
		return nil, f.bad()
	}
	if !f.parse(args[1:]) {
		return nil, 2
	}
	cfg := f.load()
	if cfg == nil {
		return nil, 1
	}
	return cfg, 0
}

// bad prints the usage line; it returns exit status 2.
func (f *flags) bad() int {
	fmt.Fprintln(f.stderr, "usage: "+f.usage)
	return 2
}

// load loads the --config file; nil after printing every problem.
func (f *flags) load() *config.Config {
	cfg, err := config.LoadWith(*f.config, f.loadOptions())
	if err != nil {
		printProblems(f.stderr, err)
		return nil
	}
	return cfg
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// fail prints err as the command's error and returns exit status 1.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "error: %v\n", err)
	return 1
}
