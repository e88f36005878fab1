package router

import "testing"

func BenchmarkNormaliseCanonical(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = Normalise("/api/v1/users/42/orders")
	}
}

func BenchmarkNormaliseDirty(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _ = Normalise("/api//v1/./users/%34%32/../42/orders")
	}
}

func BenchmarkMatch(b *testing.B) {
	rt, err := New(specs())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = rt.Match("gw", "GET", "/api/v1/users/42/orders")
	}
}
