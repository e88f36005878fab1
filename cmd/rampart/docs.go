package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rampart-gw/rampart/internal/apidocs"
)

// cmdDocs is `rampart docs --config FILE [--out FILE] [--format json|yaml]`:
// it writes the API document the gateway publishes for the config (to
// stdout, or to --out, whose extension picks the format by default).
func cmdDocs(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("docs", "rampart docs --config FILE [--out FILE] [--format json|yaml]", stderr).withConfig("config file (its routes and their OpenAPI documents)")
	out := fs.String("out", "", "write the document here (default: standard output)")
	format := fs.String("format", "", "json or yaml (default: yaml, or --out's extension)")
	if !fs.parse(args) {
		return 2
	}
	if *format == "" {
		*format = "yaml"
		if strings.HasSuffix(*out, ".json") {
			*format = "json"
		}
	}
	if *format != "json" && *format != "yaml" {
		return fs.bad()
	}
	cfg := fs.load()
	if cfg == nil {
		return 1
	}
	doc, err := apidocs.Build(cfg)
	if err != nil {
		return fail(stderr, err)
	}
	for _, n := range doc.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	body := doc.YAML
	if *format == "json" {
		body = doc.JSON
	}
	if *out == "" {
		_, err = stdout.Write(body)
	} else {
		err = os.WriteFile(*out, body, 0o644)
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}
