// Package config defines Rampart's configuration file: its types (each field
// documented; docs/config.schema.json is generated from them), strict
// loading with file:line errors, defaults, secret references and validation.
// It imports nothing internal.
package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config is a whole configuration file.
type Config struct {
	// Version of the config format. Must be 1.
	Version int `yaml:"version" required:"true"`
	// Listeners are the addresses the gateway serves on.
	Listeners []Listener `yaml:"listeners" required:"true"`
	// Upstreams are the services requests are forwarded to.
	Upstreams []Upstream `yaml:"upstreams"`
	// Routes map requests (host, method, path) to upstreams. Deny by default:
	// a request that matches no route gets 404 and is never forwarded.
	Routes []Route `yaml:"routes"`
	// AccessLog configures the JSON access log.
	AccessLog AccessLog `yaml:"access_log"`
	// SecurityEvents configures the security event stream: every refusal
	// and detector finding as one JSON line, and optionally a webhook.
	SecurityEvents SecurityEvents `yaml:"security_events"`
	// Admin is the admin listener: health and readiness probes and the
	// Prometheus metrics. Off when absent.
	Admin *Admin `yaml:"admin"`
	// Tracing exports a span per request over OTLP and propagates W3C
	// trace context to upstreams. Off when absent.
	Tracing *Tracing `yaml:"tracing"`
	// Authn defines the credentials the gateway trusts; routes choose
	// among them with auth.
	Authn Authn `yaml:"authn"`
	// Assertion signs the caller's identity for upstreams: a short-lived
	// JWT on every forwarded request, verifiable against the gateway's
	// JWKS (see the verify package).
	Assertion *Assertion `yaml:"assertion"`
	// ClientIP says how client addresses key the gateway's state.
	ClientIP ClientIP `yaml:"client_ip"`
	// RateLimiting holds settings shared by every route's limits.
	RateLimiting RateLimiting `yaml:"rate_limiting"`
	// Abuse turns on behaviour-based detection and bans.
	Abuse *Abuse `yaml:"abuse"`
	// DecisionFields are request headers and query parameters clients may
	// never set, because the gateway or services decide on them; they are
	// removed as soon as the client IP is resolved, before any stage reads
	// them.
	DecisionFields DecisionFields `yaml:"decision_fields"`
	// ResponseHeaders changes the headers of every response (the
	// service's and the gateway's own), after the secure defaults
	// (X-Content-Type-Options: nosniff; X-Frame-Options: DENY and
	// Content-Security-Policy: frame-ancestors 'none' unless the service
	// set either; Referrer-Policy: no-referrer unless set; Cache-Control:
	// no-store on responses to authenticated requests without one).
	// Routes add their own.
	ResponseHeaders *ResponseHeaders `yaml:"response_headers"`
	// StripIdentityHeaders are client request headers removed on every
	// route before the gateway sets its own verified identity headers
	// (names, or prefixes ending in "*"; case and '_' vs '-' ignored).
	// Default: X-Auth-*, X-User-*, X-Forwarded-User, X-Remote-User,
	// X-Consumer-*.
	StripIdentityHeaders []string `yaml:"strip_identity_headers"`

	// File is the path the config was loaded from ("" when from memory).
	File string `yaml:"-"`
	// Vault is where ${vault:PATH#FIELD} references are read.
	Vault *Vault `yaml:"vault"`
	// Journal records every change (config loads and reloads, API keys
	// created, state rekeyed, startup and shutdown) in a hash-chained
	// file.
	Journal *Journal `yaml:"journal"`
	// State encrypts the secret state Rampart writes (API key store,
	// assertion keys). Without it those files are plaintext (0600).
	State *State `yaml:"state"`
	// Docs publishes one OpenAPI 3.1 document for the whole gateway: the
	// documents attached to routes, merged, with what the gateway
	// enforces (security, scopes, its own error responses) and nothing
	// internal. Served on the chosen listeners when set;
	// `rampart docs --config FILE` writes it either way.
	Docs *Docs `yaml:"docs"`
	// Discovery learns the API from the requests the gateway forwards
	// (sampled; shapes and counts, never values) and reports shadow,
	// zombie and drifting operations and sensitive data in responses.
	Discovery *Discovery `yaml:"discovery"`
	// Audit sets how `rampart audit`'s findings are enforced: with
	// fail_on, run and reload refuse a config with findings at or above
	// that severity that are not accepted here.
	Audit *Audit `yaml:"audit"`
	// Hash is the SHA-256 of the config's bytes (hex), as the journal and
	// the admin listener name a config version.
	Hash string `yaml:"-"`
	// Warnings are non-fatal findings (for example a literal secret).
	Warnings []*FieldError `yaml:"-"`
	lines    map[string]int
	opts     LoadOptions
}

// Listener is one address the gateway accepts connections on.
type Listener struct {
	// Name identifies the listener; routes refer to it.
	Name string `yaml:"name" required:"true"`
	// Address is host:port to listen on, e.g. "127.0.0.1:8080" or ":8443".
	Address string `yaml:"address" required:"true"`
	// TLS turns on HTTPS (TLS 1.2+, ECDHE+AEAD suites only, HTTP/2).
	TLS *ListenerTLS `yaml:"tls"`
	// TrustedProxies are CIDRs (or single IPs) of proxies in front of the
	// gateway. Only from these peers are X-Forwarded-For and X-Request-ID
	// honoured; the client IP is then the right-most untrusted address of
	// X-Forwarded-For. Empty (the default) trusts no one.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Limits are the server limits of this listener.
	Limits ListenerLimits `yaml:"limits"`
	// Access allows and denies client addresses on the whole listener,
	// before any other check of a request.
	Access *Access `yaml:"access"`
}

// Audit enforces the config audit (`rampart audit`).
type Audit struct {
	// FailOn is the lowest severity of an unaccepted finding that makes
	// run and reload refuse the config (a reload keeps the old plan):
	// low, medium, high or critical. Default none: findings are only
	// reported (rampart check, rampart audit, the admin API).
	FailOn string `yaml:"fail_on" enum:"none,low,medium,high,critical"`
	// Accept lists findings the owners accept, each with a reason and
	// an expiry; an expired acceptance counts as none.
	Accept []AuditAcceptance `yaml:"accept"`
}

// AuditAcceptance accepts the findings of one audit rule, on one route
// or everywhere, until a date.
type AuditAcceptance struct {
	// Rule is the rule id, e.g. RA-RATE-002.
	Rule string `yaml:"rule" required:"true"`
	// Route limits the acceptance to this route's findings (its id);
	// empty: every finding of the rule.
	Route string `yaml:"route"`
	// Reason says why the risk is accepted (shown next to the finding).
	Reason string `yaml:"reason" required:"true"`
	// Expires is the last day the acceptance holds (YYYY-MM-DD, UTC).
	Expires string `yaml:"expires" required:"true"`
}

// ExpiresAt is the first instant the acceptance no longer holds (the
// day after Expires, UTC); false when Expires is not a date.
func (a AuditAcceptance) ExpiresAt() (time.Time, bool) {
	d, err := time.Parse(time.DateOnly, a.Expires)
	if err != nil {
		return time.Time{}, false
	}
	return d.AddDate(0, 0, 1), true
}

// Discovery configures API discovery from live traffic.
type Discovery struct {
	// Sample is the fraction of forwarded requests learned from, 0 to 1.
	// Default 0.01.
	Sample float64 `yaml:"sample"`
	// MaxOperations bounds the operations learned, all routes together.
	// Default 5000.
	MaxOperations int `yaml:"max_operations"`
	// Window is how long a documented operation may see no traffic
	// before it is reported as a zombie. Default 24h.
	Window Duration `yaml:"window"`
	// Queue is how many samples wait for the learner; a full queue drops
	// samples (counted), never slows a request. Default 1024.
	Queue int `yaml:"queue"`
	// MaxBodyBytes is how much of each JSON body is read for its shape;
	// a longer body's shape is not learned. Default 64KiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
}

// RouteDiscovery overrides discovery on one route.
type RouteDiscovery struct {
	// Off learns nothing on this route.
	Off bool `yaml:"off"`
	// Sample is this route's rate, 0 to 1.
	Sample *float64 `yaml:"sample"`
}

// Race configures the race-condition detector of a route.
type Race struct {
	// Action is "refuse" (409 abuse.race for the duplicates), "flag" (a
	// security event only) or "off".
	Action string `yaml:"action" enum:"refuse,flag,off"`
	// Requests is how many identical requests within Window make a race
	// (the later ones are the duplicates). Default 2.
	Requests int `yaml:"requests"`
	// Window. Default 1s.
	Window Duration `yaml:"window"`
}

