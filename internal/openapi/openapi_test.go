package openapi

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

func compile(t testing.TB, file string, o Options) *Spec {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(data, "testdata", o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func check(s *Spec, method, target, body string) *pipeline.Error {
	req := httptest.NewRequest(method, "http://api.example.com"+target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Tenant", "acme")
	if err := s.checkRequest(req); err != nil {
		return pipeline.AsError(err)
	}
	return nil
}

// TestVersions: the same API in OpenAPI 3.0 (nullable) and 3.1 (type
// arrays) accepts and refuses the same requests.
func TestVersions(t *testing.T) {
	for _, file := range []string{"testdata/users-3.0.yaml", "testdata/users-3.1.yaml"} {
		s := compile(t, file, Options{})
		ok := []struct{ m, u, b string }{
			{"GET", "/api/users?limit=5", ""},
			{"GET", "/api/users/12", ""},
			{"POST", "/api/users", `{"name":"Ada","email":"ada@example.com","age":36,"nickname":null}`},
		}
		for _, c := range ok {
			if e := check(s, c.m, c.u, c.b); e != nil {
				t.Errorf("%s %s %s %s: %v", file, c.m, c.u, c.b, e)
			}
		}
		bad := []struct{ m, u, b, ptr string }{
			{"POST", "/api/users", `{"name":"Ada","email":"ada@example.com","age":36,"nickname":7}`, "/body/nickname"},
			{"POST", "/api/users", `{"name":"Ada","email":"ada@example.com","age":-1}`, "/body/age"},
			{"POST", "/api/users", `{"name":"Ada","email":"ada@example.com","age":3,"tags":["a","b","c","d","e","f"]}`, "/body/tags"},
			{"GET", "/api/users?limit=0", "", "/query/limit"},
		}
		for _, c := range bad {
			e := check(s, c.m, c.u, c.b)
			if e == nil || e.Code != "validate.schema" || len(e.Fields) == 0 || e.Fields[0].Pointer != c.ptr {
				t.Errorf("%s %s %s %s: %+v, want %s", file, c.m, c.u, c.b, e, c.ptr)
			}
		}
	}
}

// TestStrict: in strict mode an undeclared property is refused even where
// the schema does not forbid it (the User schema allows extra members).
func TestStrict(t *testing.T) {
	body := `{"id":1,"name":"Ada","is_admin":true}`
	req := func() *http.Request {
		r := httptest.NewRequest("PUT", "http://x/api/users/1", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	if err := compile(t, "testdata/users-3.1.yaml", Options{}).checkRequest(req()); err != nil {
		t.Fatalf("lenient: %v", err)
	}
	err := compile(t, "testdata/users-3.1.yaml", Options{Strict: true}).checkRequest(req())
	if e := pipeline.AsError(err); e == nil || e.Code != "validate.schema" || !strings.Contains(e.Detail, "is_admin") {
		t.Fatalf("strict: %v", err)
	}
}

// TestEvents: shadow traffic (monitor mode) and logged response findings
// are security events with the route and request id.
func TestEvents(t *testing.T) {
	rec := &pipeline.EventRecorder{}
	s := compile(t, "testdata/users-3.1.yaml", Options{Monitor: true, Response: "log", Events: rec})
	h := s.Middleware()(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, err := w.Write([]byte(`{"id":"not a number","name":"Ada"}`))
		return err
	})
	for _, target := range []string{"/api/shadow/export", "/api/users/3"} {
		req := httptest.NewRequest("GET", "http://x"+target, nil)
		req = req.WithContext(pipeline.WithScope(req.Context(), &pipeline.Scope{RouteID: "users", RequestID: "r-1"}))
		w := httptest.NewRecorder()
		if err := h(w, req); err != nil || w.Code != 200 {
			t.Fatalf("%s: %v %d", target, err, w.Code)
		}
	}
	evs := rec.Events()
	if len(evs) != 2 {
		t.Fatalf("events %+v", evs)
	}
	if e := evs[0]; e.Name != "validate.undocumented" || e.Path != "/api/shadow/export" || e.Attrs["mode"] != "monitor" || e.Route != "users" || e.RequestID != "r-1" {
		t.Errorf("shadow event %+v", e)
	}
	if e := evs[1]; e.Name != "validate.response" || !strings.Contains(e.Reason, "/response/id") || e.Attrs["upstream_status"] != "200" {
		t.Errorf("response event %+v", e)
	}
}

// TestLargeResponseStreams: a response over the buffer limit is passed
// through whole, unvalidated.
func TestLargeResponseStreams(t *testing.T) {
	s := compile(t, "testdata/users-3.1.yaml", Options{Response: "enforce", MaxResponseBytes: 64})
	big := `{"id":1,"name":"` + strings.Repeat("a", 200) + `"}`
	h := s.Middleware()(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; i < len(big); i += 50 {
			if _, err := w.Write([]byte(big[i:min(i+50, len(big))])); err != nil {
				return err
			}
		}
		return nil
	})
	rec := httptest.NewRecorder()
	if err := h(rec, httptest.NewRequest("GET", "http://x/api/users/1", nil)); err != nil {
		t.Fatal(err)
	}
	if rec.Body.String() != big {
		t.Fatalf("body %q", rec.Body.String())
	}
}

// TestBrokenDocuments: broken documents fail to compile with a reason.
func TestBrokenDocuments(t *testing.T) {
	for name, doc := range map[string]string{
		"yaml":      "openapi: 3.1.0\ninfo: {title: x\n",
		"swagger 2": "swagger: \"2.0\"\ninfo: {title: x, version: \"1\"}\npaths: {}\n",
		"no info":   "openapi: 3.1.0\npaths: {}\n",
		"bad ref":   "openapi: 3.1.0\ninfo: {title: x, version: \"1\"}\npaths:\n  /a:\n    get:\n      responses:\n        \"200\":\n          description: x\n          content:\n            application/json:\n              schema: {$ref: \"#/components/schemas/Missing\"}\n",
	} {
		if _, err := Compile([]byte(doc), "", Options{}); err == nil {
			t.Errorf("%s: compiled", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", 200)
	c := clip(long)
	if len(c) > 170 || !strings.HasSuffix(c, "…") || !strings.HasPrefix(long, strings.TrimSuffix(c, "…")) {
		t.Fatalf("clip: %q", c)
	}
	if clip("short") != "short" {
		t.Fatal("short string changed")
	}
}

// TestExampleDocuments: the documents shipped with the example configs
// compile.
func TestExampleDocuments(t *testing.T) {
	files, _ := filepath.Glob("../../examples/specs/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example documents")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Compile(data, filepath.Dir(f), Options{Response: "enforce"}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestStrictAllOf: strict mode does not make the members of an allOf
// refuse each other's properties (so a body composed with allOf is not
// tightened); an undeclared query parameter is still refused.
func TestStrictAllOf(t *testing.T) {
	doc := `openapi: 3.1.0
info: {title: x, version: "1"}
paths:
  /pets:
    post:
      parameters:
        - {name: dry_run, in: query, schema: {type: boolean}}
      requestBody:
        content:
          application/json:
            schema:
              allOf:
                - {type: object, properties: {name: {type: string}}}
                - {type: object, properties: {age: {type: integer}}}
      responses:
        "201": {description: created}
`
	s, err := Compile([]byte(doc), "", Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	post := func(target, body string) *pipeline.Error {
		r := httptest.NewRequest("POST", "http://x"+target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if err := s.checkRequest(r); err != nil {
			return pipeline.AsError(err)
		}
		return nil
	}
	if e := post("/pets?dry_run=true", `{"name":"Rex","age":3}`); e != nil {
		t.Errorf("allOf members refuse each other: %+v", e)
	}
	if e := post("/pets?debug=1", `{"name":"Rex"}`); e == nil || len(e.Fields) == 0 || e.Fields[0].Pointer != "/query/debug" {
		t.Errorf("undeclared query parameter: %+v", e)
	}
}

// TestRefusalLogsNoValues: the logged cause of a schema refusal names the
// field and the rule, never the value (which may be a secret).
func TestRefusalLogsNoValues(t *testing.T) {
	s := compile(t, "testdata/users-3.1.yaml", Options{})
	e := check(s, "POST", "/api/users", `{"name":"Ada","email":"ada@example.com","age":"hunter2-secret"}`)
	if e == nil || e.Err == nil {
		t.Fatal("not refused")
	}
	if strings.Contains(e.Err.Error(), "hunter2") || strings.Contains(e.Detail, "hunter2") {
		t.Errorf("the value leaks: %q / %q", e.Err, e.Detail)
	}
}

// TestJSONSchema2020Keywords: a 3.1 document that uses a keyword only
// JSON Schema 2020-12 defines (const, prefixItems, if/then) is enforced
// with it; one that does not is validated the same way by the faster
// built-in validator (TestVersions).
func TestJSONSchema2020Keywords(t *testing.T) {
	doc := `openapi: 3.1.0
info: {title: x, version: "1"}
paths:
  /jobs:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                kind: {const: export}
                window: {type: array, prefixItems: [{type: string}, {type: integer}]}
      responses:
        "201": {description: created}
`
	s, err := Compile([]byte(doc), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string) error {
		r := httptest.NewRequest("POST", "http://x/jobs", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return s.checkRequest(r)
	}
	if err := post(`{"kind":"export","window":["day",7]}`); err != nil {
		t.Errorf("conforming body refused: %v", err)
	}
	for _, bad := range []string{`{"kind":"delete"}`, `{"kind":"export","window":[7,"day"]}`} {
		if err := post(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
