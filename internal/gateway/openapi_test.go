package gateway

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// ordersSpec is the document the OpenAPI tests attach (3.1; the 3.0
// variant differs only in the version line and nullable).
const ordersSpec = `openapi: 3.1.0
info: {title: Orders, version: "1.0"}
servers:
  - url: /v1
paths:
  /orders:
    get:
      parameters:
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
        - {name: X-Tenant, in: header, required: true, schema: {type: string, pattern: "^[a-z]{3,16}$"}}
      responses:
        "200": {description: a page}
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              required: [sku, qty]
              properties:
                sku: {type: string, minLength: 3, maxLength: 12}
                qty: {type: integer, minimum: 1, maximum: 50}
                note: {type: string, maxLength: 80}
      responses:
        "201": {description: created}
  /users/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer, minimum: 1}}
      responses:
        "200":
          description: one user
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                required: [id, name]
                properties:
                  id: {type: integer}
                  name: {type: string}
`

// openapiGateway starts a gateway whose route /v1 carries ordersSpec with
// the given openapi options; the service answers users with leak (when
// set) in the body.
func openapiGateway(t *testing.T, options string, leak bool) (*upstream, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "orders.yaml"), []byte(ordersSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/users/") && leak:
			w.Write([]byte(`{"id":7,"name":"Ada","password_hash":"$2b$12$abcdefghijklmnopqrstuv"}`))
		case strings.HasPrefix(r.URL.Path, "/v1/users/"):
			w.Write([]byte(`{"id":7,"name":"Ada"}`))
		case r.Method == "POST":
			w.WriteHeader(http.StatusCreated)
		default:
			w.Write([]byte(`[]`))
		}
	})
	cfg := baseConfig(up.hostPort(), "") + `  - id: orders
    prefix: /v1
    upstream: svc
    public: true
    openapi:
      spec: ` + filepath.Join(dir, "orders.yaml") + `
` + options
	_, addr := startGateway(t, cfg)
	return up, addr
}

func post(path, ctype, body string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: gw\r\nContent-Type: " + ctype + "\r\nContent-Length: " + itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body
}

func getReq(path string, hdr ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: gw\r\n" + strings.Join(hdr, "") + "Connection: close\r\n\r\n"
}

