package sensitive

import "testing"

func TestClassify(t *testing.T) {
	for v, want := range map[string]Class{
		"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.MEUCIQDx3k1mZ8a9b7c6d5e4f3g2h1": JWT,
		"-----BEGIN EC PRIVATE KEY-----\nMHcC":                                     PrivateKey,
		"AKIAIOSFODNN7EXAMPL3":                                                     APIKey,
		"ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789AB":                          APIKey,
		"4111 1111 1111 1111":                                                      CardNumber,
		"4111111111111111":                                                         CardNumber,
		"4111111111111112":                                                         None, // fails Luhn
		"123-45-6789":                                                              NationalID,
		"alice@example.com":                                                        Email,
		"alice at example":                                                         None,
		"1234567890":                                                               None,
		"pending":                                                                  None,
	} {
		if got := Classify(v); got != want {
			t.Errorf("%q: %q, want %q", v, got, want)
		}
	}
	if !SecretName("password") || !SecretName("client_secret") || SecretName("note") {
		t.Error("SecretName")
	}
}
