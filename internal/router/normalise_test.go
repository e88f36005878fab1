package router

import (
	"errors"
	"strings"
	"testing"
)

func TestNormaliseAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"/", "/"},
		{"/a/b", "/a/b"},
		{"/a/b/", "/a/b/"},
		{"//a///b", "/a/b"},
		{"/a//", "/a/"},
		{"/a/./b", "/a/b"},
		{"/a/.", "/a/"},
		{"/a/b/..", "/a/"},
		{"/public/../admin/x", "/admin/x"},
		{"/a/b/../../c", "/c"},
		{"/%41%62c", "/Abc"},
		{"/a%2Db%7e", "/a-b~"},
		{"/a%20b", "/a%20b"},
		{"/a b", "/a%20b"},
		{"/a%3fb", "/a%3Fb"},
		{"/a%23b", "/a%23b"},
		{"/%252e%252e/admin", "/%252e%252e/admin"},
		{"/%25", "/%25"},
		{"/caf%C3%A9", "/caf%C3%A9"},
		{"/café", "/caf%C3%A9"},
		{"/％２ｅ", "/%EF%BC%85%EF%BC%92%EF%BD%85"},
		{"/／admin", "/%EF%BC%8Fadmin"},
		{"/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,="},
		{"/a\"<>`{}|^[]", "/a%22%3C%3E%60%7B%7D%7C%5E%5B%5D"},
		{"/...", "/..."},
		{"/a/.../b", "/a/.../b"},
		{"/.a/..b", "/.a/..b"},
	}
	for _, tc := range tests {
		got, err := Normalise(tc.in)
		if err != nil {
			t.Errorf("Normalise(%q) error %v, want %q", tc.in, err, tc.want)
			continue
		}
		if got != tc.want {
			t.Errorf("Normalise(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestNormaliseRejectsAttacks is the traversal and encoding corpus: every
// input must be refused (400 request.bad_path at the gateway).
func TestNormaliseRejectsAttacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want error
	}{
		{"", ErrNotAbsolute},
		{"a/b", ErrNotAbsolute},
		{"*", ErrNotAbsolute},
		{"/..", ErrEscapesRoot},
		{"/a/../../x", ErrEscapesRoot},
		{"/../etc/passwd", ErrEscapesRoot},
		{"/a/./../../b", ErrEscapesRoot},
		{"/%2e%2e/admin", ErrEncodedDot},
		{"/public/%2e%2e/admin", ErrEncodedDot},
		{"/public/%2E%2E/admin", ErrEncodedDot},
		{"/public/.%2e/admin", ErrEncodedDot},
		{"/public/%2e./admin", ErrEncodedDot},
		{"/public/%2e/admin", ErrEncodedDot},
		{"/admin%2fx", ErrEncodedSlash},
		{"/admin%2Fx", ErrEncodedSlash},
		{"/public%2f..%2fadmin", ErrEncodedSlash},
		{"/public%5c..%5cadmin", ErrEncodedSlash},
		{"/public%5C..", ErrEncodedSlash},
		{"/public\\..\\admin", ErrBackslash},
		{"/a\\b", ErrBackslash},
		{"/admin#x", ErrFragment},
		{"/public/#/../admin", ErrFragment},
		{"/admin;x=1", ErrSemicolon},
		{"/public/..;/admin", ErrSemicolon},
		{"/a/.;/b", ErrSemicolon},
		{"/admin%00", ErrControl},
		{"/admin\x00", ErrControl},
		{"/admin%09", ErrControl},
		{"/admin%0d%0aX-Injected:1", ErrControl},
		{"/admin\t", ErrControl},
		{"/admin\x7f", ErrControl},
		{"/a%", ErrBadEscape},
		{"/a%2", ErrBadEscape},
		{"/a%zz", ErrBadEscape},
		{"/a%g0", ErrBadEscape},
		{"/%ff", ErrInvalidUTF8},
		{"/%c0%af", ErrInvalidUTF8},
		{"/%C0%AE%C0%AE/", ErrInvalidUTF8},
		{"/\xff", ErrInvalidUTF8},
		{"/\xc0\xae", ErrInvalidUTF8},
		{"/" + strings.Repeat("a", MaxPathLength), ErrTargetTooLong},
	}
	for _, tc := range tests {
		got, err := Normalise(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("Normalise(%q) = %q, %v; want error %v", tc.in, got, err, tc.want)
		}
	}
}

func TestNormaliseFastPathDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Normalise("/api/v1/users/42/orders"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("canonical path allocated %v times, want 0", allocs)
	}
}
