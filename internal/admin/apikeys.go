package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/rampart-gw/rampart/internal/authn"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/pipeline"
	"github.com/rampart-gw/rampart/internal/store"
)

// KeyView is an API key as the admin API shows it: never the key or its
// hash.
type KeyView struct {
	Prefix    string     `json:"prefix"`
	Consumer  string     `json:"consumer"`
	Scopes    []string   `json:"scopes,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Disabled  bool       `json:"disabled"`
}

// KeyAdmin manages the API key store of the running config; every change
// is applied to the gateway at once.
type KeyAdmin interface {
	List() ([]KeyView, error)
	Create(consumer string, scopes []string, ttl time.Duration, by string) (key string, view KeyView, err error)
	SetDisabled(prefix string, disabled bool, by string) error
	Delete(prefix, by string) error
}

// ErrNoKey is a change naming a key the store does not hold.
var ErrNoKey = errors.New("no such API key")

// Operations on API keys.
const (
	OpKeysRead   = "apikeys.read"
	OpKeysManage = "apikeys.manage"
)

func (a *api) keys() KeyAdmin {
	return a.o.Keys
}

func (a *api) listKeys() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if a.keys() == nil {
			return noKeys()
		}
		keys, err := a.keys().List()
		if err != nil {
			return pipeline.DenyErr(http.StatusInternalServerError, "gateway.internal", "the key store cannot be read", err)
		}
		writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
		return nil
	}
}

// createKey makes a key; the response shows it once.
func (a *api) createKey() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if a.keys() == nil {
			return noKeys()
		}
		var req struct {
			Consumer string   `json:"consumer"`
			Scopes   []string `json:"scopes"`
			For      string   `json:"for"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Consumer == "" {
			return pipeline.Deny(http.StatusBadRequest, "admin.bad_request", "send {\"consumer\": ..., \"scopes\": [...], \"for\": \"2160h\"}")
		}
		var ttl time.Duration
		if req.For != "" {
			d, err := time.ParseDuration(req.For)
			if err != nil || d <= 0 {
				return pipeline.Deny(http.StatusBadRequest, "admin.bad_request", "for: a positive duration (2160h)")
			}
			ttl = d
		}
		key, view, err := a.keys().Create(req.Consumer, req.Scopes, ttl, principalOf(r))
		if err != nil {
			return pipeline.DenyErr(http.StatusUnprocessableEntity, "admin.bad_request", "the key was not created", err)
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusCreated, map[string]any{"key": key, "details": view, "note": "shown once: store it now"})
		return nil
	}
}

func (a *api) patchKey() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if a.keys() == nil {
			return noKeys()
		}
		var req struct {
			Disabled *bool `json:"disabled"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Disabled == nil {
			return pipeline.Deny(http.StatusBadRequest, "admin.bad_request", "send {\"disabled\": true|false}")
		}
		return keyResult(w, a.keys().SetDisabled(r.PathValue("prefix"), *req.Disabled, principalOf(r)))
	}
}

func (a *api) deleteKey() pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if a.keys() == nil {
			return noKeys()
		}
		return keyResult(w, a.keys().Delete(r.PathValue("prefix"), principalOf(r)))
	}
}

// keyResult answers a key change: 204, 404 for an unknown key.
func keyResult(w http.ResponseWriter, err error) error {
	switch {
	case errors.Is(err, ErrNoKey):
		return pipeline.Deny(http.StatusNotFound, "admin.not_found", "no such API key")
	case err != nil:
		return pipeline.DenyErr(http.StatusUnprocessableEntity, "admin.bad_request", "the change was not applied", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func noKeys() error {
	return pipeline.Deny(http.StatusConflict, "admin.unavailable", "the config has no authn.api_keys section")
}

// fileKeys is the KeyAdmin of a config's API key store file: changes are
// written through the state store (encrypted when configured) and then
// applied (a recompile of the running config, which reads the file).
type fileKeys struct {
	mu     sync.Mutex
	config func() *config.Config
	apply  func(by string) error
	record func(event, by string, attrs map[string]string)
	now    func() time.Time
}

// NewFileKeys manages the key store of the running config (config
// returns it); apply makes a change take effect; record journals it.
func NewFileKeys(cfg func() *config.Config, apply func(by string) error, record func(event, by string, attrs map[string]string), now func() time.Time) KeyAdmin {
	return &fileKeys{config: cfg, apply: apply, record: record, now: now}
}

// open reads the key store of the running config.
func (k *fileKeys) open() (*config.APIKeys, *store.Store, *authn.APIKeyFile, error) {
	cfg := k.config()
	sec := cfg.Authn.APIKeys
	if sec == nil {
		return nil, nil, nil, errors.New("the config has no authn.api_keys section")
	}
	st, err := store.FromConfig(cfg.State)
	if err != nil {
		return nil, nil, nil, err
	}
	f, err := authn.LoadAPIKeys(sec.File, st)
	return sec, st, f, err
}

func view(r authn.APIKeyRecord) KeyView {
	return KeyView{Prefix: r.Prefix, Consumer: r.Consumer, Scopes: r.Scopes, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, Disabled: r.Disabled}
}

func (k *fileKeys) List() ([]KeyView, error) {
	_, _, f, err := k.open()
	if err != nil {
		return nil, err
	}
	out := []KeyView{}
	for _, r := range f.Keys {
		out = append(out, view(r))
	}
	return out, nil
}

func (k *fileKeys) Create(consumer string, scopes []string, ttl time.Duration, by string) (string, KeyView, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	sec, st, f, err := k.open()
	if err != nil {
		return "", KeyView{}, err
	}
	key, rec, err := authn.NewAPIKey([]byte(sec.Secret.Reveal()), consumer, scopes, ttl, k.now())
	if err != nil {
		return "", KeyView{}, err
	}
	f.Keys = append(f.Keys, rec)
	if err := authn.SaveAPIKeys(sec.File, f, st); err != nil {
		return "", KeyView{}, err
	}
	k.record("apikey.created", by, map[string]string{"prefix": rec.Prefix, "consumer": rec.Consumer})
	return key, view(rec), k.apply(by)
}

func (k *fileKeys) SetDisabled(prefix string, disabled bool, by string) error {
	event := "apikey.enabled"
	if disabled {
		event = "apikey.disabled"
	}
	return k.change(prefix, by, event, func(f *authn.APIKeyFile, i int) { f.Keys[i].Disabled = disabled })
}

func (k *fileKeys) Delete(prefix, by string) error {
	return k.change(prefix, by, "apikey.deleted", func(f *authn.APIKeyFile, i int) { f.Keys = append(f.Keys[:i], f.Keys[i+1:]...) })
}

// change applies f to the key with prefix, saves and applies the store.
func (k *fileKeys) change(prefix, by, event string, f func(*authn.APIKeyFile, int)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	sec, st, file, err := k.open()
	if err != nil {
		return err
	}
	for i, r := range file.Keys {
		if r.Prefix == prefix {
			f(file, i)
			if err := authn.SaveAPIKeys(sec.File, file, st); err != nil {
				return err
			}
			k.record(event, by, map[string]string{"prefix": prefix, "consumer": r.Consumer})
			return k.apply(by)
		}
	}
	return ErrNoKey
}