// Overload sheds a route's excess load: its concurrent requests are
// bounded by a limit that adapts to the latency the route shows; a
// request over it waits briefly for a slot, else is refused with 503
// overload.shed and Retry-After. On by default.
type Overload struct {
	// Off turns shedding off on the route (long polls and streams, whose
	// duration is not a latency).
	Off bool `yaml:"off"`
	// MinLimit is the lowest the limit falls, and the concurrency under
	// which a slow route is taken to be slow, not overloaded. Default 2.
	MinLimit int `yaml:"min_limit"`
	// MaxLimit is the highest it rises, and where it starts. Default 1000.
	MaxLimit int `yaml:"max_limit"`
	// Tolerance is how many times its usual latency the route may take
	// before the limit falls. Default 2.
	Tolerance float64 `yaml:"tolerance"`
	// MinLatency is a latency the route may always take: under it the
	// route is not overloaded, whatever its usual latency (a load test's
	// few milliseconds of queueing are not worth refusing). Default 50ms.
	MinLatency Duration `yaml:"min_latency"`
	// Queue is how many requests may wait for a slot (0: none). Default 16.
	Queue *int `yaml:"queue"`
	// MaxWait bounds a request's wait for a slot; it waits at most the
	// route's usual latency. Default 50ms.
	MaxWait Duration `yaml:"max_wait"`
}

// Idempotency configures Idempotency-Key handling on a route (the IETF
// httpapi draft "The Idempotency-Key HTTP Header Field").
type Idempotency struct {
	// Required refuses a request without a key (400).
	Required bool `yaml:"required"`
	// TTL is how long a response is kept for retries. Default 24h.
	TTL Duration `yaml:"ttl"`
	// Store is where keys and responses are kept: "redis" (shared by
	// every instance; the default with rate_limiting.redis) or "local".
	Store string `yaml:"store" enum:"local,redis"`
	// Methods the keys apply to. Default POST and PATCH.
	Methods []string `yaml:"methods"`
	// MaxResponseBytes bounds a stored response body; a longer response
	// is not stored (a retry gets 409). Default 256KiB.
	MaxResponseBytes ByteSize `yaml:"max_response_bytes"`
	// MaxKeys bounds the keys kept in the local store (oldest evicted
	// first). Default 100000.
	MaxKeys int `yaml:"max_keys"`
	// MaxKeysPerCaller bounds one caller's keys in the local store: its
	// oldest make room for its new ones, so a caller sending key after
	// key cannot evict other callers' records. Default 100.
	MaxKeysPerCaller int `yaml:"max_keys_per_caller"`
	// MaxStoreBytes bounds the bytes of the records the local store
	// keeps (the oldest make room), whatever their number. Default 64MiB.
	MaxStoreBytes ByteSize `yaml:"max_store_bytes"`
}

// Docs configures the published API document.
type Docs struct {
	// Title and Version of the document's info. Default "API", "1.0".
	Title   string `yaml:"title"`
	Version string `yaml:"version"`
	// Description is the document's description (Markdown).
	Description string `yaml:"description"`
	// Servers are the public base URLs clients call
	// (https://api.example.com); the documents' own servers are never
	// published.
	Servers []string `yaml:"servers"`
	// Listeners serve the document (by name; none: it is only written by
	// `rampart docs`).
	Listeners []string `yaml:"listeners"`
	// Path is where it is served: PATH/openapi.json and
	// PATH/openapi.yaml. Default /api-docs.
	Path string `yaml:"path"`
	// HideExtensions are x- extensions of the attached documents that are
	// internal and removed (x-rampart-* always are).
	HideExtensions []string `yaml:"hide_extensions"`
}

// State configures how Rampart keeps the secret state it writes: the API
// key store, the assertion signing keys and the runtime state operators
// set through the admin API.
type State struct {
	// MasterKey encrypts those files at rest (AES-256-GCM, a fresh data
	// key per write wrapped by this key): 32 bytes written as 64 hex
	// digits or in base64, from a secret reference
	// (openssl rand -hex 32).
	MasterKey Secret `yaml:"master_key" required:"true"`
	// PreviousMasterKeys still decrypt files written under them, while
	// `rampart store rekey` rewrites the files under master_key.
	PreviousMasterKeys []Secret `yaml:"previous_master_keys"`
	// RuntimeFile keeps what operators change at runtime (token
	// revocations, drained upstream targets, bans) across restarts,
	// encrypted, when no Redis is configured; with rate_limiting.redis
	// that state is shared in Redis instead. Relative to the config
	// file's directory. Empty: runtime changes last until a restart.
	RuntimeFile string `yaml:"runtime_file"`
}

// Vault is where ${vault:PATH#FIELD} secret references are read: a
// HashiCorp Vault server, logged in to for each load with a token or
// AppRole (given as env or file references, never vault ones).
type Vault struct {
	// Address is Vault's URL (https://vault.internal:8200).
	Address string `yaml:"address" required:"true"`
	// CAFile is the PEM bundle of Vault's CA (default: the system pool).
	CAFile string `yaml:"ca_file"`
	// Namespace is a Vault Enterprise namespace.
	Namespace string `yaml:"namespace"`
	// Token logs in directly.
	Token Secret `yaml:"token"`
	// AppRole logs in with a role id and secret id.
	AppRole *VaultAppRole `yaml:"approle"`
	// Timeout bounds each request to Vault. Default 5s.
	Timeout Duration `yaml:"timeout"`
}

// VaultAppRole is an AppRole login.
type VaultAppRole struct {
	RoleID   Secret `yaml:"role_id" required:"true"`
	SecretID Secret `yaml:"secret_id" required:"true"`
	// Mount is the AppRole auth mount. Default approle.
	Mount string `yaml:"mount"`
}

// Journal configures the tamper-evident journal of changes.
type Journal struct {
	// Output is the journal file (appended, 0600), relative to the config
	// file's directory when relative.
	Output string `yaml:"output" required:"true"`
	// CheckpointKey signs checkpoints of the chain (HMAC-SHA256): a
	// secret reference, at least 32 bytes. Without it the chain shows
	// edits but a rewrite of the whole file cannot be told from the real
	// one.
	CheckpointKey Secret `yaml:"checkpoint_key"`
	// CheckpointEvery is how many records pass between checkpoints.
	// Default 100 (and one at every shutdown).
	CheckpointEvery int `yaml:"checkpoint_every"`
}

// DecodeMasterKey reads a master key: 64 hex digits or base64 of 32 bytes.
func DecodeMasterKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("a master key is 32 bytes written as 64 hex digits or in base64 (openssl rand -hex 32)")
}

// Access is an IP firewall: client addresses (as resolved through the
// trusted proxies, never a header from an untrusted peer) that are
// denied, and, when an allow list is set, the only ones allowed. A deny
// wins over an allow. Refused requests get 403 access.ip_denied.
type Access struct {
	// Allow lists addresses and CIDR prefixes; when set (here or in
	// allow_files), every other client is refused.
	Allow []string `yaml:"allow"`
	// Deny lists addresses and CIDR prefixes that are refused.
	Deny []string `yaml:"deny"`
	// AllowFiles and DenyFiles are lists in files, one address or prefix
	// per line ('#' starts a comment), re-read when they change (a
	// blocklist feed).
	AllowFiles []string `yaml:"allow_files"`
	DenyFiles  []string `yaml:"deny_files"`
}

// ListenerTLS configures HTTPS on a listener.
type ListenerTLS struct {
	// CertFile is a PEM certificate chain (leaf first): the default
	// certificate, served to clients that send no server name or one no
	// certificate of Certificates names. Without it such handshakes are
	// refused (no internal name leaks through a default certificate).
	// Re-read on reload.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the certificate. Re-read on reload.
	KeyFile string `yaml:"key_file"`
	// Certificates are more certificates, each served to clients whose
	// server name (SNI) one of its DNS names matches (a wildcard covers
	// one label). Re-read on reload.
	Certificates []CertificateFiles `yaml:"certificates"`
	// ACME obtains and renews the listener's certificates automatically
	// from an ACME certificate authority (Let's Encrypt by default).
	ACME *ACME `yaml:"acme"`
	// HSTS configures the Strict-Transport-Security response header.
	HSTS HSTS `yaml:"hsts"`
	// ClientCAFile is the PEM bundle of CAs whose client certificates the
	// listener verifies (mTLS). The system pool is never used for clients.
	// Fixed at start.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientCRLFile is a CRL (PEM or DER) signed by a client CA; revoked
	// certificates are refused. Re-read on reload.
	ClientCRLFile string `yaml:"client_crl_file"`
	// ClientRevokedSerials are revoked client certificate serial numbers
	// (hex).
	ClientRevokedSerials []string `yaml:"client_revoked_serials"`
}

