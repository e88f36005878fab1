package assert

import (
	"fmt"
	"net/http"
	"os"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Compile builds the signer of the assertion section: it loads (or
// creates) the signing key and loads the previous keys still published
// for their overlap.
func Compile(a *config.Assertion) (*Signer, error) {
	cur, err := LoadOrCreate(a.KeyFile, a.Algorithm)
	if err != nil {
		return nil, err
	}
	var prev []*Key
	for _, f := range a.PreviousKeyFiles {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("previous key %s: %w", f, err)
		}
		k, err := LoadOrCreate(f, a.Algorithm)
		if err != nil {
			return nil, err
		}
		prev = append(prev, k)
	}
	s := NewSigner(a.Issuer, a.TTL.D(), cur, prev)
	s.SetReuse(a.Reuse.D())
	return s, nil
}

// ServeJWKS answers GET and HEAD of the gateway's public assertion keys.
// methodNotAllowed is the decision code of other methods.
func (s *Signer) ServeJWKS(methodNotAllowed string) pipeline.Handler {
	body := s.JWKS()
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			e := pipeline.Deny(http.StatusMethodNotAllowed, methodNotAllowed, "method not allowed")
			e.Header = http.Header{"Allow": {"GET, HEAD"}}
			return e
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
		return nil
	}
}
