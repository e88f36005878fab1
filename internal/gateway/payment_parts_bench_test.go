package gateway

import "testing"

// The payment route's defences one at a time, for the breakdown in
// BENCHMARKS.md: idempotency keys alone, the race defence alone (per
// caller concurrency and the duplicate detector), the abuse detectors
// alone.
func BenchmarkPaymentOnlyIdempotency(b *testing.B) {
	_, h := benchGatewayWith(b, paymentRoute("    race: {action: off}\n    max_in_flight_per_identity: 0\n    idempotency: {required: true}\n"))
	benchPayment(b, h)
}

func BenchmarkPaymentOnlyRace(b *testing.B) {
	_, h := benchGatewayWith(b, paymentRoute("    category: payment\n"))
	benchPayment(b, h)
}

func BenchmarkPaymentOnlyDetectors(b *testing.B) {
	_, h := benchGatewayWith(b, func(y string) string {
		return paymentRoute("    race: {action: off}\n    max_in_flight_per_identity: 0\n")(y) + everyDetector
	})
	benchPayment(b, h)
}
