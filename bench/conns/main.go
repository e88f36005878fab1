// Command conns holds many idle keep-alive connections to a server: it
// opens n connections, sends one GET on each and reads its answer (so
// the server has served a request on every connection and holds what a
// served connection keeps), prints "ready", then waits for hold and
// closes them. bench/memory.sh reads a server's memory while they wait.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server address")
	path := flag.String("path", "/", "request path")
	n := flag.Int("n", 1000, "connections")
	hold := flag.Duration("hold", 10*time.Second, "how long to keep them open once ready")
	flag.Parse()
	conns := make([]net.Conn, *n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	sem := make(chan struct{}, 64) // opening at most 64 at once: no SYN flood
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := serve(*addr, *path)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if failed > 0 {
		log.Fatalf("%d of %d connections failed", failed, *n)
	}
	fmt.Println("ready")
	_ = os.Stdout.Sync()
	time.Sleep(*hold)
	for _, c := range conns {
		_ = c.Close()
	}
}

// serve opens a connection, sends one GET and reads its answer whole.
func serve(addr, path string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: conns\r\n\r\n", path); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("status %d: %v", resp.StatusCode, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
