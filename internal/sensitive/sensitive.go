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

var shapes = []struct {
	class Class
	re    *regexp.Regexp
}{
	{JWT, regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}`)},
	{PrivateKey, regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)},
	{APIKey, regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bxox[abposr]-[A-Za-z0-9-]{10,}|\b[rs]k_live_[A-Za-z0-9]{16,}|\bAIza[0-9A-Za-z_-]{35}\b`)},
	{NationalID, regexp.MustCompile(`^\d{3}-\d{2}-\d{4}$`)},
	{Email, regexp.MustCompile(`^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,24}$`)},
}

var digitsOnly = regexp.MustCompile(`^[0-9][0-9 -]{11,22}[0-9]$`)

// Classify says what a string value looks like (None: nothing
// sensitive).
func Classify(v string) Class {
	if len(v) > 8192 {
		v = v[:8192]
	}
	for _, s := range shapes {
		if s.re.MatchString(v) {
			return s.class
		}
	}
	if digitsOnly.MatchString(v) && luhn(strings.NewReplacer(" ", "", "-", "").Replace(v)) {
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

// secretName names a field that holds a secret.
var secretName = regexp.MustCompile(`(?i)(secret|token|password|passwd|api_?key|apikey|private_?key|credential|session|cookie|ssn|cvv|cvc|pin$)`)

// SecretName reports whether a field name says it holds a secret or
// personal identifier.
func SecretName(name string) bool { return secretName.MatchString(name) }
