package waf

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

var (
	once    sync.Once
	shared  *WAF
	loadErr error
)

func pl1(t *testing.T) *WAF {
	t.Helper()
	once.Do(func() { shared, loadErr = New(Options{Paranoia: 1, AnomalyThreshold: 5, BodyLimit: 128 << 10}) })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return shared
}

// run sends a request through the WAF stage; it returns the decision code
// ("" when passed) and whether the next stage was reached.
func run(t *testing.T, w *WAF, method, target string, hdr map[string]string, body string) (string, bool) {
	t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "http://api.example.com"+target, rb)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
	}
	req.Header.Set("Accept", "application/json")
	s := &pipeline.Scope{ClientIPText: "198.51.100.7", Path: req.URL.EscapedPath(), RequestID: "req-1", RouteID: "items"}
	req = req.WithContext(pipeline.WithScope(req.Context(), s))
	reached := false
	var gotBody string
	h := w.Middleware()(func(rw http.ResponseWriter, r *http.Request) error {
		reached = true
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		return nil
	})
	err := h(httptest.NewRecorder(), req)
	if err != nil {
		return pipeline.AsError(err).Code, reached
	}
	if body != "" && gotBody != body {
		t.Errorf("body changed on the way: %q", gotBody)
	}
	return "", reached
}

// TestBlocksAttacks: SQLi, XSS, RCE and LFI payloads in the query, a
// header and a JSON body are blocked at PL1 and never reach the next stage.
func TestBlocksAttacks(t *testing.T) {
	w := pl1(t)
	cases := []struct {
		name, method, target string
		hdr                  map[string]string
		body, want           string
	}{
		{"sqli query", "GET", "/items?id=" + url.QueryEscape("1' OR '1'='1' --"), nil, "", "waf.sqli"},
		{"sqli union", "GET", "/items?q=" + url.QueryEscape("x UNION SELECT password FROM users"), nil, "", "waf.sqli"},
		{"xss query", "GET", "/search?q=" + url.QueryEscape("<script>alert(document.cookie)</script>"), nil, "", "waf.xss"},
		{"rce query", "GET", "/run?cmd=" + url.QueryEscape(";cat /etc/passwd"), nil, "", ""},
		{"lfi query", "GET", "/file?name=" + url.QueryEscape("../../../../etc/passwd"), nil, "", "waf.lfi"},
		{"sqli header", "GET", "/items", map[string]string{"Referer": "1' UNION SELECT username, password FROM users--"}, "", "waf.sqli"},
		{"sqli json body", "POST", "/items", map[string]string{"Content-Type": "application/json"}, `{"name":"x' OR 1=1 --","qty":1}`, "waf.sqli"},
		{"xss json body", "POST", "/comments", map[string]string{"Content-Type": "application/json"}, `{"text":"<img src=x onerror=alert(1)>"}`, "waf.xss"},
	}
	for _, c := range cases {
		code, reached := run(t, w, c.method, c.target, c.hdr, c.body)
		if code == "" || reached {
			t.Errorf("%s: not blocked (code %q, reached %v)", c.name, code, reached)
			continue
		}
		if c.want != "" && code != c.want {
			t.Errorf("%s: code %s, want %s", c.name, code, c.want)
		}
	}
}

// TestNoFalsePositiveOnJSONAPI: ordinary JSON API traffic passes at PL1.
func TestNoFalsePositiveOnJSONAPI(t *testing.T) {
	w := pl1(t)
	ok := []struct{ method, target, body string }{
		{"GET", "/v1/orders?page=2&sort=created_at&status=shipped", ""},
		{"POST", "/v1/orders", `{"customer_id":"c_1234","items":[{"sku":"BOOK-42","qty":2,"note":"gift wrap, please"}],"currency":"EUR"}`},
		{"PUT", "/v1/users/42", `{"name":"O'Brien","email":"ob@example.com","bio":"I like select items and union jacks."}`},
		{"GET", "/v1/search?q=best+coffee+in+town", ""},
	}
	for _, c := range ok {
		hdr := map[string]string{}
		if c.body != "" {
			hdr["Content-Type"] = "application/json"
		}
		if code, reached := run(t, w, c.method, c.target, hdr, c.body); code != "" || !reached {
			t.Errorf("%s %s: blocked as %s", c.method, c.target, code)
		}
	}
}