// ACME configures automatic certificates for a TLS listener. Certificates,
// their keys and the ACME account are stored encrypted under
// state.master_key, which is therefore required.
type ACME struct {
	// Email is the ACME account's contact, to which the CA sends expiry
	// and policy notices.
	Email string `yaml:"email" required:"true"`
	// Domains are the names to obtain certificates for. Default: the exact
	// hosts of the routes served on this listener.
	Domains []string `yaml:"domains"`
	// CA is the ACME directory URL, or "letsencrypt" (the default) or
	// "letsencrypt-staging".
	CA string `yaml:"ca"`
	// CARootFile is a PEM bundle trusted for the CA's directory (a private
	// CA); default: the system pool.
	CARootFile string `yaml:"ca_root_file"`
	// Challenges are the ACME challenge types answered: "tls-alpn-01" (on
	// this listener) and "http-01" (on the first plain listener, which
	// the CA reaches on port 80). Default: tls-alpn-01, plus http-01 when
	// the config has a plain listener.
	Challenges []string `yaml:"challenges"`
	// OnDemand obtains a certificate at the first handshake for a name
	// that matches a host of the listener's routes (wildcard hosts
	// included), never for any other name a client sends.
	OnDemand bool `yaml:"on_demand"`
	// KeyType is the certificates' key: "p256" (default), "p384" or
	// "rsa2048".
	KeyType string `yaml:"key_type"`
	// Storage is where certificates, keys and the account are kept:
	// "file" (default: storage_dir, which several instances may share)
	// or "redis" (rate_limiting.redis, shared by every instance). Both
	// are encrypted and locked so that one instance obtains each
	// certificate.
	Storage string `yaml:"storage"`
	// StorageDir is the directory for storage "file", relative to the
	// config file. Default "acme".
	StorageDir string `yaml:"storage_dir"`
}

// ACME challenge types and CA shorthands.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
	ACMELetsEncrypt    = "https://acme-v02.api.letsencrypt.org/directory"
	ACMEStaging        = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// CertificateFiles are a PEM certificate chain and its key.
type CertificateFiles struct {
	CertFile string `yaml:"cert_file" required:"true"`
	KeyFile  string `yaml:"key_file" required:"true"`
}

// HSTS configures the Strict-Transport-Security header sent on TLS listeners.
type HSTS struct {
	// Enabled sends the header. Default true.
	Enabled *bool `yaml:"enabled"`
	// MaxAge is the header's max-age. Default 365d.
	MaxAge Duration `yaml:"max_age"`
	// IncludeSubdomains adds includeSubDomains. Default true.
	IncludeSubdomains *bool `yaml:"include_subdomains"`
	// Preload adds preload. Default false.
	Preload bool `yaml:"preload"`
}

// ListenerLimits are server limits. Every field has a safe default.
type ListenerLimits struct {
	// ReadHeaderTimeout bounds reading the request headers (slowloris).
	// Default 5s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading the whole request, body included. Default 30s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing the response. Routes with stream: true and
	// WebSocket upgrades are exempt. Default 60s.
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line and headers; larger requests
	// get 431. Default 64KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// MaxConnections bounds concurrent connections; further connections
	// wait in the kernel backlog. Default 10000.
	MaxConnections int `yaml:"max_connections"`
	// MaxBodyBytes is the default request body limit (413 beyond it); a
	// route may override it. Default 1MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MaxConnectionsPerIP bounds concurrent connections from one TCP peer
	// address; further ones are closed at once. 0 (default) is no cap:
	// behind a load balancer every connection comes from its address.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
}

// Upstream is a service made of one or more targets.
type Upstream struct {
	// Name identifies the upstream; routes refer to it.
	Name string `yaml:"name" required:"true"`
	// Targets are the service instances, as URLs without a path
	// ("https://10.0.0.5:8443").
	Targets []Target `yaml:"targets" required:"true"`
	// Balance is the load-balancing policy: round_robin (default, weighted),
	// least_requests, or consistent_hash.
	Balance string `yaml:"balance" enum:"round_robin,least_requests,consistent_hash"`
	// HashOn is the consistent_hash key: client_ip (default), path, or
	// header:NAME.
	HashOn string `yaml:"hash_on"`
	// AllowPlaintext permits http:// targets. Off by default: traffic to
	// services is encrypted unless the config says otherwise.
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// TLS configures https:// targets: CA bundle, server name, client
	// certificate for mTLS.
	TLS UpstreamTLS `yaml:"tls"`
	// Timeouts are the upstream's timeouts; routes may override them.
	Timeouts UpstreamTimeouts `yaml:"timeouts"`
	// HealthCheck turns on active health checks.
	HealthCheck *HealthCheck `yaml:"health_check"`
	// Passive configures passive ejection of failing targets.
	Passive Passive `yaml:"passive"`
	// CircuitBreaker fails fast with 503 after repeated upstream failures.
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker"`
	// MaxIdleConnsPerTarget bounds pooled keep-alive connections per target.
	// Default 256.
	MaxIdleConnsPerTarget int `yaml:"max_idle_conns_per_target"`
	// MaxConnsPerTarget bounds all connections per target (0 = unlimited).
	MaxConnsPerTarget int `yaml:"max_conns_per_target"`
	// MaxInFlight bounds requests in flight to the upstream across all
	// routes (503 upstream.overloaded beyond; 0 = unlimited).
	MaxInFlight int `yaml:"max_in_flight"`
	// Credential is a header the gateway adds to every request to this
	// upstream (for example an API key the service expects). Its value is a
	// secret reference.
	Credential *Credential `yaml:"credential"`
}

// Target is one instance of an upstream.
type Target struct {
	// URL is scheme://host:port, without path, query or user info.
	URL string `yaml:"url" required:"true"`
	// Weight is the relative share of traffic (round_robin). Default 1.
	Weight int `yaml:"weight"`
}

// UpstreamTLS configures TLS to https:// targets.
type UpstreamTLS struct {
	// CAFile is a PEM bundle of CAs to trust. Default: the system pool.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name verified in the target's certificate and sent
	// as SNI. Default: the target's host.
	ServerName string `yaml:"server_name"`
	// CertFile is the gateway's client certificate for upstream mTLS.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the private key of CertFile.
	KeyFile string `yaml:"key_file"`
	// SPIFFEID pins the service's identity: its certificate, verified
	// against the CA bundle, must carry this URI SAN
	// (spiffe://trust-domain/path). The host name is then not checked (an
	// SVID names a workload, not a host).
	SPIFFEID string `yaml:"spiffe_id"`
	// SPKISHA256 pins the service's key: the base64 SHA-256 of its
	// certificate's SubjectPublicKeyInfo must be one of these (list the
	// next key before rotating). In addition to the CA and host checks.
	SPKISHA256 []string `yaml:"spki_sha256"`
}

// UpstreamTimeouts bound the conversation with a target.
type UpstreamTimeouts struct {
	// Connect bounds dialling a target (TCP and TLS). Default 5s.
	Connect Duration `yaml:"connect"`
	// Response bounds the wait for the response headers after the request
	// was sent. Default 30s.
	Response Duration `yaml:"response"`
	// Idle closes pooled connections idle this long. Default 90s.
	Idle Duration `yaml:"idle"`
}

// HealthCheck configures active health checks of every target.
type HealthCheck struct {
	// Path is requested with GET on each target, e.g. "/healthz".
	Path string `yaml:"path" required:"true"`
	// Interval between checks. Default 10s.
	Interval Duration `yaml:"interval"`
	// Timeout of one check. Default 2s.
	Timeout Duration `yaml:"timeout"`
	// HealthyThreshold is the consecutive successes that bring an unhealthy
	// target back. Default 2.
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold is the consecutive failures that take a target out.
	// Default 3.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
	// ExpectStatus lists the statuses counted as healthy. Default 200-399.
	ExpectStatus []int `yaml:"expect_status"`
}

// Passive configures ejection of targets that fail live requests.
type Passive struct {
	// Enabled turns passive ejection on. Default true.
	Enabled *bool `yaml:"enabled"`
	// ConsecutiveFailures (connection errors, 502/503/504) that eject a
	// target. Default 5.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// EjectFor is how long an ejected target gets no traffic. Default 30s.
	EjectFor Duration `yaml:"eject_for"`
}

// CircuitBreaker opens after repeated upstream failures and answers 503
// without contacting the upstream until a probe succeeds.
type CircuitBreaker struct {
	// ConsecutiveFailures that open the breaker. Default 20.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// OpenFor is how long the breaker stays open before a probe. Default 10s.
	OpenFor Duration `yaml:"open_for"`
}

// Credential is a header with a secret value added to upstream requests.
type Credential struct {
	// Header is the header name, e.g. "X-Api-Key".
	Header string `yaml:"header" required:"true"`
	// Value is a secret reference: ${env:NAME} or ${file:/path}.
	Value Secret `yaml:"value" required:"true"`
}

