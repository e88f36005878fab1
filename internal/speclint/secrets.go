package speclint

import (
	"math"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/sensitive"
)

// fakeMarkers make a value obviously an example.
var fakeMarkers = regexp.MustCompile(`(?i)(example|sample|dummy|fake|changeme|redacted|placeholder|your[-_ ]?|xxxx|\*\*\*|<[^>]*>|\.\.\.)`)

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
	if c := sensitive.Classify(v); c.Secret() || c == sensitive.CardNumber || c == sensitive.NationalID {
		return c.Description()
	}
	if sensitive.SecretName(key) && len(v) >= 20 && !strings.ContainsAny(v, " \t") && entropy(v) >= 3.5 {
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
