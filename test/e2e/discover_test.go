package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiscoverLearn learns offline from an access log and from a
// recorded file: the learned document, and with the config the report
// against its document (shadow, zombie, drift, sensitive data).
func TestDiscoverLearn(t *testing.T) {
	dir := t.TempDir()
	var log, rec strings.Builder
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&log, `{"msg":"access","method":"GET","path":"/v1/users/%d","status":200,"route":"users","upstream":"10.0.0.1:80"}`+"\n", i)
		fmt.Fprintf(&rec, `{"method":"GET","path":"/v1/users/%d","status":200,"response_content_type":"application/json","response_body":{"id":%d,"email":"u%d@corp.example","age":"x"}}`+"\n", i, i, i)
	}
	log.WriteString(`{"msg":"access","method":"GET","path":"/nothing","status":404,"route":"none","code":"router.not_found"}` + "\n")
	rec.WriteString(`{"method":"DELETE","path":"/v1/debug","status":204}` + "\n")
	os.WriteFile(filepath.Join(dir, "access.jsonl"), []byte(log.String()), 0o600)
	os.WriteFile(filepath.Join(dir, "recorded.jsonl"), []byte(rec.String()), 0o600)
	os.WriteFile(filepath.Join(dir, "users.yaml"), []byte(`openapi: 3.1.0
info: {title: u, version: "1"}
servers: [{url: /v1}]
paths:
  /users/{id}:
    get:
      responses:
        "200": {description: u, content: {application/json: {schema: {type: object, properties: {id: {type: integer}, age: {type: integer}}}}}}
  /old:
    get: {responses: {"200": {description: o}}}
`), 0o600)
	cfg := filepath.Join(dir, "rampart.yaml")
	os.WriteFile(cfg, []byte(`version: 1
listeners: [{name: l, address: "127.0.0.1:0"}]
upstreams: [{name: u, allow_plaintext: true, targets: [{url: "http://127.0.0.1:9"}]}]
routes: [{id: users, prefix: /v1, upstream: u, public: true, openapi: {spec: users.yaml}}]
`), 0o600)
	run := func(args ...string) (string, string, int) {
		code, out, errOut := runRampart(t, nil, args...)
		return out, errOut, code
	}
	out, errOut, code := run("discover", "learn", "--from", filepath.Join(dir, "access.jsonl"))
	if code != 0 || !strings.Contains(out, `"/v1/users/{userId}"`) || strings.Contains(out, "/nothing") || !strings.Contains(errOut, "learned from 50 requests") {
		t.Fatalf("learn from the access log: %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = run("discover", "learn", "--from", filepath.Join(dir, "recorded.jsonl"), "--config", cfg, "--report")
	var rep struct {
		Shadow, Zombie []struct{ Method, Path string }
		Drift          []struct{ Pointer, Kind string }
		Sensitive      []struct{ Class string } `json:"sensitive_data"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("report: %d\n%s%s", code, out, errOut)
	}
	if len(rep.Shadow) != 1 || rep.Shadow[0].Path != "/v1/debug" || len(rep.Zombie) != 1 || rep.Zombie[0].Path != "/v1/old" ||
		len(rep.Drift) != 2 || len(rep.Sensitive) != 1 || rep.Sensitive[0].Class != "email" {
		t.Fatalf("report: %s", out)
	}
	if strings.Contains(out, "corp.example") {
		t.Fatal("the report holds a value")
	}
}
