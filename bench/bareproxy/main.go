// Command bareproxy is the Go floor of the benchmark: httputil.ReverseProxy
// with zero features (no hygiene, no logging, no limits), tuned as a Go
// proxy written for speed would be: pooled copy buffers, a Transport
// with the same keep-alive pool size as rampart, no compression
// negotiation, buffers sized for small API answers, and no HTTP/2
// attempt. The comparison is about what the gateway's features cost over
// the best a plain Go proxy does, not about connection churn or
// allocation the floor could have avoided.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// pool recycles ReverseProxy's 32 KiB copy buffers.
type pool struct{ p sync.Pool }

func (b *pool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *pool) Put(x []byte) { b.p.Put(&x) }

func main() {
	addr := flag.String("addr", "127.0.0.1:9101", "listen address")
	target := flag.String("target", "http://127.0.0.1:9100", "upstream URL")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil {
		log.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
			ReadBufferSize:      16 << 10,
			WriteBufferSize:     16 << 10,
		},
		BufferPool: &pool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}},
		ErrorLog:   log.New(io.Discard, "", 0), // wrk's cut connections at the end of a run
	}
	srv := &http.Server{Addr: *addr, Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