// TestArgumentLimit: a request with more arguments than max_args is
// refused (403 waf.limits) in the query and in a JSON body, without the
// CRS evaluating each argument; at the limit it passes.
func TestArgumentLimit(t *testing.T) {
	w, err := New(Options{Paranoia: 1, AnomalyThreshold: 5, BodyLimit: 128 << 10, MaxArgs: 20})
	if err != nil {
		t.Fatal(err)
	}
	query := func(n int) string {
		var q []string
		for i := 0; i < n; i++ {
			q = append(q, "a"+strconv.Itoa(i)+"=1")
		}
		return "/items?" + strings.Join(q, "&")
	}
	body := func(n int) string {
		var m []string
		for i := 0; i < n; i++ {
			m = append(m, `"k`+strconv.Itoa(i)+`":1`)
		}
		return "{" + strings.Join(m, ",") + "}"
	}
	json := map[string]string{"Content-Type": "application/json"}
	if code, reached := run(t, w, "GET", query(20), nil, ""); code != "" || !reached {
		t.Errorf("20 query args: %q", code)
	}
	if code, reached := run(t, w, "GET", query(21), nil, ""); code != "waf.limits" || reached {
		t.Errorf("21 query args: %q reached=%v", code, reached)
	}
	if code, reached := run(t, w, "POST", "/items", json, body(20)); code != "" || !reached {
		t.Errorf("20 JSON members: %q", code)
	}
	if code, reached := run(t, w, "POST", "/items", json, body(500)); code != "waf.limits" || reached {
		t.Errorf("500 JSON members: %q reached=%v", code, reached)
	}
}

// TestSecurityEvents: a block carries the rule ids for the event stream
// (the gateway emits the refusal); a detection-only match is emitted as
// waf.detected with the rule ids, the route and the request id. Neither
// carries the payload.
func TestSecurityEvents(t *testing.T) {
	payload := "1' UNION SELECT secret_column FROM vault--"
	for _, detect := range []bool{false, true} {
		rec := &pipeline.EventRecorder{}
		w, err := New(Options{Paranoia: 1, AnomalyThreshold: 5, BodyLimit: 1 << 10, DetectionOnly: detect, Events: rec})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "http://api.example.com/items?q="+url.QueryEscape(payload), nil)
		req = req.WithContext(pipeline.WithScope(req.Context(), &pipeline.Scope{RequestID: "req-1", RouteID: "items", Path: "/items"}))
		err = w.Middleware()(func(http.ResponseWriter, *http.Request) error { return nil })(httptest.NewRecorder(), req)
		evs := rec.Events()
		if !detect {
			d := pipeline.AsError(err)
			if d == nil || d.Code != "waf.sqli" || len(d.Rules) == 0 || !strings.HasPrefix(d.Rules[0], "942") {
				t.Fatalf("block: %+v", d)
			}
			if len(evs) != 0 {
				t.Fatalf("blocking mode emitted %+v (the gateway emits refusals)", evs)
			}
			continue
		}
		if err != nil || len(evs) != 1 {
			t.Fatalf("detection only: err %v, events %+v", err, evs)
		}
		ev := evs[0]
		if ev.Name != "waf.detected" || ev.Code != "waf.sqli" || len(ev.Rules) == 0 || ev.RequestID != "req-1" || ev.Route != "items" || ev.Path != "/items" {
			t.Fatalf("event %+v", ev)
		}
		if s := fmt.Sprintf("%+v", ev); strings.Contains(s, "secret_column") || strings.Contains(s, "UNION") {
			t.Fatalf("event carries the payload: %s", s)
		}
	}
}
