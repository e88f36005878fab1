package validate

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkJSON: the validate stage's JSON checks (one value, UTF-8,
// duplicate keys, limits) on a ~2 KiB object of 50 members, including
// handing the body on.
func BenchmarkJSON(b *testing.B) {
	var body strings.Builder
	body.WriteString("{")
	for i := 0; i < 50; i++ {
		if i > 0 {
			body.WriteString(",")
		}
		body.WriteString(`"key_` + strconv.Itoa(i) + `":"value number ` + strconv.Itoa(i) + `"`)
	}
	body.WriteString("}")
	h := New(Options{ContentTypes: []string{"application/json"}, JSON: true, MaxDepth: 32, MaxElements: 1000, MaxStringLength: 1024})(
		func(w http.ResponseWriter, r *http.Request) error {
			_, err := io.Copy(io.Discard, r.Body)
			return err
		})
	b.ReportAllocs()
	b.SetBytes(int64(body.Len()))
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("POST", "http://x/items", strings.NewReader(body.String()))
		req.Header.Set("Content-Type", "application/json")
		if err := h(nil, req); err != nil {
			b.Fatal(err)
		}
	}
}
