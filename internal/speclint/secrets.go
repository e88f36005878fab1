package speclint

import (
	"math"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// secretShapes are the shapes of real credentials that have no business
// in a published document.
var secretShapes = []struct {
	what string
	re   *regexp.Regexp
}{
	{"a JWT", regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}`)},
	{"a private key", regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)},
	{"an AWS access key id", regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)},
	{"a GitHub token", regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{36,}\b`)},
	{"a Slack token", regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}`)},
	{"a Stripe live key", regexp.MustCompile(`\b[rs]k_live_[A-Za-z0-9]{16,}`)},
	{"a Google API key", regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}\b`)},
}

// fakeMarkers make a value obviously an example.
var fakeMarkers = regexp.MustCompile(`(?i)(example|sample|dummy|fake|changeme|redacted|placeholder|your[-_ ]?|xxxx|\*\*\*|<[^>]*>|\.\.\.)`)

// secretKey names a field that holds a secret.
var secretKey = regexp.MustCompile(`(?i)(secret|token|password|passwd|api_?key|apikey|private_?key|credential)`)

// secretLikeExample finds example values (example, examples, default)
// that look like real credentials: a known credential shape, or a long
// random-looking value under a secret-sounding name.
func secretLikeExample(d *doc, r report) {
	seen := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node, ptr, key string, inExample bool)
	walk = func(n *yaml.Node, ptr, key string, inExample bool) {
		if seen[n] {
			return
		}
		seen[n] = true
		switch n.Kind {
		case yaml.ScalarNode:
			if inExample {
				if what := secretLike(key, n.Value); what != "" {
					r(n, ptr, "example value looks like "+what)
				}
			}
		case yaml.MappingNode:
			pairs(n, func(k, v *yaml.Node) {
				ex := inExample || k.Value == "example" || k.Value == "examples" || k.Value == "default"
				walk(v, ptr+"/"+escape(k.Value), k.Value, ex)
			})
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(deref(c), ptr+"/"+itoa(i), key, inExample)
			}
		}
	}
	walk(d.root, "", "", false)
}

// secretLike says what a value looks like ("" when it does not look
// like a credential).
func secretLike(key, v string) string {
	if fakeMarkers.MatchString(v) {
		return ""
	}
	for _, s := range secretShapes {
		if s.re.MatchString(v) {
			return s.what
		}
	}
	if secretKey.MatchString(key) && len(v) >= 20 && !strings.ContainsAny(v, " \t") && entropy(v) >= 3.5 {
		return "a real secret (a long random value under " + key + ")"
	}
	return ""
}

// entropy is the Shannon entropy of s in bits per character.
func entropy(s string) float64 {
	counts := map[rune]int{}
	for _, c := range s {
		counts[c]++
	}
	n := float64(len([]rune(s)))
	h := 0.0
	for _, c := range counts {
		p := float64(c) / n
		h -= p * math.Log2(p)
	}
	return h
}
