package main

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// cmdHealth is `rampart health [--url URL]`: it asks a running gateway's
// admin listener for /healthz and exits 0 when it answers 200, 1
// otherwise: a container HEALTHCHECK that needs no shell or curl.
func cmdHealth(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("health", "rampart health [--url http://127.0.0.1:9901/healthz]", stderr)
	url := fs.String("url", "http://127.0.0.1:9901/healthz", "the admin listener's /healthz")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if !fs.parse(args) || fs.NArg() != 0 {
		return 2
	}
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get(*url)
	if err != nil {
		fmt.Fprintf(stderr, "unhealthy: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "unhealthy: %s\n", resp.Status)
		return 1
	}
	fmt.Fprintln(stdout, "healthy")
	return 0
}
