package validate

import (
	"strings"
	"testing"
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
	}
	for name, body := range bad {
		if err := checkJSON([]byte(body), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	good := []string{`{}`, `[]`, `{"a":[1,2,{"b":"c"}],"d":{"a":1}}`, `"just a string"`, `[{"a":1},{"a":2}]`, strings.Repeat("[", 32) + strings.Repeat("]", 32)}
	for _, body := range good {
		if err := checkJSON([]byte(body), o); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}
