// Package sensitive recognises values that are secrets or personal data
// by their shape: the one list that the spec lint (examples in a
// document) and API discovery (values in live responses) share. It says
// what a value is, never keeps it.
package sensitive

import (
	"regexp"
	"strings"
)

// Class is what a value looks like.
type Class string

// Classes of sensitive values.
const (
	None       Class = ""
	JWT        Class = "jwt"
	PrivateKey Class = "private_key"
	APIKey     Class = "api_key" // a known provider key shape (AWS, GitHub, Slack, Stripe, Google)
	CardNumber Class = "card_number"
	Email      Class = "email"
	NationalID Class = "national_id" // a US social security number shape
)

// Description names a class for people.
func (c Class) Description() string {
	return map[Class]string{JWT: "a JWT", PrivateKey: "a private key", APIKey: "an API key", CardNumber: "a payment card number",
		Email: "an e-mail address", NationalID: "a national id number"}[c]
}

// Secrets are the classes that are credentials.
func (c Class) Secret() bool { return c == JWT || c == PrivateKey || c == APIKey }

// shapes are the classes recognised by an expression; hint is a cheap
// test a value must pass before the expression runs.
var shapes = []struct {
	class Class
	hint  func(string) bool
	re    *regexp.Regexp
}{
	{JWT, contains("eyJ"), regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}`)},
	{PrivateKey, contains("-----BEGIN "), regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)},
	{APIKey, func(v string) bool {
		return strings.Contains(v, "AKIA") || strings.Contains(v, "ASIA") || strings.Contains(v, "gh") || strings.Contains(v, "xox") ||
			strings.Contains(v, "k_live_") || strings.Contains(v, "AIza")
	}, regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bxox[abposr]-[A-Za-z0-9-]{10,}|\b[rs]k_live_[A-Za-z0-9]{16,}|\bAIza[0-9A-Za-z_-]{35}\b`)},
	{NationalID, func(v string) bool { return len(v) == 11 && v[3] == '-' && v[6] == '-' }, regexp.MustCompile(`^\d{3}-\d{2}-\d{4}$`)},
	{Email, contains("@"), regexp.MustCompile(`^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,24}$`)},
}

func contains(sub string) func(string) bool {
	return func(v string) bool { return strings.Contains(v, sub) }
}

var digitsOnly = regexp.MustCompile(`^[0-9][0-9 -]{11,22}[0-9]$`)

// Classify says what a string value looks like (None: nothing
// sensitive). Cheap tests rule most values out before any expression
// runs: it is called on every string of a sampled response.
func Classify(v string) Class {
	if len(v) < 11 {
		return None
	}
	if len(v) > 8192 {
		v = v[:8192]
	}
	for _, s := range shapes {
		if s.hint(v) && s.re.MatchString(v) {
			return s.class
		}
	}
	if v[0] >= '0' && v[0] <= '9' && len(v) <= 23 && digitsOnly.MatchString(v) && luhn(strings.NewReplacer(" ", "", "-", "").Replace(v)) {
		return CardNumber
	}
	return None
}

// luhn reports whether a 13 to 19 digit string passes the Luhn check.
func luhn(d string) bool {
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	sum := 0
	for i := 0; i < len(d); i++ {
		n := int(d[len(d)-1-i] - '0')
		if n < 0 || n > 9 {
			return false
		}
		if i%2 == 1 {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

// secretWords are parts of field names that say the field holds a
// secret or a personal identifier (compared without case, _ or -).
var secretWords = []string{"secret", "token", "password", "passwd", "apikey", "privatekey", "credential", "session", "cookie", "ssn", "cvv", "cvc"}

// SecretName reports whether a field name says it holds a secret or
// personal identifier.
func SecretName(name string) bool {
	n := strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(name))
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return strings.HasSuffix(n, "pin")
}
