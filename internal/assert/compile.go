package assert

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/store"
)

// Compile builds the signer of the assertion section: it loads (or, when
// create, creates) the signing key, the previous keys still published for
// their overlap (those the config names and the one the last rotation
// retired) and a staged key with the time it starts signing; with create
// it first completes a staged rotation whose time has come (see Rotate).
// Without create (a config check), a missing key is stood in for by an
// ephemeral one if its directory exists, and nothing is written.
func Compile(a *config.Assertion, create bool, st *store.Store, now time.Time) (*Signer, error) {
	if create {
		if err := promote(a, st, now); err != nil {
			return nil, err
		}
	}
	cur, err := loadKey(a.KeyFile, a.Algorithm, create, st)
	if err != nil {
		return nil, err
	}
	var prev []*Key
	for _, f := range a.PreviousKeyFiles {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("previous key %s: %w", f, err)
		}
		k, err := LoadOrCreate(f, a.Algorithm, st)
		if err != nil {
			return nil, err
		}
		prev = append(prev, k)
	}
	retired, _, err := readKey(a.KeyFile+RetiredSuffix, st)
	if err != nil {
		return nil, err
	}
	if retired != nil && retired.ID != cur.ID {
		prev = append(prev, retired)
	}
	next, hdr, err := readKey(a.KeyFile+NextSuffix, st)
	if err != nil {
		return nil, err
	}
	s := NewSigner(a.Issuer, a.TTL.D(), cur, prev)
	if next != nil && next.ID != cur.ID {
		s.stage(next, headerTime(hdr, headerActivates))
	}
	s.SetReuse(a.Reuse.D())
	return s, nil
}

// loadKey loads the signing key at path, creating it when missing and
// create is set.
func loadKey(path, alg string, create bool, st *store.Store) (*Key, error) {
	if create {
		return LoadOrCreate(path, alg, st)
	}
	if _, err := os.Stat(path); err == nil {
		data, _, err := st.ReadLegacy(path) // exists: only read
		if err != nil {
			return nil, err
		}
		return parse(data, path)
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s does not exist and cannot be created: no directory %s", path, filepath.Dir(path))
	}
	priv, err := generate(alg)
	if err != nil {
		return nil, err
	}
	return newKey(priv)
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
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(JWKSMaxAge.Seconds())))
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
		return nil
	}
}
