// Package quickstart holds `rampart quickstart`: an embedded config, a demo
// upstream to put behind it, and the guide printed at start.
package quickstart

import (
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

//go:embed quickstart.yaml
var configTemplate string

// Config returns the embedded config with the gateway's listen address,
// the demo upstream's, the development IdP's and the admin listener's
// addresses and the state directory filled in. The admin token is read
// from RAMPART_QUICKSTART_ADMIN_TOKEN, the master key from the state
// directory (see PrepareState).
func Config(listen, upstream, idp, admin, stateDir string) []byte {
	r := strings.NewReplacer("{{LISTEN}}", listen, "{{UPSTREAM}}", upstream, "{{IDP}}", idp, "{{ADMIN}}", admin, "{{STATE}}", stateDir)
	return []byte(r.Replace(configTemplate))
}

// MasterKeyFile is the master key's file in the state directory.
const MasterKeyFile = "master.key"

// PrepareState makes the state directory (0700) and, when it holds no
// master key, generates one (32 random bytes, hex, 0600). It reports
// whether it generated the key.
func PrepareState(dir string) (created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	path := filepath.Join(dir, MasterKeyFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		f.Close()
		return false, err
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return false, err
	}
	return true, nil
}

// DefaultStateDir is where quickstart keeps its state unless told:
// $XDG_STATE_HOME/rampart/quickstart, or ~/.local/state/rampart/quickstart.
func DefaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "rampart", "quickstart")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "rampart", "quickstart")
	}
	return filepath.Join(os.TempDir(), "rampart-quickstart")
}

// Demo is the built-in demo upstream. Its /admin endpoint has no route in
// the embedded config: the gateway must never reach it.
func Demo() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"message": "hello from the demo upstream", "path": r.URL.Path})
	})
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"id": r.PathValue("id"), "name": "user " + r.PathValue("id"),
			"email": "user" + r.PathValue("id") + "@demo.example"}) // personal data the discovery report finds
	})
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"order": r.PathValue("id"), "status": "shipped"})
	})
	mux.HandleFunc("GET /search", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"query": r.URL.Query().Get("q"), "results": []string{}})
	})
	var redeemed atomic.Int64
	mux.HandleFunc("POST /vouchers/redeem", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // a check, then a write: the window a race aims at
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"redemption": redeemed.Add(1)})
	})
	mux.HandleFunc("POST /login", login)
	mux.HandleFunc("/echo/", echo)
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/admin", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"secret": "the gateway should never have let you in"})
	})
	return mux
}

// login accepts user alice with password correct-horse (a form or a JSON
// body) and refuses everything else with 401.
func login(w http.ResponseWriter, r *http.Request) {
	user, pass := r.PostFormValue("user"), r.PostFormValue("password")
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var b struct{ User, Password string }
		_ = json.NewDecoder(r.Body).Decode(&b)
		user, pass = b.User, b.Password
	}
	if user != "alice" || pass != "correct-horse" {
		w.WriteHeader(http.StatusUnauthorized)
		writeJSON(w, map[string]any{"error": "invalid credentials"})
		return
	}
	writeJSON(w, map[string]any{"welcome": user})
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

// GuideOptions fill the guide printed when quickstart starts.
type GuideOptions struct {
	// Addr is the gateway's listen address; Admin the admin listener's.
	Addr, Admin string
	// Token is a valid access token of the development IdP with the
	// orders:read scope; NoScope one without it; WrongAudience one for
	// another API.
	Token, NoScope, WrongAudience string
	// AdminToken signs in to the dashboard and /metrics.
	AdminToken string
	// Self is how the user starts rampart ("rampart", "./rampart",
	// "go run ./cmd/rampart"), for the commands the guide prints.
	Self string
	// Issuer is the development IdP's issuer.
	Issuer string
	// StateDir holds the master key and the encrypted runtime state;
	// KeyCreated says the master key was generated at this start.
	StateDir   string
	KeyCreated bool
	// Audit is the one-line audit summary of the config.
	Audit string
}

// Guide is the walk through every practice that quickstart prints.
func Guide(o GuideOptions) string {
	key := "Master key (encrypts the runtime state at rest): " + filepath.Join(o.StateDir, MasterKeyFile)
	if o.KeyCreated {
		key = "Generated a master key (encrypts the runtime state at rest): " + filepath.Join(o.StateDir, MasterKeyFile)
	}
	return fmt.Sprintf(guide, "http://"+o.Addr, o.Token, o.WrongAudience, o.Admin, o.AdminToken, o.NoScope, o.Self, key,
		o.Issuer, url.QueryEscape(o.Issuer), o.Audit)
}

