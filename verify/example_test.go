package verify_test

import (
	"fmt"
	"log"
	"net/http"

	"github.com/rampart-gw/rampart/verify"
)

// A service behind Rampart accepts only requests the gateway signed.
func Example() {
	mw, err := verify.Middleware(verify.Options{
		JWKSURL:  "https://gateway.internal/.well-known/rampart-jwks.json",
		Issuer:   "https://gateway.example.com",
		Audience: "orders", // this service's upstream name in the gateway config
	})
	if err != nil {
		log.Fatal(err)
	}
	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, _ := verify.FromContext(r.Context())
		fmt.Fprintf(w, "orders of %s\n", caller.Subject)
	})
	http.Handle("/orders/", mw(orders))
}
