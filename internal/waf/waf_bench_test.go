package waf

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// benchStage measures the WAF stage alone (CRS PL1) on one clean request,
// with Coraza's own @rx ("stock") and with rampart's ("prefiltered"),
// side by side.
func benchStage(b *testing.B, method, target, contentType, body string) {
	for _, stock := range []bool{true, false} {
		name := "prefiltered"
		if stock {
			name = "stock"
		}
		b.Run(name, func(b *testing.B) { benchStageWith(b, stock, method, target, contentType, body) })
	}
}

func benchStageWith(b *testing.B, stock bool, method, target, contentType, body string) {
	w, err := New(Options{Paranoia: 1, AnomalyThreshold: 5, BodyLimit: 1 << 20, stockRegex: stock})
	if err != nil {
		b.Fatal(err)
	}
	h := w.Middleware()(func(rw http.ResponseWriter, r *http.Request) error {
		_, err := io.Copy(io.Discard, r.Body)
		return err
	})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(method, "http://api.example.com"+target, strings.NewReader(body))
		req.Header.Set("User-Agent", "bench/1.0")
		req.Header.Set("Accept", "application/json")
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		s := &pipeline.Scope{ClientIPText: "198.51.100.7", Path: req.URL.EscapedPath()}
		req = req.WithContext(pipeline.WithScope(req.Context(), s))
		if err := h(nil, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStageGET: a bodiless GET with one query parameter.
func BenchmarkStageGET(b *testing.B) {
	benchStage(b, "GET", "/api/items?page=2", "", "")
}

// BenchmarkStageJSON: the cost per JSON argument (clean objects of
// "key_i": "value number i" members, ~27 bytes each; 250 is just under the
// default max_args).
func BenchmarkStageJSON(b *testing.B) {
	for _, n := range []int{10, 50, 250} {
		var body strings.Builder
		body.WriteString("{")
		for i := 0; i < n; i++ {
			if i > 0 {
				body.WriteString(",")
			}
			body.WriteString(`"key_` + strconv.Itoa(i) + `":"value number ` + strconv.Itoa(i) + `"`)
		}
		body.WriteString("}")
		b.Run(strconv.Itoa(n)+"members", func(b *testing.B) {
			benchStage(b, "POST", "/api/items", "application/json", body.String())
		})
	}
}

// BenchmarkStageOrder: a realistic 1 KiB JSON order (bench/order.json,
// 33 leaves: names, addresses, free-text notes, prices).
func BenchmarkStageOrder(b *testing.B) {
	body, err := os.ReadFile("../../bench/order.json")
	if err != nil {
		b.Fatal(err)
	}
	benchStage(b, "POST", "/api/orders", "application/json", string(body))
}
