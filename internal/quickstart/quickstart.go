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
// the demo upstream's and the development IdP's addresses filled in.
func Config(listen, upstream, idp string) []byte {
	r := strings.NewReplacer("{{LISTEN}}", listen, "{{UPSTREAM}}", upstream, "{{IDP}}", idp)
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
// of the development IdP and wrongAud one for another audience.
func Guide(addr, token, wrongAud string) string {
	base := "http://" + addr
	return fmt.Sprintf(`Rampart quickstart: gateway on %[1]s in front of a built-in demo upstream.
Try these in another terminal (the JSON access log appears below):

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

Stop with Ctrl-C.
`, base, token, wrongAud)
}
