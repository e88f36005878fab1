package main

import (
	"fmt"
	"io"
	"os"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/journal"
)

// record appends a change made by a command to the config's journal
// (none configured: nothing); a failure is reported, not fatal.
func record(stderr io.Writer, cfg *config.Config, event string, attrs map[string]string) {
	j, err := journal.FromConfig(cfg.Journal, nil)
	if err == nil {
		err = j.Append(event, "cli", attrs)
	}
	if err != nil {
		fmt.Fprintf(stderr, "warning: journal: %v\n", err)
	}
}

// cmdJournal is `rampart journal verify`: it checks the chain of the
// config's journal (with its checkpoint key) and reports the first record
// that was edited, deleted, inserted or reordered, and an unsealed tail.
func cmdJournal(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("journal verify", "rampart journal verify --config FILE", stderr).withConfig("config file (its journal section)")
	cfg, code := fs.subcommand(args, "verify")
	if cfg == nil {
		return code
	}
	if cfg.Journal == nil {
		fmt.Fprintf(stderr, "error: %s has no journal section\n", *fs.config)
		return 1
	}
	f, err := os.Open(cfg.Journal.Output)
	if err != nil {
		return fail(stderr, err)
	}
	defer f.Close()
	var key []byte
	if cfg.Journal.CheckpointKey.IsSet() {
		key = []byte(cfg.Journal.CheckpointKey.Reveal())
	}
	rep := journal.Verify(f, key)
	if rep.Problem != nil {
		fmt.Fprintf(stdout, "%s: BROKEN after %d good record(s): %v\n", cfg.Journal.Output, rep.Records-1, rep.Problem)
		return 1
	}
	seal := "sealed by a checkpoint"
	if !rep.Sealed {
		seal = "NOT sealed: records after the last checkpoint may have been cut (or rampart is running or did not stop cleanly)"
	}
	fmt.Fprintf(stdout, "%s: OK, %d record(s), %d checkpoint(s) verified; %s\n", cfg.Journal.Output, rep.Records, rep.Checkpoints, seal)
	return 0
}