// NoRoute is the route name of a request no route answered, in the
// access log, the security events, the metrics and the traces alike.
const NoRoute = "none"

// Route maps matching requests to an upstream.
type Route struct {
	// ID identifies the route in logs, metrics and errors. Unique.
	ID string `yaml:"id" required:"true"`
	// Listeners restricts the route to these listeners. Default: all.
	Listeners []string `yaml:"listeners"`
	// Hosts the route serves: exact ("api.example.com") or one-label
	// wildcards ("*.example.com"). Default: any host.
	Hosts []string `yaml:"hosts"`
	// Methods allowed (case-sensitive, e.g. GET, POST). Others get 405.
	// Default: any method.
	Methods []string `yaml:"methods"`
	// Path matches one normalised path exactly, or a template whose
	// {name} segments capture one path segment each ("/users/{id}").
	Path string `yaml:"path"`
	// Prefix matches a path and everything below it at a segment boundary:
	// "/api" matches /api and /api/x, not /apix.
	Prefix string `yaml:"prefix"`
	// Upstream is the name of the upstream requests are forwarded to.
	Upstream string `yaml:"upstream" required:"true"`
	// Public declares that the route needs no authentication. Deny by
	// default: a route must have auth or say public: true.
	Public bool `yaml:"public"`
	// Auth requires callers to authenticate.
	Auth *RouteAuth `yaml:"auth"`
	// Sensitive marks a high-value route: API keys alone are not enough
	// to call it (NIST SP 800-204 MS-SS-1).
	Sensitive bool `yaml:"sensitive"`
	// Authorize is the route's policy. Deny by default: an authenticated
	// route needs one, or the explicit "authorize: any_authenticated".
	Authorize *Authorize `yaml:"authorize"`
	// RateLimits are the route's rate limits; every one must allow a
	// request. Limits keyed by the client IP alone are checked before
	// authentication, the others after authorization.
	RateLimits []RateLimit `yaml:"rate_limits"`
	// MaxInFlight bounds the route's concurrent requests (429 beyond).
	MaxInFlight int `yaml:"max_in_flight"`
	// Idempotency honours the Idempotency-Key request header: a retry
	// gets the first request's response without reaching the service.
	Idempotency *Idempotency `yaml:"idempotency"`
	// Category is what the route does, which sets the defaults of its
	// race defence: payment, login, account, search, static, admin,
	// write or read. Default: inferred from the path and methods
	// (docs/rate-limiting.md).
	Category string `yaml:"category" enum:"payment,login,account,search,static,admin,write,read"`
	// MaxInFlightPerIdentity bounds one caller's concurrent requests on
	// the route (429 ratelimit.identity_concurrency beyond). Default 1 on
	// payment routes, else off (0).
	MaxInFlightPerIdentity *int `yaml:"max_in_flight_per_identity"`
	// Race detects the same caller sending the same request (method,
	// path, body) again within a short window. Default on payment
	// routes: refuse; on write routes: flag.
	Race *Race `yaml:"race"`
	// Overload sheds the route's excess load (an adaptive concurrency
	// limit). On by default.
	Overload *Overload `yaml:"overload"`
	// Validate checks the request's input before it is forwarded.
	Validate *Validate `yaml:"validate"`
	// WAF inspects requests with Coraza and the OWASP Core Rule Set.
	WAF *WAF `yaml:"waf"`
	// OpenAPI validates requests (and optionally responses) against an
	// OpenAPI 3.0/3.1 document and refuses undocumented operations.
	OpenAPI *OpenAPI `yaml:"openapi"`
	// AbuseAccount names the field of a login request that holds the
	// account, for abuse.credential_stuffing.
	AbuseAccount *AbuseAccount `yaml:"abuse_account"`
	// Access allows and denies client addresses on this route, checked
	// first of the route's stages (the listener's access comes earlier).
	Access *Access `yaml:"access"`
	// Quotas bound requests per consumer per calendar day or month (UTC).
	Quotas []Quota `yaml:"quotas"`
	// ResponseHeaders changes the route's response headers, on top of the
	// top-level response_headers (this route's entries win).
	ResponseHeaders *ResponseHeaders `yaml:"response_headers"`
	// CORS lets browsers on the listed origins call the route; the gateway
	// answers preflights itself and sets the CORS headers of responses
	// (those of the service are replaced). Off when absent: no CORS headers.
	CORS *CORS `yaml:"cors"`
	// SkipAssertion sends no signed assertion on this route (for example
	// static content whose service verifies nothing).
	SkipAssertion bool `yaml:"skip_assertion"`
	// Docs is hidden to leave the route out of the published API
	// document (an internal or partner-only route). Default visible.
	Docs string `yaml:"docs" enum:"hidden,visible"`
	// Discovery overrides the discovery section's sampling for this
	// route (off, or another rate).
	Discovery *RouteDiscovery `yaml:"discovery"`
	// ForwardAuthorization forwards the client's Authorization header to
	// the upstream. Off by default (NIST SP 800-204 MS-SS-10): the gateway
	// consumed the credential and vouches for the caller itself.
	ForwardAuthorization bool `yaml:"forward_authorization"`
	// PreserveHost forwards the client's Host header instead of the
	// target's host.
	PreserveHost bool `yaml:"preserve_host"`
	// MaxBodyBytes overrides the listener's request body limit.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// Timeouts override the upstream's.
	Timeouts RouteTimeouts `yaml:"timeouts"`
	// Retries configures retries of idempotent requests.
	Retries Retries `yaml:"retries"`
	// Stream marks long-lived responses (server-sent events, long polling):
	// the listener's write timeout does not apply.
	Stream bool `yaml:"stream"`
}

// RouteTimeouts override upstream timeouts for one route.
type RouteTimeouts struct {
	// Connect bounds dialling a target.
	Connect Duration `yaml:"connect"`
	// Response bounds the wait for response headers.
	Response Duration `yaml:"response"`
}

// Retries configures retries. Only idempotent methods without a request body
// are retried, and only before any response byte reached the client.
type Retries struct {
	// Attempts is the total number of tries, first included. Default 2; 1
	// turns retries off.
	Attempts int `yaml:"attempts"`
	// On lists what is retried: connect_failure (default), 502, 503, 504.
	On []string `yaml:"on" enum:"connect_failure,502,503,504"`
}

// AccessLog configures the JSON access log.
type AccessLog struct {
	// Enabled writes one JSON line per request. Default true.
	Enabled *bool `yaml:"enabled"`
	// Output is stdout (default), stderr, or a file path (appended).
	Output string `yaml:"output"`
}

// Tracing configures OpenTelemetry tracing.
type Tracing struct {
	// Endpoint is the OTLP collector's host:port, e.g. otel-collector:4318
	// (HTTP) or :4317 (gRPC).
	Endpoint string `yaml:"endpoint" required:"true"`
	// Protocol is http (default and only value: OTLP/HTTP with the
	// protobuf encoding, POST /v1/traces; the collector's port 4318).
	Protocol string `yaml:"protocol" enum:"http"`
	// AllowPlaintext exports without TLS (a collector on loopback or a
	// sidecar).
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// Headers added to every export (a secret reference for tokens).
	Headers []Credential `yaml:"headers"`
	// SampleRatio of new traces, 0 to 1. Default 0.01. A trusted parent's
	// sampling decision is kept.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// TrustIncoming is whose traceparent/baggage continue a trace:
	// trusted_proxies (default: peers in the listener's trusted_proxies),
	// all, or none. Other clients' trace headers are dropped.
	TrustIncoming string `yaml:"trust_incoming" enum:"trusted_proxies,all,none"`
	// ServiceName is the spans' service.name. Default rampart.
	ServiceName string `yaml:"service_name"`
}

// Admin configures the admin listener.
type Admin struct {
	// Address to bind. Default 127.0.0.1:9901; a non-loopback address
	// needs allow_remote.
	Address string `yaml:"address"`
	// AllowRemote permits binding a non-loopback address (put network
	// policy in front of it); such an address needs tls.
	AllowRemote bool `yaml:"allow_remote"`
	// TLS serves the admin listener over HTTPS; with client_ca_file, a
	// client certificate from those CAs is required too (mTLS), on top
	// of a principal's token.
	TLS *AdminTLS `yaml:"tls"`
	// Token is the token of a principal named "admin" with the admin
	// role (shorthand for one entry of principals): presented as
	// "Authorization: Bearer <token>" or at the dashboard's sign-in; a
	// secret reference, at least 32 bytes. Only its SHA-256 is kept.
	Token Secret `yaml:"token"`
	// Principals are the admin listener's named users, each with a token
	// and a role. At least one of token and principals is required.
	Principals []AdminPrincipal `yaml:"principals"`
	// Access allows and denies the admin listener's clients (its direct
	// peers: the admin listener trusts no proxy).
	Access *Access `yaml:"access"`
}

