// Command bareproxy is the Go floor of the benchmark: httputil.ReverseProxy
// with zero features (no hygiene, no logging, no limits), given the same
// keep-alive pool size as rampart so that the comparison is about the
// proxy, not about connection churn.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9101", "listen address")
	target := flag.String("target", "http://127.0.0.1:9100", "upstream URL")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil {
		log.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
		ErrorLog:  log.New(io.Discard, "", 0), // wrk's cut connections at the end of a run
	}
	srv := &http.Server{Addr: *addr, Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
