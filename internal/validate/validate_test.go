package validate

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckJSON(t *testing.T) {
	o := Options{JSON: true, MaxDepth: 32, MaxElements: 1000, MaxStringLength: 100}
	bad := map[string]string{
		"duplicate key":     `{"role":"user","role":"admin"}`,
		"nested duplicate":  `{"a":{"b":1,"b":2}}`,
		"10,000 deep":       strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		"33 deep objects":   strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33),
		"too many elements": "[" + strings.Repeat("1,", 1000) + "1]",
		"long string":       `{"a":"` + strings.Repeat("x", 101) + `"}`,
		"invalid UTF-8":     "{\"a\":\"\xff\"}",
		"trailing garbage":  `{"a":1}}`,
		"two values":        `{"a":1}{"b":2}`,
		"unterminated":      `{"a":`,
		"single quotes":     `{'a':1}`,
		"escaped duplicate": `{"a":1,"\u0061":2}`,
		"empty":             ``,
		"whitespace only":   "  \n",
		"bad literal":       `[nul]`,
		"lone surrogate":    `{"a":"\ud800"}`,
		"1001 elements":     "[" + strings.Repeat("1,", 999) + "1]",
	}
	for name, body := range bad {
		if err := checkJSON([]byte(body), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	good := []string{`{}`, `[]`, " [1,2] \n", "[" + strings.Repeat("1,", 998) + "1]", `{"` + strings.Repeat("k", 100) + `":1}`, `{"a":[1,2,{"b":"c"}],"d":{"a":1}}`, `"just a string"`, `[{"a":1},{"a":2}]`, strings.Repeat("[", 32) + strings.Repeat("]", 32)}
	for _, body := range good {
		if err := checkJSON([]byte(body), o); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// mp builds a multipart/form-data body with boundary "B" from raw parts
// (each: headers, blank line, content).
func mp(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString("--B\r\n" + p + "\r\n")
	}
	b.WriteString("--B--\r\n")
	return b.String()
}

func TestCheckMultipart(t *testing.T) {
	o := Options{Multipart: true, MaxParts: 3, MaxPartBytes: 16, PartTypes: []string{"image/png"}}
	field := func(name, v string) string {
		return "Content-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + v
	}
	file := func(fn, ct, v string) string {
		return "Content-Disposition: form-data; name=\"f\"; filename=\"" + fn + "\"\r\nContent-Type: " + ct + "\r\n\r\n" + v
	}
	bad := map[string]struct{ body, boundary string }{
		"no boundary":         {mp(field("a", "1")), ""},
		"too many parts":      {mp(field("a", "1"), field("b", "2"), field("c", "3"), field("d", "4")), "B"},
		"large part":          {mp(field("a", strings.Repeat("x", 17))), "B"},
		"path traversal name": {mp(file("../../etc/cron.d/x", "image/png", "x")), "B"},
		"windows path name":   {mp(file(`..\\..\\boot.ini`, "image/png", "x")), "B"},
		"NUL in name":         {mp(file("a.png\x00.php", "image/png", "x")), "B"},
		"disallowed type":     {mp(file("a.php", "application/x-php", "<?php")), "B"},
		"no disposition":      {mp("Content-Type: text/plain\r\n\r\nx"), "B"},
		"not form-data":       {mp("Content-Disposition: attachment; name=\"a\"\r\n\r\nx"), "B"},
		"unterminated":        {"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nxx", "B"},
		"no parts":            {"--B--\r\n", "B"},
		"garbage":             {"hello", "B"},
		"wrong boundary":      {mp(field("a", "1")), "C"},
		"empty file name":     {mp(file("", "image/png", "x")), "B"},
	}
	for name, c := range bad {
		if err := checkMultipart([]byte(c.body), c.boundary, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	good := mp(field("title", "cat"), file("cat.png", "image/png", "\x89PNG...."), field("n", strings.Repeat("y", 16)))
	if err := checkMultipart([]byte(good), "B", o); err != nil {
		t.Errorf("good body: %v", err)
	}
}

// TestJSONElementCount: names are not elements; the object and its values
// are (1 object + 999 values = the limit of 1000).
func TestJSONElementCount(t *testing.T) {
	o := Options{JSON: true, MaxElements: 1000}
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < 999; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":1`)
	}
	b.WriteString("}")
	if err := checkJSON([]byte(b.String()), o); err != nil {
		t.Fatalf("1000 elements: %v", err)
	}
	if err := checkJSON([]byte(strings.Replace(b.String(), "}", `,"last":1}`, 1)), o); err == nil {
		t.Fatal("1001 elements accepted")
	}
}

// FuzzCheckJSON: whatever checkJSON accepts is valid JSON (one value,
// valid UTF-8) by encoding/json's reading too.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2,{"b":"c"}]}`, `{"a":1,"a":2}`, "[\"\xff\"]", `"x"`, `1e999`, `[1,]`, `{"a":1}{}`} {
		f.Add([]byte(s))
	}
	o := Options{JSON: true, MaxDepth: 64, MaxElements: 10000, MaxStringLength: 1 << 16}
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkJSON(b, o) == nil && (!json.Valid(b) || !utf8.Valid(b)) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
	})
}

// FuzzCheckMultipart: whatever checkMultipart accepts, mime/multipart's
// form reader (what a Go service calls) also reads, with every part named
// and within the limits, file names without path components.
func FuzzCheckMultipart(f *testing.F) {
	for _, s := range []string{
		"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b--\r\n",
		"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\nPNG\r\n--b--\r\n",
		"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../x\"\r\n\r\n\r\n--b--\r\n",
		"--b\r\n\r\n\r\n--b--\r\n", "--b--\r\n", "",
	} {
		f.Add([]byte(s), "b")
	}
	o := Options{Multipart: true, MaxParts: 4, MaxPartBytes: 64, PartTypes: []string{"image/png"}}
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		if checkMultipart(body, boundary, o) != nil {
			return
		}
		form, err := multipart.NewReader(bytes.NewReader(body), boundary).ReadForm(1 << 20)
		if err != nil {
			t.Fatalf("accepted a body mime/multipart refuses (%v): %q", err, body)
		}
		defer form.RemoveAll()
		n := 0
		for _, v := range form.Value {
			n += len(v)
		}
		for _, fs := range form.File {
			for _, fh := range fs {
				n++
				if fh.Size > o.MaxPartBytes || strings.ContainsAny(fh.Filename, "/\\") {
					t.Fatalf("accepted file part %q of %d bytes", fh.Filename, fh.Size)
				}
			}
		}
		if n > o.MaxParts {
			t.Fatalf("accepted %d parts", n)
		}
	})
}