// guide: %[1]s base URL, %[2]s token, %[3]s other-audience token, %[4]s
// admin address, %[5]s admin token, %[6]s token without the scope, %[7]s
// the rampart command, %[8]s the master key line, %[9]s the IdP's issuer,
// %[10]s the issuer query-escaped, %[11]s the audit summary.
const guide = `Rampart quickstart: gateway on %[1]s in front of a built-in demo upstream.

  Live security dashboard: http://%[4]s/dashboard/
  API docs portal (every route, its security and answers): %[1]s/api-docs/
  Admin token (sign in with it; new at every start): %[5]s
  %[8]s
  Audit of this demo config: %[11]s
  (public routes and a development IdP by design; details: %[7]s audit --quickstart)

  Watch attacks being blocked live: in another terminal run
    %[7]s traffic --target %[1]s --duration 2m
  (normal clients and attackers, each from its own 127.0.0.x address: an
  injector, a scanner, a brute-forcer with a session cookie, a racer, a
  scraper, then a flood; expect blocks, bans of addresses and of the
  session, duplicate redemptions refused, and the flood in the anomaly
  panel).

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

  # authorization: a valid token without the orders:read scope (403)
  curl -i -H "Authorization: Bearer %[6]s" %[1]s/orders/7

  # rate limiting: 5 login attempts a minute per client; the 6th is 429
  # with Retry-After and RateLimit headers
  for i in 1 2 3 4 5; do curl -s -o /dev/null -w '%%{http_code} ' -d 'user=alice&password=guess' %[1]s/login; done; echo
  curl -si -d 'user=alice&password=guess' %[1]s/login | grep -iE '^(HTTP|retry-after|ratelimit)'

  # input validation on /echo: JSON bodies of at most 1 KiB
  curl -i -X POST -H 'Content-Type: text/plain' -d 'hi' %[1]s/echo                     # 415
  curl -i -X POST -H 'Content-Type: application/json' -d '{"a":1,"a":2}' %[1]s/echo     # 400 duplicate member
  head -c 2000 /dev/zero | tr '\0' 'a' | curl -i -X POST -H 'Content-Type: application/json' --data-binary @- %[1]s/echo  # 413

  # the WAF (OWASP CRS) on /search: SQL injection is refused (403 waf.sqli)
  curl -i "%[1]s/search?q=1%%27%%20OR%%20%%271%%27=%%271"

  # metrics for Prometheus (admin token required)
  curl -s -H "Authorization: Bearer %[5]s" http://%[4]s/metrics | grep rampart_requests_total

  # what the gateway learned from the traffic it forwarded: operations no
  # document declares (shadow), and personal data in responses
  curl -s -H "Authorization: Bearer %[5]s" http://%[4]s/api/v1/discovery/report
  curl -s -H "Authorization: Bearer %[5]s" http://%[4]s/api/v1/discovery/openapi   # the learned OpenAPI document

  # this config graded against the eight practices of gateway security,
  # what the last reload changed (the dashboard's Security posture panel)
  curl -s -H "Authorization: Bearer %[5]s" http://%[4]s/api/v1/posture

  # a ban: probing unknown paths is scanning; within a few probes the
  # client is banned for a minute (403 abuse.banned with Retry-After), on
  # every route, and the ban shows on the dashboard
  for i in $(seq 10); do curl -s -o /dev/null -w '%%{http_code} ' %[1]s/probe-$i; done; echo

  # the admin API: revoke every token of alice for an hour; her token is
  # refused at once (401 authn.revoked), and the revocation is kept,
  # encrypted, in the state directory across restarts; then lift it
  curl -s -H "Authorization: Bearer %[5]s" -H 'Content-Type: application/json' \
       -d '{"issuer":"%[9]s","subject":"alice","for":"1h"}' http://%[4]s/api/v1/revocations
  curl -i -H "Authorization: Bearer $TOKEN" %[1]s/orders/7
  curl -s -X DELETE -H "Authorization: Bearer %[5]s" 'http://%[4]s/api/v1/revocations?issuer=%[10]s&subject=alice'

Stop with Ctrl-C.
`
