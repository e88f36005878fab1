package discovery

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func learner(t *testing.T, s Settings, found func(Finding)) *Learner {
	l := New(16, s, t0, found)
	t.Cleanup(l.Close)
	return l
}

func get(l *Learner, route, path string, status int, body string) {
	u, _ := url.Parse(path)
	l.Learn(Sample{Route: route, Method: "GET", Path: u.Path, Query: u.Query(), Status: status, RespType: "application/json",
		RespBody: []byte(body), Time: t0})
}

func draftPaths(t *testing.T, l *Learner) map[string]map[string]any {
	var doc struct{ Paths map[string]map[string]any }
	if err := json.Unmarshal(l.Draft(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Paths
}

// TestTemplates: a mixed corpus of ids, UUIDs, hashes, dates, versions,
// slugs and a few fixed names gives the templates a person would write.
func TestTemplates(t *testing.T) {
	l := learner(t, Settings{}, nil)
	for i := 0; i < 40; i++ {
		get(l, "api", fmt.Sprintf("/v2/users/%d", 1000+i), 200, `{}`)
		get(l, "api", fmt.Sprintf("/v2/orders/3f2b8c1e-%04x-4c2d-9e7f-1a2b3c4d5e6f/items/%d", i, i), 200, `{}`)
		get(l, "api", fmt.Sprintf("/articles/how-to-tune-part-%s", strings.Repeat("x", i%7)+fmt.Sprint(i)), 200, `{}`)
		get(l, "api", fmt.Sprintf("/files/%064x", i*7919), 200, `{}`)
		get(l, "api", fmt.Sprintf("/reports/2026-11-%02d", 1+i%28), 200, `{}`)
	}
	for _, fixed := range []string{"/v2/users/me", "/v2/users/search", "/v2/status"} {
		get(l, "api", fixed, 200, `{}`)
	}
	paths := draftPaths(t, l)
	for _, want := range []string{"/v2/users/{userId}", "/v2/orders/{orderId}/items/{itemId}", "/articles/{articleName}",
		"/files/{fileId}", "/reports/{reportDate}", "/v2/users/me", "/v2/users/search", "/v2/status"} {
		if paths[want] == nil {
			t.Errorf("no template %s in %v", want, keys(paths))
		}
	}
	if len(paths) != 8 {
		t.Errorf("%d templates, want 8: %v", len(paths), keys(paths))
	}
	params, _ := json.Marshal(paths["/v2/users/{userId}"]["get"].(map[string]any)["parameters"])
	if !strings.Contains(string(params), `"type":"integer"`) {
		t.Errorf("userId parameter %s", params)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSchemas: learned schemas converge: required by presence in every
// sample, formats, enums for few values, integer and number joined.
func TestSchemas(t *testing.T) {
	l := learner(t, Settings{}, nil)
	statuses := []string{"pending", "paid", "shipped"}
	for i := 0; i < 60; i++ {
		note := ""
		if i%3 == 0 {
			note = `,"note":"gift"`
		}
		price := fmt.Sprint(i)
		if i%2 == 0 {
			price = fmt.Sprintf("%d.5", i)
		}
		get(l, "orders", fmt.Sprintf("/orders/%d?expand=items&page=%d", i, i), 200, fmt.Sprintf(
			`{"id":"3f2b8c1e-0000-4c2d-9e7f-1a2b3c4d5e6f","status":%q,"price":%s,"created":"2026-12-06T10:00:00Z","tags":["a"]%s}`,
			statuses[i%3], price, note))
	}
	op := draftPaths(t, l)["/orders/{orderId}"]["get"].(map[string]any)
	schema, _ := json.Marshal(op["responses"].(map[string]any)["200"])
	for _, want := range []string{`"required":["created","id","price","status","tags"]`, `"format":"uuid"`, `"format":"date-time"`,
		`"enum":["paid","pending","shipped"]`, `"price":{"type":"number"}`, `"tags":{"items":{`} {
		if !strings.Contains(string(schema), want) {
			t.Errorf("schema lacks %s: %s", want, schema)
		}
	}
	params, _ := json.Marshal(op["parameters"])
	if !strings.Contains(string(params), `"name":"expand","required":true`) && !strings.Contains(string(params), `"in":"query","name":"expand","required":true`) {
		t.Errorf("query parameters %s", params)
	}
}

// TestReport: against a declared document, shadow, zombie, drift and
// sensitive data are reported, each once.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "users.yaml")
	os.WriteFile(spec, []byte(`openapi: 3.1.0
info: {title: u, version: "1"}
servers: [{url: /v1}]
paths:
  /users/{id}:
    get:
      responses:
        "200":
          content:
            application/json:
              schema: {$ref: "#/components/schemas/User"}
  /legacy:
    get: {responses: {"200": {description: ok}}}
components:
  schemas:
    User:
      type: object
      properties:
        name: {type: string}
        age: {type: integer}
`), 0o600)
	d, err := LoadDeclared(spec)
	if err != nil {
		t.Fatal(err)
	}
	var findings []Finding
	l := learner(t, Settings{Window: time.Hour}, func(f Finding) { findings = append(findings, f) })
	for i := 0; i < 5; i++ {
		get(l, "users", fmt.Sprintf("/v1/users/%d", i), 200, `{"name":"a","age":"forty","email":"alice@corp.example","card":"4111 1111 1111 1111"}`)
	}
	get(l, "users", "/v1/admin/debug", 200, `{}`)
	rep := l.Report(map[string]Declared{"users": d}, t0.Add(2*time.Hour))
	js, _ := json.Marshal(rep)
	for _, want := range []string{`"path":"/v1/admin/debug"`, `"path":"/v1/legacy"`, `"pointer":"/email","kind":"undeclared_field"`,
		`"pointer":"/age","kind":"type_mismatch","seen":"string","declared":"integer"`, `"class":"email"`, `"class":"card_number"`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("report lacks %s: %s", want, js)
		}
	}
	if len(findings) != 2 {
		t.Errorf("%d findings reported, want 2 (email and card, once each): %+v", len(findings), findings)
	}
	if early := l.Report(map[string]Declared{"users": d}, t0.Add(time.Minute)); len(early.Zombie) != 0 || early.WindowComplete {
		t.Errorf("zombies before the window passed: %+v", early.Zombie)
	}
}

// TestNoValuesKept: secrets and personal data seen in bodies and query
// strings appear nowhere: not in the model, the draft, the report or
// the findings.
func TestNoValuesKept(t *testing.T) {
	var findings []Finding
	l := learner(t, Settings{Window: time.Nanosecond}, func(f Finding) { findings = append(findings, f) })
	secrets := []string{"hunter2-correct-horse", "4111111111111111", "alice.secret@corp.example", "123-45-6789",
		"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.MEUCIQDx3k1mZ8a9b7c6d5e4f3g2h1", "sess-9f8e7d6c5b4a"}
	for i := 0; i < 30; i++ {
		body := fmt.Sprintf(`{"password":%q,"card":%q,"email":%q,"ssn":%q,"token":%q,"session":%q}`,
			secrets[0], secrets[1], secrets[2], secrets[3], secrets[4], secrets[5])
		l.Learn(Sample{Route: "r", Method: "POST", Path: "/login", Query: url.Values{"password": {secrets[0]}, "api_key": {secrets[5]}},
			ReqType: "application/json", ReqBody: []byte(body), Status: 200, RespType: "application/json", RespBody: []byte(body), Time: t0})
	}
	var dump strings.Builder
	l.mu.Lock()
	model, _ := json.Marshal(l.routes)
	dump.Write(model)
	for _, rm := range l.routes {
		for _, op := range rm.ops {
			for _, q := range op.Query {
				fmt.Fprint(&dump, q.Shape.Enum)
			}
			walkShape(op.ReqBody, "", func(_ string, s *shape) { fmt.Fprint(&dump, s.Enum) })
			for _, r := range op.Statuses {
				walkShape(r.Body, "", func(_ string, s *shape) { fmt.Fprint(&dump, s.Enum) })
			}
		}
	}
	l.mu.Unlock()
	dump.Write(l.Draft())
	rep, _ := json.Marshal(l.Report(nil, t0.Add(time.Hour)))
	dump.Write(rep)
	fmt.Fprintf(&dump, "%+v", findings)
	for _, s := range secrets {
		if strings.Contains(dump.String(), s) {
			t.Errorf("%q is kept", s)
		}
	}
	if len(findings) == 0 {
		t.Error("no sensitive data reported")
	}
}

// TestBoundedUnderFlood: a flood of unique paths and of wide, deep
// bodies keeps the model within its bounds.
func TestBoundedUnderFlood(t *testing.T) {
	l := learner(t, Settings{MaxOperations: 300}, nil)
	wide := strings.Builder{}
	wide.WriteString("{")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&wide, `"f%d":{"a":{"b":{"c":[1,{"d":%d}]}}},`, i, i)
	}
	wide.WriteString(`"z":0}`)
	for i := 0; i < 100000; i++ {
		path := fmt.Sprintf("/p%d/q%d/r%d", i%997, i, i*31)
		body := "{}"
		if i%1000 == 0 {
			body = wide.String()
		}
		get(l, "flood", path, 200, body)
	}
	st := l.Stats()
	if st.Operations > 300 {
		t.Fatalf("%d operations kept, bound 300", st.Operations)
	}
	l.mu.Lock()
	nodes := 0
	for _, rm := range l.routes {
		for _, op := range rm.ops {
			for _, r := range op.Statuses {
				nodes += r.Body.nodes()
			}
		}
	}
	l.mu.Unlock()
	if nodes > 300*maxNodes {
		t.Fatalf("%d shape nodes", nodes)
	}
	if st.Learned+st.Bounded != 100000 {
		t.Fatalf("samples unaccounted for: %+v", st)
	}
}

// TestQueueFull: a full queue drops samples and counts them; the request
// path never waits.
func TestQueueFull(t *testing.T) {
	l := New(1, Settings{}, t0, nil)
	l.Close() // no worker: the queue fills
	for i := 0; i < 10; i++ {
		l.Offer(Sample{Route: "r", Method: "GET", Path: "/x", Status: 200})
	}
	if st := l.Stats(); st.Dropped != 9 {
		t.Fatalf("dropped %d, want 9", st.Dropped)
	}
}
