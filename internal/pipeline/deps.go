package pipeline

import (
	"log/slog"
	"time"
)

// Deps are the explicit dependencies handed to every stage constructor.
// There is no package-level state anywhere in Rampart: what a stage needs
// arrives here.
type Deps struct {
	// Log is the gateway's operational logger (not the access log).
	Log *slog.Logger
	// Now returns the current time; tests replace it.
	Now func() time.Time
	// Events is the security event stream (never nil once the gateway
	// is built).
	Events Events
	// FetchFailed, when set, is told of each failed fetch of an issuer's
	// remote keys (JWKS or discovery), for metrics.
	FetchFailed func(issuer string)
	// CertificateResult, when set, is told of each certificate an ACME
	// manager obtained (ok) or failed to obtain, for metrics.
	CertificateResult func(listener string, ok bool)
	// OverloadLimit, when set, is told of each change of a route's
	// adaptive concurrency limit (shedding), for metrics; -1 when a
	// reload left the route without shedding.
	OverloadLimit func(route string, limit int)
	// CertRenewCheck is how often ACME certificates are checked for
	// renewal (zero: every 10 minutes); tests shorten it.
	CertRenewCheck time.Duration
}
