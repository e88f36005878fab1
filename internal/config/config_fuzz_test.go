package config

import "testing"

// FuzzParse feeds arbitrary bytes to the config loader: it must never
// panic, and every failure must be reported as located FieldErrors.
func FuzzParse(f *testing.F) {
	f.Add([]byte("version: 1\nlisteners: [{name: l, address: \"127.0.0.1:0\"}]\n"))
	f.Add([]byte("version: 1\nroutes:\n  - id: a\n    path: /x/{id}\n    upstream: u\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("version: 1\nlisteners: {name: x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml")
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		if len(FieldErrors(err)) == 0 {
			t.Fatalf("error without FieldErrors: %v", err)
		}
	})
}
