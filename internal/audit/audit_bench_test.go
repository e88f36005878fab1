package audit

import (
	"os"
	"testing"

	"github.com/rampart-gw/rampart/internal/config"
)

// BenchmarkAuditProduction is the audit every compile (start, reload,
// check) runs, on examples/production.yaml with its OpenAPI document
// linted.
func BenchmarkAuditProduction(b *testing.B) {
	cfg, err := config.LoadWith("../../examples/production.yaml", config.LoadOptions{DeferSecrets: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := Run(cfg, Options{Documents: os.ReadFile}); r.Grade == "" {
			b.Fatal("no grade")
		}
	}
}