// AdminTLS is the admin listener's certificate and client CAs.
type AdminTLS struct {
	CertFile string `yaml:"cert_file" required:"true"`
	KeyFile  string `yaml:"key_file" required:"true"`
	// ClientCAFile, when set, requires a client certificate signed by one
	// of these CAs on every connection.
	ClientCAFile string `yaml:"client_ca_file"`
}

// AdminPrincipal is one user of the admin listener.
type AdminPrincipal struct {
	// Name identifies the principal in the journal and the events.
	Name string `yaml:"name" required:"true"`
	// Token is a secret reference of at least 32 bytes; only its SHA-256
	// is kept.
	Token Secret `yaml:"token"`
	// ClientCertSAN names the principal's admin client certificate: a
	// DNS name, e-mail address or URI (spiffe://...) among the
	// subject alternative names of a certificate the admin listener
	// verified against admin.tls.client_ca_file. A principal has a token,
	// a client certificate, or both; a bearer token, when sent, decides.
	ClientCertSAN string `yaml:"client_cert_san"`
	// Role is viewer (read only), operator (also lift bans) or admin
	// (everything).
	Role string `yaml:"role" required:"true" enum:"viewer,operator,admin"`
}

// SecurityEvents configures the security event stream.
type SecurityEvents struct {
	// Enabled turns the stream on. Default true.
	Enabled *bool `yaml:"enabled"`
	// Output is stdout (default), stderr, a file path (appended), or off
	// (webhook only).
	Output string `yaml:"output"`
	// QueueSize bounds the events waiting to be written; beyond it new
	// events are dropped and counted, never waited for. Default 10000.
	QueueSize int `yaml:"queue_size"`
	// Webhook posts the events in batches (a JSON array per POST).
	Webhook *EventWebhook `yaml:"webhook"`
}

// EventWebhook is an HTTP endpoint receiving security events.
type EventWebhook struct {
	// URL of the endpoint; https unless allow_plaintext.
	URL string `yaml:"url" required:"true"`
	// AllowPlaintext permits an http:// URL (a collector on loopback).
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// Headers added to every POST, e.g. an authorization token (a
	// secret reference: ${env:NAME} or ${file:/path}).
	Headers []Credential `yaml:"headers"`
	// BatchSize is the most events per POST. Default 100.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest an event waits for its batch.
	// Default 1s.
	FlushInterval Duration `yaml:"flush_interval"`
	// MaxRetries of a failed POST, with exponential backoff. Default 5.
	MaxRetries int `yaml:"max_retries"`
	// Timeout of one POST. Default 5s.
	Timeout Duration `yaml:"timeout"`
	// QueueSize bounds the events waiting for the webhook. Default 10000.
	QueueSize int `yaml:"queue_size"`
}

// Authn lists trusted credential sources.
type Authn struct {
	// JWT lists the token issuers the gateway trusts.
	JWT []JWTIssuer `yaml:"jwt"`
	// APIKeys configures API keys (a supplement to stronger methods).
	APIKeys *APIKeys `yaml:"api_keys"`
	// Introspection lists OAuth2 token introspection endpoints (RFC 7662)
	// for opaque access tokens.
	Introspection []Introspection `yaml:"introspection"`
	// RevokedTokenIDs are token "jti" values refused on every route,
	// cached or not. Applied on reload.
	RevokedTokenIDs []string `yaml:"revoked_token_ids"`
}

// Introspection is an RFC 7662 endpoint the gateway asks about opaque
// bearer tokens. The gateway fails closed: no answer, no access.
type Introspection struct {
	// Name identifies the endpoint; routes refer to it.
	Name string `yaml:"name" required:"true"`
	// Endpoint is the introspection URL (https).
	Endpoint string `yaml:"endpoint" required:"true"`
	// ClientID authenticates the gateway to the endpoint (HTTP Basic).
	ClientID string `yaml:"client_id" required:"true"`
	// ClientSecret is a reference (${env:NAME} or ${file:/path}).
	ClientSecret Secret `yaml:"client_secret" required:"true"`
	// Issuer, when set, must equal the answer's "iss".
	Issuer string `yaml:"issuer"`
	// Audiences, when set: the answer's "aud" must hold one of them.
	Audiences []string `yaml:"audiences"`
	// Timeout of one introspection request. Default 2s.
	Timeout Duration `yaml:"timeout"`
	// CacheTTL bounds the reuse of an active answer (never past the
	// token's exp). Default 60s.
	CacheTTL Duration `yaml:"cache_ttl"`
	// NegativeCacheTTL bounds the reuse of an inactive answer. Default 10s.
	NegativeCacheTTL Duration `yaml:"negative_cache_ttl"`
	// CAFile is the CA bundle trusted for the endpoint. Default: system.
	CAFile string `yaml:"ca_file"`
	// AllowPlaintext permits an http:// endpoint (local development).
	AllowPlaintext bool `yaml:"allow_plaintext"`
}

// APIKeys configures API-key authentication. Keys are made with
// `rampart keys create` and stored only as HMAC-SHA-256 under Secret.
type APIKeys struct {
	// Secret is the server key of the stored hashes (at least 32 bytes; a
	// reference such as ${env:RAMPART_API_KEY_SECRET}).
	Secret Secret `yaml:"secret" required:"true"`
	// File is the key store written by `rampart keys create`. Re-read on
	// reload.
	File string `yaml:"file" required:"true"`
	// Header carries the key. Default X-Api-Key. Keys are never read from
	// the URL.
	Header string `yaml:"header"`
}

// JWTIssuer is one trusted issuer of bearer JWTs. Its keys come from
// exactly one of jwks_url, discovery or keys.
type JWTIssuer struct {
	// Name identifies the issuer; routes refer to it.
	Name string `yaml:"name" required:"true"`
	// Issuer is the exact "iss" claim of its tokens (and, with discovery,
	// the base of /.well-known/openid-configuration).
	Issuer string `yaml:"issuer" required:"true"`
	// Audiences: a token's "aud" must hold one of them.
	Audiences []string `yaml:"audiences" required:"true"`
	// Algorithms allowed for this issuer (RS256/384/512, PS256/384/512,
	// ES256/384/512, EdDSA, HS256/384/512). The algorithm is never taken
	// from the token; "none" is never allowed.
	Algorithms []string `yaml:"algorithms" required:"true"`
	// JWKSURL is the issuer's JSON Web Key Set (https).
	JWKSURL string `yaml:"jwks_url"`
	// Discovery finds the JWKS through OpenID Connect discovery.
	Discovery bool `yaml:"discovery"`
	// Keys are static verification keys.
	Keys []JWTKey `yaml:"keys"`
	// RequireType demands this "typ" header, e.g. at+jwt (RFC 9068), so
	// that ID tokens cannot be used as access tokens.
	RequireType string `yaml:"require_type"`
	// ClockSkew tolerated on exp, nbf and iat. Default 30s, at most 5m.
	ClockSkew Duration `yaml:"clock_skew"`
	// Refresh is the JWKS refresh interval when the IdP sends no
	// Cache-Control max-age. Default 5m.
	Refresh Duration `yaml:"refresh"`
	// MinRefetch bounds refetches on unknown key ids to one per interval.
	// Default 30s.
	MinRefetch Duration `yaml:"min_refetch"`
	// FetchTimeout bounds one JWKS or discovery request. Default 5s.
	FetchTimeout Duration `yaml:"fetch_timeout"`
	// CAFile is the CA bundle trusted for the IdP's TLS certificate.
	// Default: the system pool.
	CAFile string `yaml:"ca_file"`
	// AllowPlaintext permits http:// IdP URLs (local development only).
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// ScopesClaim holds the granted scopes (space-separated string or
	// list). Default "scope" (falling back to "scp").
	ScopesClaim string `yaml:"scopes_claim"`
	// RolesClaim is a dotted path to the roles list, e.g.
	// realm_access.roles.
	RolesClaim string `yaml:"roles_claim"`
	// Claims are copied into the verified identity for later stages.
	Claims []string `yaml:"claims"`
	// RequireBinding demands an "htb" claim binding the token to the
	// request's method, host and path (assertions of an edge rampart):
	// a token replayed for another request is refused.
	RequireBinding bool `yaml:"require_binding"`
}

// JWTKey is a static verification key.
type JWTKey struct {
	// KID is the key id tokens name in their "kid" header. Optional when
	// the issuer has one key per algorithm.
	KID string `yaml:"kid"`
	// Algorithm the key is bound to.
	Algorithm string `yaml:"algorithm" required:"true"`
	// File is a PEM public key or certificate, or a JWK (JSON).
	File string `yaml:"file"`
	// Secret is an HS256/384/512 shared secret of at least 32 bytes; it
	// must be a reference (${env:NAME} or ${file:/path}).
	Secret Secret `yaml:"secret"`
}

