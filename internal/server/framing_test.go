package server

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
)

// verdictOf feeds stream in pieces of the given size (0: at once) and
// returns the index of the first refused request (-1 for none), the
// reason and the number of messages completed.
func verdictOf(stream string, piece int) (int, string, int) {
	f := newFraming()
	b := []byte(stream)
	if piece <= 0 {
		piece = len(b) + 1
	}
	for len(b) > 0 {
		n := min(piece, len(b))
		f.feed(b[:n])
		b = b[n:]
	}
	bad := f.bad.Load()
	if bad == math.MaxInt64 {
		return -1, "", f.index
	}
	return int(bad), f.verdict(int(bad)), f.index
}

const get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"

// TestFramingAttacks: every smuggling primitive the checker exists for is
// refused, at the request that carries it, whether it comes first or
// pipelined after a clean request.
func TestFramingAttacks(t *testing.T) {
	attacks := map[string]string{
		"CL and TE":             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"TE and CL":             "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
		"two CL":                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		"two different CL":      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
		"CL list":               "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx",
		"CL sign":               "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx",
		"obs-fold":              "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
		"bare LF":               "GET / HTTP/1.1\nHost: a\n\n",
		"bare CR":               "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
		"TE on HTTP/1.0":        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"TE not chunked":        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
		"TE chunked twice":      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
		"two TE":                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"chunk size garbage":    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
		"chunk without CRLF":    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n",
		"obs-fold in a trailer": "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n",
	}
	for name, attack := range attacks {
		for _, pos := range []int{0, 1} {
			stream := attack
			if pos == 1 {
				stream = get + attack
			}
			idx, reason, _ := verdictOf(stream, 0)
			if idx != pos || reason == "" {
				t.Errorf("%s at request %d: refused request %d (%q)", name, pos, idx, reason)
			}
		}
	}
}

// TestFramingClean: well-framed pipelines pass and their messages are
// counted where they end.
func TestFramingClean(t *testing.T) {
	for name, c := range map[string]struct {
		stream string
		n      int
	}{
		"gets":        {get + get + get, 3},
		"CL body":     {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" + get, 2},
		"chunked":     {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + get, 2},
		"extension":   {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nTrailer-A: b\r\n\r\n", 1},
		"empty lines": {"\r\n" + get, 1},
	} {
		idx, reason, n := verdictOf(c.stream, 0)
		if idx != -1 || n != c.n {
			t.Errorf("%s: refused %d (%q), %d messages, want none refused and %d", name, idx, reason, n, c.n)
		}
	}
}

// TestFramingSplitIndependent: however the connection's bytes arrive (at
// once, a byte at a time, in odd pieces), the verdict is the same.
func TestFramingSplitIndependent(t *testing.T) {
	streams := []string{
		get + "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + get,
		get + "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n",
	}
	for _, s := range streams {
		sameVerdict(t, s)
	}
}

func sameVerdict(t *testing.T, s string) {
	t.Helper()
	i0, r0, n0 := verdictOf(s, 0)
	for _, piece := range []int{1, 2, 3, 7, 64} {
		if i, r, n := verdictOf(s, piece); i != i0 || r != r0 || n != n0 {
			t.Fatalf("pieces of %d: (%d %q %d), at once: (%d %q %d)\n%q", piece, i, r, n, i0, r0, n0, s)
		}
	}
}

// httpMessages counts the requests net/http's ReadRequest reads whole
// from s before it stops, and whether it stopped at the clean end.
func httpMessages(s string) (int, bool) {
	br := bufio.NewReader(strings.NewReader(s))
	for n := 0; ; n++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return n, err == io.EOF
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return n, false
		}
		if req.Method == http.MethodConnect || req.Header.Get("Upgrade") != "" || req.Close {
			return n + 1, false
		}
	}
}

// FuzzFraming: the verdict does not depend on how the bytes are split,
// and where the checker finds nothing wrong and net/http reads the whole
// stream as requests, both see the same message boundaries.
func FuzzFraming(f *testing.F) {
	f.Add(get + get)
	f.Add("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" + get)
	f.Add("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	f.Add("GET / HTTP/1.1\nHost: a\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		sameVerdict(t, s)
		idx, _, n := verdictOf(s, 0)
		if idx != -1 || bytes.Contains([]byte(strings.ToLower(s)), []byte("upgrade")) || strings.Contains(s, "CONNECT") {
			return
		}
		if hn, clean := httpMessages(s); clean && hn != n {
			t.Fatalf("net/http reads %d requests, the checker counts %d:\n%q", hn, n, s)
		}
	})
}
