// Command rampart is a security-first API gateway. One file per command:
//
//	rampart run --config FILE        serve the configured listeners (run.go)
//	rampart check --config FILE      validate a config, print every problem (check.go)
//	rampart quickstart               run the embedded demo on 127.0.0.1:8080 (quickstart.go)
//	rampart traffic                  send demo traffic to the quickstart (quickstart.go)
//	rampart token --key FILE ...     mint a test JWT (token.go)
//	rampart keys create ...          create an API key, shown once (keys.go)
//	rampart bans lift ...            lift an abuse ban everywhere (bans.go)
//	rampart version                  print the version
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
  bans lift --config FILE IP|IPv6-PREFIX
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

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// fail prints err as the command's error and returns exit status 1.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "error: %v\n", err)
	return 1
}
