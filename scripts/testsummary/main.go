// Command testsummary reads `go test -json` output on stdin and prints one
// line per package, the output of every failed test, and at the end the
// list of skipped tests with their reasons. It exits 1 when anything
// failed (or the stream held no result at all).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of test2json output.
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type pkg struct {
	tests, skipped int
	failed         []string
	result         string
	elapsed        float64
	output         []string // package-level output (build errors, panics)
}

func main() {
	code := summarize(os.Stdin, os.Stdout)
	os.Exit(code)
}

// summarize does the work of main; it returns the exit status.
func summarize(in io.Reader, out io.Writer) int {
	pkgs := map[string]*pkg{}
	testOut := map[string][]string{} // by package + test
	var skips []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			fmt.Fprintln(out, sc.Text()) // not JSON: a build failure's text
			continue
		}
		p := pkgs[e.Package]
		if p == nil {
			p = &pkg{}
			pkgs[e.Package] = p
		}
		key := e.Package + " " + e.Test
		switch {
		case e.Action == "output" && e.Test != "":
			testOut[key] = append(testOut[key], e.Output)
		case e.Action == "output":
			p.output = append(p.output, e.Output)
		case e.Test == "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			p.result, p.elapsed = e.Action, e.Elapsed
		case e.Action == "pass":
			p.tests++
		case e.Action == "fail":
			p.tests++
			p.failed = append(p.failed, e.Test)
		case e.Action == "skip":
			p.tests++
			p.skipped++
			skips = append(skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, skipReason(testOut[key])))
		}
	}
	return report(out, pkgs, testOut, skips)
}

// report prints the per-package lines, the failures and the skips.
func report(out io.Writer, pkgs map[string]*pkg, testOut map[string][]string, skips []string) int {
	names := make([]string, 0, len(pkgs))
	for n := range pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	status := 0
	if len(names) == 0 {
		status = 1
	}
	for _, n := range names {
		p := pkgs[n]
		switch {
		case p.result == "fail" || len(p.failed) > 0:
			status = 1
			fmt.Fprintf(out, "FAIL %s (%d tests, %d failed) %.1fs\n", n, p.tests, len(p.failed), p.elapsed)
			for _, t := range p.failed {
				fmt.Fprint(out, strings.Join(testOut[n+" "+t], ""))
			}
			if len(p.failed) == 0 {
				fmt.Fprint(out, strings.Join(p.output, ""))
			}
		case p.tests == 0:
			fmt.Fprintf(out, "ok   %s (no tests)\n", n)
		default:
			fmt.Fprintf(out, "ok   %s (%d tests, %d skipped) %.1fs\n", n, p.tests, p.skipped, p.elapsed)
		}
	}
	if len(skips) > 0 {
		sort.Strings(skips)
		fmt.Fprintf(out, "skipped (%d):\n", len(skips))
		for _, s := range skips {
			fmt.Fprintln(out, "  "+s)
		}
	}
	return status
}

// skipReason is the message a skipped test gave (its last output line
// before "--- SKIP"), without the file:line prefix.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		if _, after, ok := strings.Cut(l, ": "); ok && strings.Contains(l[:strings.Index(l, ": ")], ".go:") {
			return after
		}
		return l
	}
	return "(no reason given)"
}
