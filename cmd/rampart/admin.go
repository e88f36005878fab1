package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// adminFlags are the flags of `rampart admin`: where the admin listener
// is, how to authenticate, and the operations' options.
type adminFlags struct {
	url, tokenFile, ca, cert, key *string
	dur, jti, issuer, subject     *string
	consumer, scopes              *string
}

// adminOp is one `rampart admin` operation: its arguments and the API
// request it makes from them.
type adminOp struct {
	args    string
	nargs   int
	request func(f adminFlags, pos []string) (method, path string, body any, err error)
}

func get(path string) func(adminFlags, []string) (string, string, any, error) {
	return func(adminFlags, []string) (string, string, any, error) { return "GET", path, nil, nil }
}

// adminOps maps each operation to the admin API (docs/admin.md).
var adminOps = map[string]adminOp{
	"plan":              {"", 0, get("/plan")},
	"events":            {"", 0, get("/events")},
	"bans":              {"", 0, get("/bans")},
	"revocations":       {"", 0, get("/revocations")},
	"apikeys":           {"", 0, get("/apikeys")},
	"discovery-openapi": {"", 0, get("/discovery/openapi")},
	"discovery-report":  {"", 0, get("/discovery/report")},
	"posture":           {"", 0, get("/posture")},
	"reload":            {"", 0, func(adminFlags, []string) (string, string, any, error) { return "POST", "/reload", nil, nil }},
	"rotate-key": {"", 0, func(adminFlags, []string) (string, string, any, error) {
		return "POST", "/assertion/rotate", nil, nil
	}},
	"ban": {"CLIENT [--for 15m]", 1, func(f adminFlags, p []string) (string, string, any, error) {
		return "POST", "/bans", map[string]string{"ip": p[0], "for": orDefault(*f.dur, "15m")}, nil
	}},
	"unban": {"CLIENT", 1, func(f adminFlags, p []string) (string, string, any, error) {
		return "DELETE", "/bans/" + url.PathEscape(p[0]), nil, nil
	}},
	"revoke": {"--jti ID | --issuer URL --subject SUB [--for 1h]", 0, func(f adminFlags, p []string) (string, string, any, error) {
		body, err := revocation(f)
		if err != nil {
			return "", "", nil, err
		}
		body["for"] = orDefault(*f.dur, "1h")
		return "POST", "/revocations", body, nil
	}},
	"unrevoke": {"--jti ID | --issuer URL --subject SUB", 0, func(f adminFlags, p []string) (string, string, any, error) {
		body, err := revocation(f)
		q := url.Values{}
		for k, v := range body {
			q.Set(k, v)
		}
		return "DELETE", "/revocations?" + q.Encode(), nil, err
	}},
	"drain":  {"UPSTREAM HOST:PORT", 2, drain(true)},
	"resume": {"UPSTREAM HOST:PORT", 2, drain(false)},
	"apikey-create": {"--consumer NAME [--scopes a,b] [--for 2160h]", 0, func(f adminFlags, p []string) (string, string, any, error) {
		if *f.consumer == "" {
			return "", "", nil, errors.New("--consumer is required")
		}
		body := map[string]any{"consumer": *f.consumer, "scopes": splitList(*f.scopes)}
		if *f.dur != "" {
			body["for"] = *f.dur
		}
		return "POST", "/apikeys", body, nil
	}},
	"apikey-disable": {"PREFIX", 1, keyState(true)},
	"apikey-enable":  {"PREFIX", 1, keyState(false)},
	"apikey-delete": {"PREFIX", 1, func(f adminFlags, p []string) (string, string, any, error) {
		return "DELETE", "/apikeys/" + url.PathEscape(p[0]), nil, nil
	}},
}

func drain(drained bool) func(adminFlags, []string) (string, string, any, error) {
	return func(f adminFlags, p []string) (string, string, any, error) {
		return "PATCH", "/upstreams/" + url.PathEscape(p[0]) + "/targets/" + url.PathEscape(p[1]), map[string]bool{"drained": drained}, nil
	}
}

func keyState(disabled bool) func(adminFlags, []string) (string, string, any, error) {
	return func(f adminFlags, p []string) (string, string, any, error) {
		return "PATCH", "/apikeys/" + url.PathEscape(p[0]), map[string]bool{"disabled": disabled}, nil
	}
}

