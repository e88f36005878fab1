package pipeline

// ValidHeaderName reports whether s is an HTTP field name (an RFC 9110
// token), the rule net/http's Transport applies before sending.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return true
}

// ValidHeaderValue reports whether s can be sent as an HTTP field value:
// no control characters but horizontal tab (so no CR, LF or NUL that
// could end the field or the header block), the rule net/http's
// Transport applies before sending. Bytes from 0x80 up (obs-text) pass.
func ValidHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

var tokenByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