// problemErrors returns the problem document's errors[].pointer values.
func problemErrors(t *testing.T, raw string) []string {
	t.Helper()
	_, body, _ := strings.Cut(raw, "\r\n\r\n")
	var m struct {
		Errors []struct{ Pointer, Detail string } `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("problem %q: %v", body, err)
	}
	var out []string
	for _, e := range m.Errors {
		out = append(out, e.Pointer)
	}
	return out
}

// TestOpenAPIRequestValidation: schema violations in body, query, header
// and path parameters are 400 validate.schema naming the field by JSON
// pointer; a wrong content type is 415; undocumented paths and methods are
// 404/405 validate.undocumented. The service receives none of them, and a
// conforming request passes with its body intact.
func TestOpenAPIRequestValidation(t *testing.T) {
	up, addr := openapiGateway(t, "", false)
	tenant := "X-Tenant: acme\r\n"
	cases := []struct {
		name, raw, status, code, pointer string
	}{
		{"extra field", post("/v1/orders", "application/json", `{"sku":"BOOK-1","qty":1,"role":"admin"}`), "400", "validate.schema", "/body"},
		{"wrong type", post("/v1/orders", "application/json", `{"sku":"BOOK-1","qty":"1"}`), "400", "validate.schema", "/body/qty"},
		{"out of range", post("/v1/orders", "application/json", `{"sku":"BOOK-1","qty":5000}`), "400", "validate.schema", "/body/qty"},
		{"too long", post("/v1/orders", "application/json", `{"sku":"BOOK-1","qty":1,"note":"`+strings.Repeat("n", 81)+`"}`), "400", "validate.schema", "/body/note"},
		{"missing required", post("/v1/orders", "application/json", `{"sku":"BOOK-1"}`), "400", "validate.schema", "/body/qty"},
		// JSON syntax (and duplicate names) are checked before the schema.
		{"not json", post("/v1/orders", "application/json", `{"sku":`), "400", "validate.json", ""},
		{"wrong content type", post("/v1/orders", "text/plain", `sku=BOOK-1`), "415", "validate.content_type", ""},
		{"query out of range", getReq("/v1/orders?limit=1000", tenant), "400", "validate.schema", "/query/limit"},
		{"missing header", getReq("/v1/orders"), "400", "validate.schema", "/header/X-Tenant"},
		{"bad header", getReq("/v1/orders", "X-Tenant: ACME;drop\r\n"), "400", "validate.schema", "/header/X-Tenant"},
		{"bad path param", getReq("/v1/users/abc"), "400", "validate.schema", "/path/id"},
		{"path param range", getReq("/v1/users/0"), "400", "validate.schema", "/path/id"},
		{"undocumented path", getReq("/v1/admin/export"), "404", "validate.undocumented", ""},
		{"undocumented method", "DELETE /v1/orders HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", "405", "validate.undocumented", ""},
		{"path outside the server base", getReq("/v1/v1/orders", tenant), "404", "validate.undocumented", ""},
	}
	for _, c := range cases {
		resp := rawExchange(t, addr, c.raw)
		if got := strings.Join(statusLines(resp), ","); got != c.status {
			t.Errorf("%s: status %s, want %s\n%s", c.name, got, c.status, resp)
			continue
		}
		checkProblem(t, resp, c.code)
		if c.pointer != "" {
			if ptrs := problemErrors(t, resp); len(ptrs) == 0 || ptrs[0] != c.pointer {
				t.Errorf("%s: pointers %v, want %s", c.name, ptrs, c.pointer)
			}
		}
		if strings.Contains(resp, "specLine") || strings.Contains(resp, "line ") || strings.Contains(resp, "#/components") {
			t.Errorf("%s: problem leaks spec internals:\n%s", c.name, resp)
		}
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("service received %d invalid requests: %+v", n, up.received())
	}
	// The 405 names the methods the document declares on the path.
	resp := rawExchange(t, addr, "DELETE /v1/orders HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	if !strings.Contains(resp, "\r\nAllow: GET, POST\r\n") {
		t.Errorf("405 without the documented methods in Allow:\n%s", resp)
	}
	good := `{"sku":"BOOK-1","qty":2,"note":"gift"}`
	if got := statusLines(rawExchange(t, addr, post("/v1/orders", "application/json", good))); strings.Join(got, "") != "201" {
		t.Fatalf("valid order: %v", got)
	}
	// A client's spelling of the path is normalised before validation.
	if got := statusLines(rawExchange(t, addr, getReq("/v1/./orders?limit=5", tenant))); strings.Join(got, "") != "200" {
		t.Fatalf("valid list: %v", got)
	}
	r := up.received()
	if len(r) != 2 || r[0].Body != good || r[1].URI != "/v1/orders?limit=5" {
		t.Fatalf("service received %+v", r)
	}
}

// TestOpenAPIMonitorMode: undocumented operations pass in monitor mode
// (they are logged as shadow traffic); schema violations are still refused.
func TestOpenAPIMonitorMode(t *testing.T) {
	up, addr := openapiGateway(t, "      undocumented: monitor\n", false)
	if got := statusLines(rawExchange(t, addr, getReq("/v1/internal/debug"))); strings.Join(got, "") != "200" {
		t.Fatalf("undocumented in monitor mode: %v", got)
	}
	if got := statusLines(rawExchange(t, addr, post("/v1/orders", "application/json", `{"sku":"BOOK-1","qty":0}`))); strings.Join(got, "") != "400" {
		t.Fatalf("schema violation in monitor mode: %v", got)
	}
	if n := len(up.received()); n != 1 {
		t.Fatalf("service received %d, want the undocumented request only", n)
	}
}

// TestOpenAPIResponseValidation (OWASP API3): a response carrying an
// undeclared field (password_hash) is refused with 502 in enforce mode,
// passed in log mode, and a conforming response passes in both.
func TestOpenAPIResponseValidation(t *testing.T) {
	_, addr := openapiGateway(t, "      response: enforce\n", true)
	resp := rawExchange(t, addr, getReq("/v1/users/7"))
	if got := strings.Join(statusLines(resp), ""); got != "502" {
		t.Fatalf("leaking response in enforce mode: %s\n%s", got, resp)
	}
	checkProblem(t, resp, "validate.response")
	if strings.Contains(resp, "password_hash") || strings.Contains(resp, "$2b$") {
		t.Fatalf("the leaked field reached the client:\n%s", resp)
	}

	_, addr = openapiGateway(t, "      response: enforce\n", false)
	resp = rawExchange(t, addr, getReq("/v1/users/7"))
	if got := strings.Join(statusLines(resp), ""); got != "200" || !strings.HasSuffix(resp, `{"id":7,"name":"Ada"}`) {
		t.Fatalf("conforming response: %s\n%s", got, resp)
	}

	_, addr = openapiGateway(t, "      response: log\n", true)
	resp = rawExchange(t, addr, getReq("/v1/users/7"))
	if got := strings.Join(statusLines(resp), ""); got != "200" || !strings.Contains(resp, "password_hash") {
		t.Fatalf("log mode must pass the response: %s\n%s", got, resp)
	}
}

// TestOpenAPIBrokenSpec: a broken document is a config error naming the
// route's openapi.spec key, and a reload with it keeps the old plan.
func TestOpenAPIBrokenSpec(t *testing.T) {
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"syntax.yaml":  "openapi: 3.1.0\ninfo: {title: x\npaths: {}\n",
		"version.yaml": "swagger: \"2.0\"\ninfo: {title: x, version: \"1\"}\npaths: {}\n",
		"ref.yaml":     "openapi: 3.1.0\ninfo: {title: x, version: \"1\"}\npaths:\n  /a:\n    get:\n      responses:\n        \"200\":\n          description: x\n          content:\n            application/json:\n              schema: {$ref: \"#/components/schemas/Missing\"}\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig("127.0.0.1:9", "") + "  - id: broken\n    prefix: /v1\n    upstream: svc\n    public: true\n    openapi:\n      spec: " + path + "\n"
		c, err := config.Parse([]byte(cfg), "gw.yaml")
		if err != nil {
			t.Fatalf("%s: parse: %v", name, err)
		}
		_, err = New(c, pipeline.Deps{Now: time.Now})
		if err == nil {
			t.Fatalf("%s: a broken document compiled", name)
		}
		if msg := err.Error(); !strings.Contains(msg, "gw.yaml:") || !strings.Contains(msg, "routes[3].openapi.spec") || !strings.Contains(msg, name) {
			t.Errorf("%s: error does not locate the problem: %v", name, msg)
		}
	}
}