// RouteAuth is how callers of a route authenticate.
type RouteAuth struct {
	// JWT lists the names of the issuers whose tokens the route accepts.
	JWT []string `yaml:"jwt"`
	// Introspection lists the introspection endpoints asked about opaque
	// bearer tokens.
	Introspection []string `yaml:"introspection"`
	// APIKey accepts API keys from authn.api_keys.
	APIKey bool `yaml:"api_key"`
	// MTLS accepts (or, with all_of, requires) a client certificate
	// verified by the listener's client_ca_file.
	MTLS bool `yaml:"mtls"`
	// Combine says how several methods combine: any_of (one suffices) or
	// all_of (every one is required). Required with more than one method.
	Combine string `yaml:"combine" enum:"any_of,all_of"`
	// MaxTokenLifetime refuses tokens whose exp − iat exceeds it (tokens
	// must expire as soon as possible). 0: no limit.
	MaxTokenLifetime Duration `yaml:"max_token_lifetime"`
	// RequiredClaims must be present in the token.
	RequiredClaims []string `yaml:"required_claims"`
	// SingleUse accepts each token (by "jti", then required) only once: a
	// replay guard for high-security routes.
	SingleUse bool `yaml:"single_use"`
	// TokenQueryParam opts in to reading the JWT from this query
	// parameter when no Authorization header is sent (tokens in URLs leak
	// into logs and caches; the access log redacts them).
	TokenQueryParam string `yaml:"token_query_param"`
	// TokenCookie opts in to reading the JWT from this cookie when no
	// Authorization header is sent.
	TokenCookie string `yaml:"token_cookie"`
	// TokenHeader reads the JWT, without "Bearer", from this header
	// instead of Authorization: a micro-gateway reads its edge's
	// assertion from X-Rampart-Assertion.
	TokenHeader string `yaml:"token_header"`
}

// Authorize is a route's authorization policy. Every condition given must
// hold. Written as the string "any_authenticated", it admits every
// authenticated caller.
type Authorize struct {
	// AnyAuthenticated admits every authenticated caller.
	AnyAuthenticated bool `yaml:"any_authenticated"`
	// ScopesAll are scopes the caller must all hold.
	ScopesAll []string `yaml:"scopes_all"`
	// ScopesAny are scopes of which the caller must hold one.
	ScopesAny []string `yaml:"scopes_any"`
	// RolesAll are roles the caller must all hold.
	RolesAll []string `yaml:"roles_all"`
	// RolesAny are roles of which the caller must hold one.
	RolesAny []string `yaml:"roles_any"`
	// Claims maps a claim (dotted path; "sub" and "iss" included) to the
	// values it may take. A list claim passes when one element does.
	Claims map[string][]string `yaml:"claims"`
	// Bind ties path parameters to claims: {userId: sub} admits
	// /users/{userId} only when userId equals the caller's subject
	// (object-level authorization, OWASP API1).
	Bind map[string]string `yaml:"bind"`
	// CEL is a boolean CEL expression over identity (sub, iss, method,
	// scopes, roles, claims), request (method, path, params, headers,
	// client_ip) and now (a timestamp).
	CEL string `yaml:"cel"`
	// Headers are the request headers visible to CEL as request.headers
	// (lower-case names).
	Headers []string `yaml:"headers"`
	// Methods adds a policy per HTTP method (function-level
	// authorization, OWASP API5), on top of the route's.
	Methods map[string]*Authorize `yaml:"methods"`
}

func (a *Authorize) decodeScalar(v string) error {
	if v != "any_authenticated" {
		return fmt.Errorf("expected a policy or \"any_authenticated\", got %q", v)
	}
	a.AnyAuthenticated = true
	return nil
}

// Assertion configures the gateway-signed identity assertion.
type Assertion struct {
	// Issuer is the assertions' "iss", e.g. https://edge.example.com.
	Issuer string `yaml:"issuer" required:"true"`
	// Algorithm of the signing key: EdDSA (default) or ES256.
	Algorithm string `yaml:"algorithm" enum:"EdDSA,ES256"`
	// KeyFile holds the PEM private signing key; generated (0600) on
	// first start when missing.
	KeyFile string `yaml:"key_file" required:"true"`
	// PreviousKeyFiles are retired keys still published in the JWKS, for
	// rotation with overlap.
	PreviousKeyFiles []string `yaml:"previous_key_files"`
	// TTL of an assertion. Default 60s, at most 10m.
	TTL Duration `yaml:"ttl"`
	// Header carries the assertion. Default X-Rampart-Assertion. A client
	// value of it is always removed.
	Header string `yaml:"header"`
	// JWKSPath, when set, serves the public keys on every listener at this
	// path (e.g. /.well-known/rampart-jwks.json).
	JWKSPath string `yaml:"jwks_path"`
	// Reuse lets one assertion serve the same caller, upstream, method,
	// host and path for this long instead of signing each request (at most
	// half the TTL). Its jti and rid are then the first request's, so
	// services must not enable a replay cache. Default 0: off.
	Reuse Duration `yaml:"reuse"`
}

// RateLimiting holds gateway-wide rate-limit settings.
type RateLimiting struct {
	// IPv6Prefix is the former place of client_ip.ipv6_prefix, still read
	// (with a warning) when client_ip.ipv6_prefix is not set.
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// MaxKeys bounds the local stores: the limit buckets, and the
	// consumers counted by quotas. Default 1000000.
	MaxKeys int `yaml:"max_keys"`
	// Redis shares limits across gateway instances. Limits use it by
	// default when it is configured.
	Redis *Redis `yaml:"redis"`
}

// ClientIP says how client addresses key the gateway's state.
type ClientIP struct {
	// IPv6Prefix keys IPv6 clients by this prefix length everywhere a
	// client address keys state: rate limits and quotas, abuse detectors
	// and bans, the dashboard's client tables. One host can use every
	// address of its /64; keying by address would let it multiply its
	// limits and escape its bans. IPv4 clients are keyed by address.
	// Default 64.
	IPv6Prefix int `yaml:"ipv6_prefix"`
}

// ResponseHeaders changes response headers. Names are checked at load;
// changing a secure default (X-Frame-Options, Content-Security-Policy,
// Referrer-Policy, X-Content-Type-Options, Cache-Control) is reported by
// rampart check.
type ResponseHeaders struct {
	// Set replaces these headers (whatever the service sent).
	Set map[string]string `yaml:"set"`
	// Add appends these values (a header may then have several).
	Add map[string]string `yaml:"add"`
	// Remove deletes these headers (names).
	Remove []string `yaml:"remove"`
}

// CORS is a route's cross-origin policy.
type CORS struct {
	// Origins allowed to call the route: exact origins
	// ("https://app.example.com", scheme, host and port compared on the
	// parsed origin), subdomain patterns ("https://*.example.com": one or
	// more labels before example.com, never example.com itself), "*" (any
	// origin, no credentials) or "null" (only if listed).
	Origins []string `yaml:"origins" required:"true"`
	// Methods allowed in preflights. Default: the route's methods, or GET,
	// HEAD and POST.
	Methods []string `yaml:"methods"`
	// Headers a request may carry beyond the CORS-safelisted ones (e.g.
	// Authorization, Content-Type).
	Headers []string `yaml:"headers"`
	// Expose lists response headers scripts may read.
	Expose []string `yaml:"expose"`
	// Credentials lets requests carry cookies and Authorization
	// (Access-Control-Allow-Credentials). Never with "*".
	Credentials bool `yaml:"credentials"`
	// MaxAge is how long a browser may cache a preflight. Default 10m.
	MaxAge Duration `yaml:"max_age"`
}

// Redis is a Redis deployment: standalone (one address), Sentinel
// (master_name) or Cluster (several addresses).
type Redis struct {
	// Addresses are host:port of the server, the sentinels or the
	// cluster nodes.
	Addresses []string `yaml:"addresses" required:"true"`
	// MasterName selects Sentinel mode.
	MasterName string `yaml:"master_name"`
	// Username for Redis ACLs.
	Username string `yaml:"username"`
	// Password is a secret reference.
	Password Secret `yaml:"password"`
	// DB is the database number (standalone and Sentinel).
	DB int `yaml:"db"`
	// Timeout of one limit check. Default 100ms.
	Timeout Duration `yaml:"timeout"`
	// KeyPrefix namespaces rampart's keys. Default "rampart:rl:".
	KeyPrefix string `yaml:"key_prefix"`
}

