// Package quickstart holds `rampart quickstart`: an embedded config, a demo
// upstream to put behind it, and the guide printed at start.
package quickstart

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

//go:embed quickstart.yaml
var configTemplate string

// Config returns the embedded config with the gateway's listen address,
// the demo upstream's, the development IdP's and the admin listener's
// addresses filled in. The admin token is read from
// RAMPART_QUICKSTART_ADMIN_TOKEN.
func Config(listen, upstream, idp, admin string) []byte {
	r := strings.NewReplacer("{{LISTEN}}", listen, "{{UPSTREAM}}", upstream, "{{IDP}}", idp, "{{ADMIN}}", admin)
	return []byte(r.Replace(configTemplate))
}

// Demo is the built-in demo upstream. Its /admin endpoint has no route in
// the embedded config: the gateway must never reach it.
func Demo() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"message": "hello from the demo upstream", "path": r.URL.Path})
	})
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"id": r.PathValue("id"), "name": "user " + r.PathValue("id")})
	})
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"order": r.PathValue("id"), "status": "shipped"})
	})
	mux.HandleFunc("GET /search", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"query": r.URL.Query().Get("q"), "results": []string{}})
	})
	mux.HandleFunc("/echo/", echo)
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/admin", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"secret": "the gateway should never have let you in"})
	})
	return mux
}

// echo shows what the upstream received: the path the gateway forwarded
// and the headers after the gateway's hygiene.
func echo(w http.ResponseWriter, r *http.Request) {
	hdr := map[string]string{}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		hdr[k] = strings.Join(r.Header[k], ", ")
	}
	writeJSON(w, map[string]any{"method": r.Method, "path": r.URL.EscapedPath(), "query": r.URL.RawQuery, "headers": hdr})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Server", "demo-upstream/1.0") // the gateway strips it
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Guide is printed when quickstart starts; token is a valid access token
// of the development IdP and wrongAud one for another audience; admin is
// the admin listener and adminToken its token.
func Guide(addr, token, wrongAud, admin, adminToken string) string {
	base := "http://" + addr
	return fmt.Sprintf(`Rampart quickstart: gateway on %[1]s in front of a built-in demo upstream.

  Live security dashboard: http://%[4]s/dashboard/
  Admin token (sign in with it; new at every start): %[5]s

  Watch attacks being blocked live: in another terminal run
    rampart traffic --target %[1]s --duration 2m
  (normal clients, an injection attacker, a scanner and a brute-forcer,
  each from its own 127.0.0.x address; expect blocks, then bans).

Or try these (the JSON access log and security events appear below):

  # routing: an exact route and a template route (/users/{id})
  curl -i %[1]s/hello
  curl -i %[1]s/users/42

  # what the upstream received: a client-forged X-Forwarded-For is replaced,
  # X-Request-Id is set by the gateway, identity headers are stripped
  curl -s -H 'X-Forwarded-For: 6.6.6.6' -H 'X-Real-IP: 6.6.6.6' %[1]s/echo

  # no route: 404 problem+json, never forwarded (the demo upstream has /admin)
  curl -i %[1]s/admin

  # traversal: /echo/../admin normalises to /admin, which has no route (404);
  # an encoded dot segment is refused outright (400)
  curl -i --path-as-is %[1]s/echo/../admin
  curl -i --path-as-is '%[1]s/echo/%%2e%%2e/admin'

  # method not allowed (405, with Allow)
  curl -i -X DELETE %[1]s/hello

  # authentication: /orders/{id} needs a token from the development IdP
  curl -i %[1]s/orders/7                                   # 401
  TOKEN=%[2]s
  curl -i -H "Authorization: Bearer $TOKEN" %[1]s/orders/7   # 200
  # a validly signed token for another audience is refused too (401)
  curl -i -H "Authorization: Bearer %[3]s" %[1]s/orders/7

  # the WAF (OWASP CRS) on /search: SQL injection is refused (403 waf.sqli)
  curl -i "%[1]s/search?q=1%%27%%20OR%%20%%271%%27=%%271"

  # metrics for Prometheus (admin token required)
  curl -s -H "Authorization: Bearer %[5]s" http://%[4]s/metrics | grep rampart_requests_total

Stop with Ctrl-C.
`, base, token, wrongAud, admin, adminToken)
}
