// Command tlshs measures a TLS server: full handshakes per second (a new
// connection and a full TLS 1.3 handshake each, no resumption), or
// resumed requests per second (a new connection resuming a session by
// ticket, then one GET). Bounded by count and time.
//
//	tlshs -addr 127.0.0.1:8443 -name api.bench.test -mode full -conns 8 -duration 5s
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "", "host:port")
	name := flag.String("name", "", "server name (SNI)")
	mode := flag.String("mode", "full", "full (handshakes) or resume (resumed connection + GET)")
	conns := flag.Int("conns", 8, "concurrent clients")
	duration := flag.Duration("duration", 5*time.Second, "how long to run")
	maxOps := flag.Int64("max", 2_000_000, "stop after this many operations")
	flag.Parse()
	var done, failed, resumed atomic.Int64
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	start := time.Now()
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conf := &tls.Config{ServerName: *name, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{"http/1.1"}}
			if *mode == "resume" {
				conf.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			}
			for time.Now().Before(deadline) && done.Load()+failed.Load() < *maxOps {
				did, err := once(*addr, conf, *mode == "resume")
				if err != nil {
					failed.Add(1)
					continue
				}
				done.Add(1)
				if did {
					resumed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	fmt.Printf("%s %s: %.0f/s (%d ok, %d resumed, %d failed, %.1fs)\n", *mode, *addr, float64(done.Load())/el, done.Load(), resumed.Load(), failed.Load(), el)
	if failed.Load() > done.Load()/100 {
		os.Exit(1)
	}
}

// once makes one connection: a handshake, and with get a GET on it. It
// reports whether the session was resumed.
func once(addr string, conf *tls.Config, get bool) (bool, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, err
	}
	c := tls.Client(raw, conf)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.Handshake(); err != nil {
		return false, err
	}
	did := c.ConnectionState().DidResume
	if !get {
		return did, nil
	}
	if _, err := c.Write([]byte("GET /bench/openapi.json HTTP/1.1\r\nHost: " + conf.ServerName + "\r\nConnection: close\r\n\r\n")); err != nil {
		return did, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return did, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return did, fmt.Errorf("status %d", resp.StatusCode)
	}
	return did, nil
}