// RateLimit is one GCRA limit: Rate requests per Per, bursts of Burst.
type RateLimit struct {
	// Name appears in RateLimit headers and logs. Default limitN.
	Name string `yaml:"name"`
	// Key builds the bucket from verified data only: client_ip (the
	// resolved real client), subject, api_key, claim:NAME, route; several
	// combine. Default [client_ip].
	Key []string `yaml:"key"`
	// Rate is the number of requests per Per.
	Rate int `yaml:"rate" required:"true"`
	// Per is the period of Rate, e.g. 1s, 1m, 1h.
	Per Duration `yaml:"per" required:"true"`
	// Burst is how many requests may arrive at once. Default Rate.
	Burst int `yaml:"burst"`
	// Store holds the buckets: redis (shared by every instance; default
	// when rate_limiting.redis is set) or local.
	Store string `yaml:"store" enum:"local,redis"`
	// OnStoreError is what happens when Redis fails: fail_open (default:
	// the local store takes over) or fail_closed (503).
	OnStoreError string `yaml:"on_store_error" enum:"fail_open,fail_closed"`
	// OnMissingKey is what happens to a request that lacks a part of Key
	// (a token without sub or without the claim, a claim that is not a
	// string, number or boolean, no API key): refuse (default: 403
	// ratelimit.key_missing) or client_ip (the client address stands in
	// for the missing part). Callers never share a bucket by lacking a
	// part.
	OnMissingKey string `yaml:"on_missing_key" enum:"refuse,client_ip"`
	// TierClaim selects the limit by a verified claim of the caller (for
	// example plan); never by a request header.
	TierClaim string `yaml:"tier_claim"`
	// Tiers maps values of TierClaim to their limits; callers without a
	// listed value get the limit's own rate.
	Tiers map[string]Tier `yaml:"tiers"`
}

// Kinds of limit key parts: the grammar of rate_limits[].key and
// quotas[].key, in one place.
const (
	LimitKeyClientIP = "client_ip"
	LimitKeySubject  = "subject"
	LimitKeyAPIKey   = "api_key"
	LimitKeyRoute    = "route"
	LimitKeyClaim    = "claim" // written claim:NAME
)

// LimitKey is one parsed part of a limit's key.
type LimitKey struct {
	// Kind is one of the LimitKey* constants.
	Kind string
	// Claim names the claim of a LimitKeyClaim part.
	Claim string
}

// Identity reports whether the part comes from the authenticated caller
// (so the limit runs after authentication, on an authenticated route).
func (k LimitKey) Identity() bool { return k.Kind != LimitKeyClientIP && k.Kind != LimitKeyRoute }

// ParseLimitKey reads one part of a key: client_ip, subject, api_key,
// route or claim:NAME.
func ParseLimitKey(s string) (LimitKey, bool) {
	switch s {
	case LimitKeyClientIP, LimitKeySubject, LimitKeyAPIKey, LimitKeyRoute:
		return LimitKey{Kind: s}, true
	}
	if name, ok := strings.CutPrefix(s, LimitKeyClaim+":"); ok && name != "" {
		return LimitKey{Kind: LimitKeyClaim, Claim: name}, true
	}
	return LimitKey{}, false
}

// Tier is the rate of one tier.
type Tier struct {
	// Rate requests per Per.
	Rate int `yaml:"rate" required:"true"`
	// Per is the period.
	Per Duration `yaml:"per" required:"true"`
	// Burst; default Rate.
	Burst int `yaml:"burst"`
}

// Quota is a number of requests per consumer per calendar day or month.
type Quota struct {
	// Name identifies the quota. Default quotaN.
	Name string `yaml:"name"`
	// Key is the consumer: subject (default), api_key, claim:NAME,
	// client_ip, route.
	Key []string `yaml:"key"`
	// Limit is the number of requests per period.
	Limit int64 `yaml:"limit" required:"true"`
	// Period is day or month (calendar, UTC).
	Period string `yaml:"period" required:"true" enum:"day,month"`
	// OnStoreError: fail_open (default) or fail_closed.
	OnStoreError string `yaml:"on_store_error" enum:"fail_open,fail_closed"`
	// OnMissingKey is what happens to a request that lacks a part of Key
	// (a token without sub or without the claim, a claim that is not a
	// string, number or boolean, no API key): refuse (default: 403
	// ratelimit.key_missing) or client_ip (the client address stands in
	// for the missing part). Callers never share a bucket by lacking a
	// part.
	OnMissingKey string `yaml:"on_missing_key" enum:"refuse,client_ip"`
}

// Abuse configures detection of abusive clients (per real client IP) and
// their temporary bans. With rate_limiting.redis, bans are shared by every
// instance.
type Abuse struct {
	// BanFor is how long a detected client is sanctioned. Default 15m.
	BanFor Duration `yaml:"ban_for"`
	// Action on detection: ban (default: 403 to everything) or tighten
	// (the client is held to tighten_to).
	Action string `yaml:"action" enum:"ban,tighten"`
	// TightenTo is the limit of a tightened client. Default 1 per 10s.
	TightenTo *RateLimit `yaml:"tighten_to"`
	// Allow lists CIDRs never banned (monitoring, partners).
	Allow []string `yaml:"allow"`
	// SessionCookie names the cookie that carries the application's
	// session: detectors may then count by session (keys: [session]) and
	// sanction one. Its value is hashed with a key derived from
	// state.master_key (or a per-process key without one) and never kept.
	SessionCookie string `yaml:"session_cookie"`
	// MaxClients bounds the state kept per kind: detector counters, bans,
	// accounts followed for credential stuffing, and clients the anomaly
	// baseline scores per interval. Past it, the entries least recently
	// used make room (counting is approximate under a flood of new
	// clients; memory stays bounded). Fixed at start. Default 100000.
	MaxClients int `yaml:"max_clients"`
	// BruteForce bans after Threshold 401 answers in Window (credential
	// stuffing, password guessing). Defaults: 10 per 1m.
	BruteForce Detector `yaml:"brute_force"`
	// Scanning bans after Threshold requests for paths no route serves
	// (404 router.not_found) in Window. Defaults: 50 per 1m.
	Scanning Detector `yaml:"scanning"`
	// Enumeration bans after Threshold 403/404 answers on routed requests
	// (probing ids, BOLA attempts) in Window. Defaults: 30 per 1m.
	Enumeration Detector `yaml:"enumeration"`
	// Fuzzing bans after Threshold requests refused as malformed or
	// hostile input (400 validation and framing refusals, 413, 415, WAF
	// refusals) in Window: a client trying input after input. Defaults:
	// 20 per 1m.
	Fuzzing Detector `yaml:"fuzzing"`
	// Anomaly learns the population's request rate and error share per
	// client and flags clients far above it.
	Anomaly *Anomaly `yaml:"anomaly"`
	// CredentialStuffing locks an account after failed logins (401) from
	// DistinctIPs client IPs within Window, on routes with abuse_account.
	// Defaults: 5 IPs per 10m.
	CredentialStuffing CredentialStuffing `yaml:"credential_stuffing"`
	// IdentitySpread reports an identity used from many client addresses
	// (a shared or stolen credential) and an address carrying many
	// identities (one client cycling accounts or tokens), as
	// abuse.identity_spread events. Defaults: 10 of either per 10m.
	IdentitySpread IdentitySpread `yaml:"identity_spread"`
	// Scraping reports (or bans) a caller reading more distinct objects
	// than Distinct within Window (successful GETs of distinct paths).
	// Defaults: 1000 per 10m, action flag.
	Scraping Scraping `yaml:"scraping"`
}

// Scraping configures the scraping detector.
type Scraping struct {
	// Disabled turns the detector off.
	Disabled bool `yaml:"disabled"`
	// Distinct is how many distinct paths one caller may read within
	// Window.
	Distinct int `yaml:"distinct"`
	// Window of counting.
	Window Duration `yaml:"window"`
	// Action is flag (an abuse.scraping event, the default) or ban (the
	// client is sanctioned like by the other detectors).
	Action string `yaml:"action" enum:"flag,ban"`
	// Learned lowers the threshold on each route to what its callers
	// usually read in a window, plus a margin. On unless disabled.
	Learned LearnedScraping `yaml:"learned"`
}

// LearnedScraping sets a route's scraping threshold from its own
// traffic: the distinct objects its callers read in a window, learned
// from every caller's finished window.
type LearnedScraping struct {
	// Disabled keeps the fixed threshold (Distinct) on every route.
	Disabled bool `yaml:"disabled"`
	// Z: a caller reading more than the route's callers usually do plus Z
	// standard deviations is scraping. Default 6.
	Z float64 `yaml:"z"`
	// Floor: the learned threshold is never below it. Default 50.
	Floor int `yaml:"floor"`
	// Windows: the callers' finished windows a route must have seen
	// before its learned threshold applies. Default 50.
	Windows int `yaml:"windows"`
}

