// Package authn authenticates callers: JWTs (parsed and verified by the
// strict JOSE package jws), OAuth2 introspection, API keys and mTLS.
package authn

import (
	"fmt"

	"github.com/rampart-gw/rampart/internal/jws"
)

// Reason codes of failed authentication. The client always sees the same
// generic 401; these go to the logs.
const (
	ReasonMissing      = "authn.missing"
	ReasonMalformed    = "authn." + jws.Malformed
	ReasonAlgorithm    = "authn." + jws.Algorithm
	ReasonCrit         = "authn." + jws.Crit
	ReasonType         = "authn." + jws.Type
	ReasonIssuer       = "authn.unknown_issuer"
	ReasonUnknownKID   = "authn.unknown_kid"
	ReasonSignature    = "authn.bad_signature"
	ReasonExpired      = "authn.expired"
	ReasonNoExpiry     = "authn.no_expiry"
	ReasonNotYetValid  = "authn.not_yet_valid"
	ReasonIssuedFuture = "authn.issued_in_future"
	ReasonLifetime     = "authn.lifetime_too_long"
	ReasonAudience     = "authn.bad_audience"
	ReasonClaims       = "authn.missing_claim"
	ReasonTooLarge     = "authn." + jws.TooLarge
	ReasonRevoked      = "authn.revoked"
	ReasonReplayed     = "authn.replayed"
	ReasonKeysUnavail  = "authn.keys_unavailable"
)

// Failure is why a credential was refused.
type Failure struct {
	Reason string
	Detail string
}

func (f *Failure) Error() string {
	if f.Detail == "" {
		return f.Reason
	}
	return f.Reason + ": " + f.Detail
}

func fail(reason, format string, args ...any) *Failure {
	return &Failure{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// MaxTokenLength bounds a token: anything longer is refused before parsing.
const MaxTokenLength = jws.MaxTokenLength

// parse parses a compact JWS (jws.Parse), as an authentication failure.
func parse(raw string) (*jws.Token, *Failure) {
	t, err := jws.Parse(raw)
	if err != nil {
		return nil, &Failure{Reason: "authn." + err.Kind, Detail: err.Detail}
	}
	return t, nil
}

// numericDate reads a NumericDate claim (jws.NumericDate); a bad value is
// a malformed token.
func numericDate(claims map[string]any, name string) (int64, bool, *Failure) {
	sec, ok, err := jws.NumericDate(claims, name)
	if err != nil {
		return 0, false, fail(ReasonMalformed, "%v", err)
	}
	return sec, ok, nil
}
