package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestChainOrder: the first middleware is outermost; nil ones are off.
func TestChainOrder(t *testing.T) {
	var trail []string
	mw := func(name string) Middleware {
		return func(next Handler) Handler {
			return func(w http.ResponseWriter, r *http.Request) error {
				trail = append(trail, name)
				return next(w, r)
			}
		}
	}
	h := Chain(func(http.ResponseWriter, *http.Request) error { trail = append(trail, "final"); return nil }, mw("a"), nil, mw("b"))
	if err := h(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(trail, ">"); got != "a>b>final" {
		t.Fatalf("order %s", got)
	}
}

// TestRenderNeverLeaks: a refusal is an RFC 9457 document with the code
// and request id, never the internal cause; headers a stage set for a
// success answer do not leak into it.
func TestRenderNeverLeaks(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	s := &Scope{RequestID: "rid-1"}
	r = r.WithContext(WithScope(r.Context(), s))
	w := httptest.NewRecorder()
	w.Header().Set("Set-Cookie", "session=1")
	w.Header().Set("Content-Encoding", "gzip")
	e := DenyErr(403, "authz.denied", "not allowed", errors.New("db password=hunter2 at 10.0.0.7"))
	e.Fields = []Field{{Pointer: "/body/a", Detail: "bad \u2028 \xff <x>"}}
	Render(w, r, e)
	if w.Code != 403 || w.Header().Get("Content-Type") != ProblemContentType || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	if w.Header().Get("Set-Cookie") != "" || w.Header().Get("Content-Encoding") != "" {
		t.Fatalf("success headers leaked: %v", w.Header())
	}
	body := w.Body.String()
	if strings.Contains(body, "hunter2") || strings.Contains(body, "10.0.0.7") {
		t.Fatalf("internal cause in the body: %s", body)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	if doc["code"] != "authz.denied" || doc["request_id"] != "rid-1" || doc["status"] != 403.0 || s.Decision != e {
		t.Fatalf("document %v", doc)
	}
}

// TestAsError: anything that is not a decision is a 500 without detail.
func TestAsError(t *testing.T) {
	if e := AsError(errors.New("boom")); e.Status != 500 || e.Code != "gateway.internal" || strings.Contains(e.Detail, "boom") {
		t.Fatalf("%+v", e)
	}
	d := Deny(429, "ratelimit.exceeded", "slow down")
	if AsError(d) != d {
		t.Fatal("a decision was replaced")
	}
}

// TestBodyReadError: over the limit is 413, anything else 400; both close.
func TestBodyReadError(t *testing.T) {
	if e := BodyReadError(&http.MaxBytesError{Limit: 5}); e.Status != 413 || e.Code != CodeBodyTooLarge || !e.Close {
		t.Fatalf("%+v", e)
	}
	if e := BodyReadError(errors.New("unexpected EOF")); e.Status != 400 || e.Code != CodeBodyError || !e.Close {
		t.Fatalf("%+v", e)
	}
}

// TestHeaderRules: the names and values net/http's Transport refuses.
func TestHeaderRules(t *testing.T) {
	for _, v := range []string{"a\rb", "a\nb", "a\x00b", "a\x7fb", "\x01"} {
		if ValidHeaderValue(v) {
			t.Errorf("value %q accepted", v)
		}
	}
	for _, v := range []string{"", "a b\tc", "caf\xc3\xa9"} {
		if !ValidHeaderValue(v) {
			t.Errorf("value %q refused", v)
		}
	}
	for _, n := range []string{"", "a b", "a:b", "a\nb", "é"} {
		if ValidHeaderName(n) {
			t.Errorf("name %q accepted", n)
		}
	}
}

// FuzzAppendJSONString: the escaper's output is a JSON string that
// decodes to what encoding/json's encoding of the same string decodes to
// (invalid UTF-8 as U+FFFD), and carries no raw byte a log viewer or a
// browser could misread (C0 control characters, <, >, &, U+2028/2029,
// invalid UTF-8).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "<script>&", "\u2028\u2029", "\xff\xfe", "tab\tnl\nquote\"bs\\", "\x00\x1f\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		got := AppendJSONString(nil, s)
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%q: %s is not a JSON string: %v", s, got, err)
		}
		_ = json.Unmarshal(want, &b)
		if a != b {
			t.Fatalf("%q: decodes to %q, encoding/json's to %q", s, a, b)
		}
		if !utf8.Valid(got) || strings.ContainsAny(string(got), "<>&\u2028\u2029") || strings.IndexFunc(string(got), func(r rune) bool { return r < 0x20 }) >= 0 {
			t.Fatalf("%q: unsafe bytes in %q", s, got)
		}
	})
}