// IdentitySpread configures the identity/address spread signal.
type IdentitySpread struct {
	// Disabled turns the signal off.
	Disabled bool `yaml:"disabled"`
	// Addresses is how many client addresses (IPv6 by prefix) one
	// identity may use within Window before it is reported.
	Addresses int `yaml:"addresses"`
	// Identities is how many identities one address may carry within
	// Window before it is reported.
	Identities int `yaml:"identities"`
	// Window of counting.
	Window Duration `yaml:"window"`
}

// CredentialStuffing configures account-level detection.
type CredentialStuffing struct {
	// Disabled turns the detector off.
	Disabled bool `yaml:"disabled"`
	// DistinctIPs that fail on one account before it is locked.
	DistinctIPs int `yaml:"distinct_ips"`
	// Window of counting.
	Window Duration `yaml:"window"`
}

// AbuseAccount says where a login request carries the account.
type AbuseAccount struct {
	// JSONField is a top-level field of a JSON body.
	JSONField string `yaml:"json_field"`
	// FormField is a field of an application/x-www-form-urlencoded body.
	FormField string `yaml:"form_field"`
}

// Anomaly configures the learned baseline.
type Anomaly struct {
	// Interval of counting. Default 10s.
	Interval Duration `yaml:"interval"`
	// Z is the outlier threshold in standard deviations. Default 6.
	Z float64 `yaml:"z"`
	// MinRequests in an interval before a client is scored. Default 50.
	MinRequests int `yaml:"min_requests"`
	// Action: log (default: a security event) or ban (the abuse section's
	// action: a ban or a tightened limit).
	Action string `yaml:"action" enum:"log,ban"`
	// Routes learns each route's request rate, error share and response
	// size per interval, by hour of the day, and reports intervals that
	// stand Z deviations above them (abuse.anomaly events naming the
	// route and its category). On unless disabled.
	Routes AnomalyRoutes `yaml:"routes"`
}

// AnomalyRoutes configures the per-route baselines.
type AnomalyRoutes struct {
	// Disabled turns them off.
	Disabled bool `yaml:"disabled"`
	// MinRequests in an interval before a route is scored. Default 20.
	MinRequests int `yaml:"min_requests"`
}

// Detector is a threshold of signals per client in a window.
type Detector struct {
	// Disabled turns the detector off.
	Disabled bool `yaml:"disabled"`
	// Threshold of signals that bans.
	Threshold int `yaml:"threshold"`
	// Window of counting.
	Window Duration `yaml:"window"`
	// SensitiveOnly counts only on routes marked sensitive.
	SensitiveOnly bool `yaml:"sensitive_only"`
	// SensitiveThreshold is the tighter threshold on routes marked
	// sensitive (login, payment), counted separately. Default: half of
	// Threshold.
	SensitiveThreshold int `yaml:"sensitive_threshold"`
	// Keys are what the detector counts by, each with its own count: ip
	// (the client address, IPv6 by prefix), identity (the authenticated
	// subject or API key consumer) and session (abuse.session_cookie).
	// The key whose count crosses the threshold is the one sanctioned.
	// Default: all three.
	Keys []string `yaml:"keys" enum:"ip,identity,session"`
}

// Validate is a route's input checks.
type Validate struct {
	// ContentTypes allowed for request bodies (415 otherwise), e.g.
	// [application/json].
	ContentTypes []string `yaml:"content_types"`
	// MaxHeaders bounds the number of header fields (431 beyond).
	MaxHeaders int `yaml:"max_headers"`
	// MaxQueryParams bounds the number of query parameters.
	MaxQueryParams int `yaml:"max_query_params"`
	// JSON checks JSON bodies: one valid UTF-8 value, no duplicate member
	// names, within the limits below.
	JSON *JSONLimits `yaml:"json"`
	// Multipart checks multipart/form-data bodies: well-formed parts, part
	// count and size, file names without paths, file types.
	Multipart *MultipartLimits `yaml:"multipart"`
}

// MultipartLimits bound a multipart/form-data body.
type MultipartLimits struct {
	// MaxParts in one body. Default 100.
	MaxParts int `yaml:"max_parts"`
	// MaxPartBytes bounds one part (0: only the route's body limit).
	MaxPartBytes ByteSize `yaml:"max_part_bytes"`
	// FileTypes are the media types a file part may declare (any when
	// empty), e.g. [image/png, image/jpeg, application/pdf].
	FileTypes []string `yaml:"file_types"`
}

// JSONLimits bound a JSON body.
type JSONLimits struct {
	// MaxDepth of nesting. Default 32.
	MaxDepth int `yaml:"max_depth"`
	// MaxElements in total. Default 10000.
	MaxElements int `yaml:"max_elements"`
	// MaxStringLength in bytes (0: no limit beyond the body limit).
	MaxStringLength int `yaml:"max_string_length"`
	// AllowDuplicateNames lets a JSON object name one member twice. Off by
	// default, and on every route with openapi even without this section:
	// a schema validator sees the last copy of a member while a service
	// may read the first, so {"qty":1000,"qty":1} would pass a check of
	// qty <= 10. rampart check warns when it is on.
	AllowDuplicateNames bool `yaml:"allow_duplicate_names"`
}

// DecisionFields lists client-controlled fields that must not steer
// decisions.
type DecisionFields struct {
	// Headers removed from every request (names; case and '_' ignored).
	// Default: X-Plan, X-Tier, X-Premium, X-Is-Admin, X-Admin, X-Role,
	// X-Roles, X-Scopes, X-Account-Type, X-Debug.
	Headers []string `yaml:"headers"`
	// QueryParams removed from every request's query string. Default:
	// is_admin, admin, role, roles, plan, tier, debug.
	QueryParams []string `yaml:"query_params"`
	// Refuse answers 400 validate.decision_field instead of removing.
	Refuse bool `yaml:"refuse"`
}

// OpenAPI attaches an OpenAPI 3.0 or 3.1 document to a route.
type OpenAPI struct {
	// Spec is the document's file (YAML or JSON), relative to the config
	// file's directory. Re-read on reload.
	Spec string `yaml:"spec" required:"true"`
	// Undocumented is what happens to an operation the document does not
	// declare: refuse (default; 404/405 validate.undocumented) or monitor
	// (passed and logged as shadow traffic).
	Undocumented string `yaml:"undocumented" enum:"refuse,monitor"`
	// Strict reports undeclared body properties, query parameters and
	// headers even where the document allows them (additionalProperties).
	Strict bool `yaml:"strict"`
	// Response validates the service's responses: off (default), log, or
	// enforce (a non-conforming response becomes 502 validate.response).
	Response string `yaml:"response" enum:"off,log,enforce"`
	// MaxResponseBytes bounds the response held for validation; larger
	// responses stream through unvalidated (logged). Default 1MiB.
	MaxResponseBytes ByteSize `yaml:"max_response_bytes"`
}

// WAF configures Coraza with the OWASP Core Rule Set v4 on a route.
type WAF struct {
	// Paranoia is the CRS paranoia level, 1 (default) to 4.
	Paranoia int `yaml:"paranoia"`
	// AnomalyThreshold is the inbound anomaly score that blocks. Default 5
	// (one critical rule).
	AnomalyThreshold int `yaml:"anomaly_threshold"`
	// DetectionOnly logs matches and blocks nothing.
	DetectionOnly bool `yaml:"detection_only"`
	// ExcludeRules are CRS rule ids removed for this route (false
	// positives).
	ExcludeRules []int `yaml:"exclude_rules"`
	// ExcludeTags are CRS rule tags removed for this route.
	ExcludeTags []string `yaml:"exclude_tags"`
	// BodyLimit bounds the body bytes inspected. Default 128KiB.
	BodyLimit ByteSize `yaml:"body_limit"`
	// MaxArgs bounds the arguments (query parameters, form fields, JSON
	// leaves) of an inspected request; more are refused with 403
	// waf.limits. Every argument costs every CRS rule an evaluation, so
	// this bounds the WAF's time per request. Default 255.
	MaxArgs int `yaml:"max_args"`
}

// Serves reports whether the route matches method and a path template
// (a {parameter} segment, in either, matches any one segment): for the
// tools that compare documents with routes (lint, docs, discovery).
func (r Route) Serves(method, path string) bool {
	if len(r.Methods) > 0 && !slices.ContainsFunc(r.Methods, func(m string) bool { return strings.EqualFold(m, method) }) {
		return false
	}
	if r.Prefix != "" {
		p := strings.TrimSuffix(r.Prefix, "/")
		return r.Prefix == "/" || path == p || strings.HasPrefix(path, p+"/")
	}
	a, b := strings.Split(strings.Trim(r.Path, "/"), "/"), strings.Split(strings.Trim(path, "/"), "/")
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !isTemplateParam(a[i]) && !isTemplateParam(b[i]) {
			return false
		}
	}
	return true
}

func isTemplateParam(seg string) bool {
	return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}")
}