// revocation is the token (--jti) or subject (--issuer and --subject) of
// a revoke or unrevoke.
func revocation(f adminFlags) (map[string]string, error) {
	switch {
	case *f.jti != "" && *f.issuer == "" && *f.subject == "":
		return map[string]string{"jti": *f.jti}, nil
	case *f.jti == "" && *f.issuer != "" && *f.subject != "":
		return map[string]string{"issuer": *f.issuer, "subject": *f.subject}, nil
	}
	return nil, errors.New("name a token (--jti) or a subject (--issuer and --subject)")
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// cmdAdmin is `rampart admin OPERATION`: a client of the admin API. The
// token comes from RAMPART_ADMIN_TOKEN or --token-file, never from a flag
// value (which other users could read in the process list).
func cmdAdmin(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("admin", "rampart admin OPERATION [ARGS] [--url URL] [--token-file FILE] [--ca FILE] [--cert FILE --key FILE]", stderr)
	f := adminFlags{
		url:       fs.String("url", orDefault(os.Getenv("RAMPART_ADMIN_URL"), "http://127.0.0.1:9901"), "the admin listener (env RAMPART_ADMIN_URL)"),
		tokenFile: fs.String("token-file", "", "file holding the principal's token (default: env RAMPART_ADMIN_TOKEN)"),
		ca:        fs.String("ca", "", "CA bundle of the admin listener's certificate"),
		cert:      fs.String("cert", "", "client certificate (a principal by client_cert_san, or mTLS)"),
		key:       fs.String("key", "", "the client certificate's key"),
		dur:       fs.String("for", "", "how long (ban, revoke, apikey-create)"),
		jti:       fs.String("jti", "", "the token id (revoke, unrevoke)"),
		issuer:    fs.String("issuer", "", "the token issuer (revoke, unrevoke)"),
		subject:   fs.String("subject", "", "the token subject (revoke, unrevoke)"),
		consumer:  fs.String("consumer", "", "the API key's consumer (apikey-create)"),
		scopes:    fs.String("scopes", "", "the API key's scopes, comma-separated (apikey-create)"),
	}
	if len(args) == 0 || adminOps[args[0]].request == nil {
		return adminUsage(stderr)
	}
	op := adminOps[args[0]]
	// Flags may come before or after the operation's arguments.
	var pos []string
	for rest := args[1:]; ; rest = rest[1:] {
		if !fs.parse(rest) {
			return 2
		}
		if rest = fs.Args(); len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
	}
	if len(pos) != op.nargs {
		fmt.Fprintf(stderr, "usage: rampart admin %s %s\n", args[0], op.args)
		return 2
	}
	method, path, body, err := op.request(f, pos)
	if err != nil {
		return fail(stderr, err)
	}
	client, token, err := adminClient(f)
	if err != nil {
		return fail(stderr, err)
	}
	return adminDo(client, token, method, strings.TrimSuffix(*f.url, "/")+"/api/v1"+path, body, stdout, stderr)
}

func adminUsage(stderr io.Writer) int {
	fmt.Fprintln(stderr, "usage: rampart admin OPERATION [ARGS] [flags]\n\noperations:")
	for _, name := range slices.Sorted(maps.Keys(adminOps)) {
		fmt.Fprintf(stderr, "  %-15s %s\n", name, adminOps[name].args)
	}
	return 2
}

// adminClient is the HTTP client (TLS settings) and the token ("" with
// neither env nor file: a client certificate must name the principal).
func adminClient(f adminFlags) (*http.Client, string, error) {
	token := os.Getenv("RAMPART_ADMIN_TOKEN")
	if *f.tokenFile != "" {
		b, err := os.ReadFile(*f.tokenFile)
		if err != nil {
			return nil, "", err
		}
		token = strings.TrimSpace(string(b))
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if *f.ca != "" {
		pem, err := os.ReadFile(*f.ca)
		if err != nil {
			return nil, "", err
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("%s: no PEM certificate", *f.ca)
		}
	}
	if *f.cert != "" || *f.key != "" {
		c, err := tls.LoadX509KeyPair(*f.cert, *f.key)
		if err != nil {
			return nil, "", err
		}
		conf.Certificates = []tls.Certificate{c}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}, token, nil
}

// adminDo sends one request and prints the answer: the JSON indented on
// success, the problem's code and detail on failure (exit 1).
func adminDo(client *http.Client, token, method, target string, body any, stdout, stderr io.Writer) int {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		return fail(stderr, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return fail(stderr, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode >= 300 {
		var p struct{ Code, Detail string }
		_ = json.Unmarshal(raw, &p)
		fmt.Fprintf(stderr, "error: %d %s: %s\n", resp.StatusCode, p.Code, p.Detail)
		return 1
	}
	var out bytes.Buffer
	if json.Indent(&out, raw, "", "  ") != nil || out.Len() == 0 {
		fmt.Fprintln(stdout, "ok")
		return 0
	}
	fmt.Fprintln(stdout, strings.TrimSpace(out.String()))
	return 0
}