// TestCallerFollowsAuthentication: the caller key is made once, and made
// again when authentication sets the identity.
func TestCallerFollowsAuthentication(t *testing.T) {
	s := &Scope{ClientKey: netip.MustParsePrefix("203.0.113.7/32")}
	before := s.Caller()
	if before != "ip\x00203.0.113.7/32" || s.Caller() != before {
		t.Fatalf("before authentication: %q", before)
	}
	s.Identity = &Identity{Issuer: "https://idp", Subject: "alice"}
	if after := s.Caller(); after != "id\x00https://idp\x00alice" {
		t.Fatalf("after authentication: %q", after)
	}
	var none *Scope
	if none.Caller() != "" {
		t.Fatal("a nil scope has a caller")
	}
	if k := Key32(string(make([]byte, 32))); k != [32]byte{} {
		t.Fatal("a raw 32-byte key is not taken as is")
	}
}

// TestReadBodyOnce: the body is read once; a later stage gets the same
// bytes; the request still carries the whole body; once anything read
// from it, it is no longer offered as whole.
func TestReadBodyOnce(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"voucher":"SPRING-1"}`))
	first, err := ReadBody(r)
	if err != nil || string(first) != `{"voucher":"SPRING-1"}` {
		t.Fatalf("first read: %q %v", first, err)
	}
	again, err := ReadBody(r)
	if err != nil || &again[0] != &first[0] {
		t.Fatal("read again rather than shared")
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 3))
	if string(b) != `{"v` {
		t.Fatalf("the request's body: %q", b)
	}
	if _, ok := BufferedBody(r); ok {
		t.Fatal("a partly read body offered as whole")
	}
}

// A body is read into a buffer of its declared length, and a body that
// does not match it (shorter, longer) is an error, not a truncated or
// padded body; one without a declared length is read as it comes.
func TestReadBodyDeclaredLength(t *testing.T) {
	for _, c := range []struct {
		body    string
		length  int64
		wantErr bool
	}{
		{`{"a":1}`, 7, false},
		{`{"a":1}`, -1, false},
		{`{"a":1}`, 5, true},  // longer than declared
		{`{"a":1}`, 10, true}, // shorter than declared
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
		r.ContentLength = c.length
		b, err := ReadBody(r)
		if (err != nil) != c.wantErr || err == nil && string(b) != c.body {
			t.Fatalf("%q declared %d: %q %v", c.body, c.length, b, err)
		}
	}
}

// Digest hashes from the stack when short and streams when long, to the
// same SHA-256 of the parts (each ended by a zero byte) and the tail.
func TestDigest(t *testing.T) {
	for _, tail := range [][]byte{[]byte(`{"x":1}`), bytes.Repeat([]byte("y"), 5000)} {
		want := sha256.Sum256(append([]byte("POST\x00/pay\x00"), tail...))
		if Digest(tail, "POST", "/pay") != want {
			t.Fatalf("a digest of a %d-byte tail differs", len(tail))
		}
	}
	body := []byte(`{"voucher":"SUMMER-1","amount":1250}`)
	if n := testing.AllocsPerRun(100, func() { _ = Digest(body, "POST", "/api/v1/pay", "", "application/json") }); n != 0 {
		t.Fatalf("%v allocations for a short digest", n)
	}
}
