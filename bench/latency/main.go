// Command latency is an open-loop load generator: it sends requests at a
// fixed rate over a fixed number of keep-alive connections and reports
// latency percentiles measured from each request's scheduled send time, so
// a slow response cannot hide the queueing it causes (no coordinated
// omission). wrk measures throughput at saturation; this measures the
// latency a proxy adds below it.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/", "target URL")
	rate := flag.Int("rate", 5000, "requests per second, total")
	conns := flag.Int("conns", 50, "connections")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	header := flag.String("header", "", "one request header, \"Name: value\"")
	bodyFile := flag.String("body", "", "send POST requests with this file's content as the body (default: GET)")
	contentType := flag.String("content-type", "application/json", "the POST body's Content-Type")
	shedding := flag.Bool("shed", false, "count 503 answers as shed, not errors, and leave them out of the latencies (a 7th field: the shed count)")
	flag.Parse()
	var body []byte
	if *bodyFile != "" {
		b, err := os.ReadFile(*bodyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		body = b
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	interval := time.Duration(float64(time.Second) * float64(*conns) / float64(*rate))
	start := time.Now().Add(50 * time.Millisecond)
	end := start.Add(*dur)
	var mu sync.Mutex
	var lat []time.Duration
	errs, shed := 0, 0
	var wg sync.WaitGroup
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, int(dur.Seconds()*float64(*rate)/float64(*conns))+16)
			localErrs, localShed := 0, 0
			next := start.Add(time.Duration(w) * interval / time.Duration(*conns))
			for next.Before(end) {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				req, _ := http.NewRequest(http.MethodGet, *url, nil)
				if body != nil {
					req, _ = http.NewRequest(http.MethodPost, *url, bytes.NewReader(body))
					req.Header.Set("Content-Type", *contentType)
				}
				if k, v, ok := strings.Cut(*header, ":"); ok {
					req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
				}
				resp, err := client.Do(req)
				status := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				switch {
				case *shedding && status == http.StatusServiceUnavailable:
					localShed++
				case status != http.StatusOK:
					localErrs++
					local = append(local, time.Since(next))
				default:
					local = append(local, time.Since(next))
				}
				next = next.Add(interval)
			}
			mu.Lock()
			lat = append(lat, local...)
			errs += localErrs
			shed += localShed
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(lat) == 0 {
		fmt.Fprintln(os.Stderr, "no requests")
		os.Exit(1)
	}
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) }
	// One line: requests errors p50 p90 p99 p99.9 (µs) [shed]
	fmt.Printf("%d %d %.0f %.0f %.0f %.0f", len(lat), errs, p(0.50), p(0.90), p(0.99), p(0.999))
	if *shedding {
		fmt.Printf(" %d", shed)
	}
	fmt.Println()
	if errs > 0 {
		os.Exit(1)
	}
}
