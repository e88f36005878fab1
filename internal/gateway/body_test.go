package gateway

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bodyStagesConfig is a gateway with a 16 KiB body limit on routes that
// read bodies in every way the gateway can: all body stages at once
// (validate json+multipart, OpenAPI, WAF, the login-account reader), each
// alone, and a plain proxied route.
func bodyStagesConfig(t *testing.T, up string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "orders.yaml"), []byte(ordersSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "orders.yaml")
	route := func(id, extra string) string {
		return "  - id: " + id + "\n    prefix: /" + id + "\n    upstream: svc\n    public: true\n    max_body_bytes: 16KiB\n" + extra
	}
	return `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up + `"}]}]
abuse: {fuzzing: {disabled: true}}   # every request here is refused input on purpose
routes:
` + route("v1", "    validate: {json: {}, multipart: {}}\n    openapi: {spec: "+spec+", undocumented: monitor}\n    waf: {paranoia: 1}\n    abuse_account: {json_field: sku}\n") +
		route("openapi", "    openapi: {spec: "+spec+", undocumented: monitor}\n") +
		route("json", "    validate: {json: {}}\n") +
		route("multipart", "    validate: {multipart: {}}\n") +
		route("waf", "    waf: {paranoia: 1}\n") +
		route("account", "    abuse_account: {form_field: user}\n") +
		route("plain", "")
}

// sendBody writes a POST with body framed as asked and returns the
// response's status and body.
func sendBody(t *testing.T, addr, path, ctype, body, framing string) (string, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	head := "POST " + path + " HTTP/1.1\r\nHost: gw\r\nContent-Type: " + ctype + "\r\n"
	go func() { // writes fail once the gateway has answered and closed: fine
		switch framing {
		case "content-length":
			io.WriteString(c, head+"Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
		case "chunked":
			io.WriteString(c, head+"Transfer-Encoding: chunked\r\n\r\n"+strconv.FormatInt(int64(len(body)), 16)+"\r\n"+body+"\r\n0\r\n\r\n")
		case "chunks-1k", "streamed":
			io.WriteString(c, head+"Transfer-Encoding: chunked\r\n\r\n")
			for i := 0; i < len(body); i += 1024 {
				part := body[i:min(i+1024, len(body))]
				if _, err := io.WriteString(c, strconv.FormatInt(int64(len(part)), 16)+"\r\n"+part+"\r\n"); err != nil {
					return
				}
				if framing == "streamed" {
					time.Sleep(5 * time.Millisecond)
				}
			}
			io.WriteString(c, "0\r\n\r\n")
		}
	}()
	resp, err := readResponse(bufio.NewReader(c))
	if err != nil {
		t.Fatalf("%s %s: %v", path, framing, err)
	}
	return resp.status, resp.body
}

type rawResponse struct{ status, body string }

func readResponse(br *bufio.Reader) (rawResponse, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return rawResponse{}, err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return rawResponse{}, io.ErrUnexpectedEOF
	}
	n := 0
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return rawResponse{}, err
		}
		if h == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "Content-Length") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	b := make([]byte, n)
	_, err = io.ReadFull(br, b)
	return rawResponse{f[1], string(b)}, err
}

// TestOversizeBodiesEveryStage is the attack: a body over the route's
// limit, framed with Content-Length, as one chunk, as 1 KiB chunks, or
// streamed slowly, in each content type a stage reads, gets 413
// request.body_too_large whichever stage reads past the limit first;
// never a 500, a 400 from a validator that saw half a body, or a 502; and
// none reaches the service.
func TestOversizeBodiesEveryStage(t *testing.T) {
	up := newUpstream(t, nil)
	_, addr := startGateway(t, bodyStagesConfig(t, up.hostPort()))
	big := strings.Repeat("a", 17<<10)
	bodies := map[string]string{
		"application/json":                  `{"sku":"abc","qty":1,"note":"` + big + `"}`,
		"multipart/form-data; boundary=XyZ": "--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n" + big + "\r\n--XyZ--\r\n",
		"application/x-www-form-urlencoded": "user=alice&pad=" + big,
		"application/octet-stream":          big,
	}
	for _, path := range []string{"/v1/orders", "/openapi/v1/orders", "/json", "/multipart", "/waf", "/account", "/plain"} {
		if path == "/openapi/v1/orders" {
			continue // the document's base path is /v1; /v1 above carries it
		}
		for ctype, body := range bodies {
			if path == "/v1/orders" && !strings.Contains(ctype, "json") && !strings.Contains(ctype, "multipart") {
				continue // 415 from the document before any body is read
			}
			for _, framing := range []string{"content-length", "chunked", "chunks-1k", "streamed"} {
				status, resp := sendBody(t, addr, path, ctype, body, framing)
				if status != "413" || !strings.Contains(resp, `"code":"request.body_too_large"`) {
					t.Errorf("%s %s %s: %s %s, want 413 request.body_too_large", path, ctype, framing, status, resp)
				}
			}
		}
	}
	if n := up.completeCount(); n != 0 {
		t.Fatalf("the service received %d oversize bodies", n)
	}
	// Security: oversize bodies are the client's doing; they must not
	// count as failures of the target (passive ejection, the breaker).
	if status, resp := sendBody(t, addr, "/plain", "text/plain", "small", "chunked"); status != "200" {
		t.Fatalf("after the oversize bodies, a small one: %s %s", status, resp)
	}
}

// TestOpenAPIOnlyOversizeChunked: the route of the report, with only an
// OpenAPI document and a 16 KiB limit: a 17 KiB chunked body is 413, not
// 400 validate.schema.
func TestOpenAPIOnlyOversizeChunked(t *testing.T) {
	dir := t.TempDir()
	spec := strings.Replace(ordersSpec, "servers:\n  - url: /v1\n", "servers:\n  - url: /openapi/v1\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "orders.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	up := newUpstream(t, nil)
	_, addr := startGateway(t, `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://`+up.hostPort()+`"}]}]
