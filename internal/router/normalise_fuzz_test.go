package router

import (
	"strings"
	"testing"
)

// FuzzNormalise asserts the normaliser's properties on arbitrary input:
// idempotence, and that no accepted output can be read as a traversal,
// an encoded separator or anything a back end might decode differently.
func FuzzNormalise(f *testing.F) {
	for _, s := range []string{
		"/", "/a/b/../c", "/%2e%2e/", "//a//b/", "/a%2fb", "/%252e%252e/x",
		"/public/..;/admin", "/caf%C3%A9", "/a/./b/.", "/\xff", "/a%20b", "/％２ｅ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalise(in)
		if err != nil {
			return
		}
		again, err := Normalise(out)
		if err != nil {
			t.Fatalf("Normalise(%q) = %q, which is then rejected: %v", in, out, err)
		}
		if again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("output %q is not absolute", out)
		}
		for _, seg := range strings.Split(out[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("dot segment survived: %q -> %q", in, out)
			}
		}
		if strings.Contains(out, "//") {
			t.Fatalf("empty segment survived: %q -> %q", in, out)
		}
		lower := strings.ToLower(out)
		for _, bad := range []string{"%2e", "%2f", "%5c", "%00", "\\", "#", ";", "?"} {
			if strings.Contains(lower, bad) {
				t.Fatalf("%q survived: %q -> %q", bad, in, out)
			}
		}
		for i := 0; i < len(out); i++ {
			if out[i] <= ' ' || out[i] >= 0x7f {
				t.Fatalf("raw byte %#x survived: %q -> %q", out[i], in, out)
			}
		}
		if !strings.HasSuffix(out, "/") {
			if dec := Unescape(out); strings.Contains(dec, "/../") || strings.HasSuffix(dec, "/..") {
				t.Fatalf("decoded output %q climbs", dec)
			}
		}
	})
}