routes:
  - {id: orders, prefix: /openapi, upstream: svc, public: true, max_body_bytes: 16KiB, openapi: {spec: `+filepath.Join(dir, "orders.yaml")+`}}
`)
	body := `{"sku":"abc","qty":1,"note":"` + strings.Repeat("a", 17<<10) + `"}`
	for _, framing := range []string{"chunked", "chunks-1k", "streamed"} {
		if status, resp := sendBody(t, addr, "/openapi/v1/orders", "application/json", body, framing); status != "413" {
			t.Errorf("%s: %s %s, want 413", framing, status, resp)
		}
	}
	if status, resp := sendBody(t, addr, "/openapi/v1/orders", "application/json", `{"sku":"abc","qty":1}`, "chunked"); status != "200" {
		t.Errorf("a small chunked body: %s %s", status, resp)
	}
}

// TestDuplicateNamesRefused: with only an OpenAPI document (no validate
// section), a body naming a member twice, at any depth, is refused before
// the schema check sees the last copy; the service receives none.
func TestDuplicateNamesRefused(t *testing.T) {
	up, addr := openapiGateway(t, "", false)
	for _, body := range []string{
		`{"sku":"widget","qty":1000,"qty":1}`,
		`{"sku":"widget","qty":1,"note":"x","note":"y"}`,
		`{"sku":"widget","qty":1,"sku":"widget"}`,
		`{"sku":"widget","qty":1,"\u0071ty":2}`,
		`{"sku":"widget","qty":1,"note":{"a":1,"b":{"c":[{"d":1,"d":2}]}}}`, // at depth
		`[{"sku":"widget","qty":1},{"sku":"w","sku":"x","qty":1}]`,
	} {
		resp := rawExchange(t, addr, post("/v1/orders", "application/json", body))
		got := statusLines(resp)
		if len(got) != 1 || got[0] != "400" || !strings.Contains(resp, `"code":"validate.json"`) {
			t.Errorf("%s: %v, want 400 validate.json\n%s", body, got, resp)
		}
	}
	if n := len(up.received()); n != 0 {
		t.Fatalf("the service received %d bodies with duplicate names", n)
	}
	if got := statusLines(rawExchange(t, addr, post("/v1/orders", "application/json", `{"sku":"widget","qty":1}`))); len(got) != 1 || got[0] != "201" {
		t.Fatalf("a conforming body: %v", got)
	}
}
