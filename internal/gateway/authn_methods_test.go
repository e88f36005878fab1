package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crypto/rand"

	"github.com/rampart-gw/rampart/internal/authn"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/testpki"
)

// TestAPIKeys: a key made like `rampart keys create` opens the route; a
// key in the URL, a wrong key of the right length, an unknown prefix and
// an expired key do not; the store never holds a usable key.
func TestAPIKeys(t *testing.T) {
	secret := "api-key-server-secret-0123456789abcdef"
	t.Setenv("RAMPART_TEST_APIKEY_SECRET", secret)
	dir := t.TempDir()
	store := filepath.Join(dir, "keys.json")
	now := time.Now()
	good, rec, err := authn.NewAPIKey([]byte(secret), "billing-service", []string{"orders:read"}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	expired, rec2, _ := authn.NewAPIKey([]byte(secret), "old-service", nil, time.Millisecond, now.Add(-time.Hour))
	if err := authn.SaveAPIKeys(store, &authn.APIKeyFile{Keys: []authn.APIKeyRecord{rec, rec2}}, nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(store)
	if strings.Contains(string(raw), strings.SplitN(good, "_", 3)[2]) {
		t.Fatal("key store holds the key's secret part")
	}
	up := newUpstream(t, nil)
	cfg := `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
authn:
  api_keys:
    secret: ${env:RAMPART_TEST_APIKEY_SECRET}
    file: ` + store + `
routes:
  - id: reports
    prefix: /reports
    upstream: svc
    auth: {api_key: true}
    authorize: any_authenticated
`
	_, addr := startGateway(t, cfg)
	send := func(header, query string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/reports"+query, nil)
		if header != "" {
			req.Header.Set("X-Api-Key", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := send(good, ""); c != 200 {
		t.Fatalf("valid key: %d", c)
	}
	wrong := good[:len(good)-4] + "AAAA"
	if wrong == good {
		wrong = good[:len(good)-4] + "BBBB"
	}
	unknown := "rpk_000000000000_" + strings.SplitN(good, "_", 3)[2]
	for name, c := range map[string]int{
		"key in the URL":                send("", "?api_key="+good),
		"key in the URL and header":     send(good, "?apikey="+good),
		"wrong key of the right length": send(wrong, ""),
		"unknown prefix":                send(unknown, ""),
		"expired":                       send(expired, ""),
		"garbage":                       send("hunter2", ""),
		"none":                          send("", ""),
	} {
		if c != 401 {
			t.Errorf("%s: %d, want 401", name, c)
		}
	}
	if n := len(up.received()); n != 1 {
		t.Fatalf("upstream received %d requests, want 1", n)
	}
}

// TestSensitiveRefusesAPIKeyOnly is the NIST SP 800-204 MS-SS-1 check.
func TestSensitiveRefusesAPIKeyOnly(t *testing.T) {
	t.Setenv("RAMPART_TEST_APIKEY_SECRET", "api-key-server-secret-0123456789abcdef")
	base := `version: 1
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: [{name: svc, targets: [{url: "https://svc.internal"}]}]
authn:
  api_keys: {secret: "${env:RAMPART_TEST_APIKEY_SECRET}", file: /tmp/keys.json}
  jwt: [{name: idp, issuer: "https://idp.test", audiences: [a], algorithms: [ES256], jwks_url: "https://idp.test/jwks"}]
routes:
  - id: admin
    prefix: /admin
    upstream: svc
    sensitive: true
`
	bad := map[string]string{
		"api key only":   "    auth: {api_key: true}\n",
		"api key any_of": "    auth: {api_key: true, jwt: [idp], combine: any_of}\n",
	}
	for name, auth := range bad {
		if _, err := config.Parse([]byte(base+auth), "s.yaml"); err == nil || !strings.Contains(err.Error(), "sensitive") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := config.Parse([]byte(base+"    auth: {api_key: true, jwt: [idp], combine: all_of}\n    authorize: any_authenticated\n"), "s.yaml"); err != nil {
		t.Errorf("all_of with a token: %v", err)
	}
}

// TestMTLS: client certificates verified against the listener's client
// CA; revoked (serial list and CRL) and untrusted certificates refused;
// all_of with a JWT requires both.
func TestMTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA := testpki.NewCA(t, "server-ca")
	clientCA := testpki.NewCA(t, "client-ca")
	otherCA := testpki.NewCA(t, "other-ca")
	cert, key := serverCA.Server(t).WriteFiles(t, dir, "server")
	good := clientCA.Client(t, "spiffe-less-client")
	revokedBySerial := clientCA.Client(t, "revoked-serial")
	revokedByCRL := clientCA.Client(t, "revoked-crl")
	foreign := otherCA.Client(t, "foreign")
	serial := revokedBySerial.TLS.Leaf
	if serial == nil {
		serial, _ = x509.ParseCertificate(revokedBySerial.TLS.Certificate[0])
	}
	crlLeaf, _ := x509.ParseCertificate(revokedByCRL.TLS.Certificate[0])
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: crlLeaf.SerialNumber, RevocationTime: time.Now()}},
	}, clientCA.Cert, clientCA.Key)
	if err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, "clients.crl")
	os.WriteFile(crlFile, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crlDER}), 0o600)
	p := newIDP(t, nil)
	p.addKey("k1", true)
	up := newUpstream(t, nil)
	cfg := `version: 1
listeners:
  - name: mtls
    address: 127.0.0.1:0
    tls:
      cert_file: ` + cert + `
      key_file: ` + key + `
      client_ca_file: ` + clientCA.WriteCA(t, dir, "client-ca") + `
      client_crl_file: ` + crlFile + `
      client_revoked_serials: ["` + serial.SerialNumber.Text(16) + `"]
upstreams: [{name: svc, allow_plaintext: true, targets: [{url: "http://` + up.hostPort() + `"}]}]
authn:
  jwt:
    - name: idp
      issuer: ` + p.srv.URL + `
      audiences: [orders-api]
      algorithms: [ES256]
      jwks_url: ` + p.srv.URL + `/jwks
      allow_plaintext: true
routes:
  - id: machine
    prefix: /machine
    upstream: svc
    auth: {mtls: true}
    authorize: any_authenticated
  - id: both
    prefix: /both
    upstream: svc
    auth: {mtls: true, jwt: [idp], combine: all_of}
    authorize: any_authenticated
`
	_, addr := startGateway(t, cfg)
	client := func(l *testpki.Leaf) *http.Client {
		c := &tls.Config{RootCAs: serverCA.Pool()}
		if l != nil {
			c.Certificates = []tls.Certificate{l.TLS}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: c}}
	}
	get := func(c *http.Client, path, token string) (int, error) {
		req, _ := http.NewRequest("GET", "https://"+addr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	tok := p.token("k1", "alice", time.Minute)
	cases := []struct {
		name  string
		leaf  *testpki.Leaf
		path  string
		token string
		want  int
	}{
		{"valid certificate", good, "/machine/x", "", 200},
		{"no certificate", nil, "/machine/x", "", 401},
		{"revoked by serial", revokedBySerial, "/machine/x", "", 401},
		{"revoked by CRL", revokedByCRL, "/machine/x", "", 401},
		{"all_of: certificate and token", good, "/both/x", tok, 200},
		{"all_of: certificate only", good, "/both/x", "", 401},
		{"all_of: token only", nil, "/both/x", tok, 401},
	}
	for _, c := range cases {
		got, err := get(client(c.leaf), c.path, c.token)
		if err != nil || got != c.want {
			t.Errorf("%s: %d %v, want %d", c.name, got, err, c.want)
		}
	}
	// A certificate from another CA, presented even though the server
	// did not ask for that CA, fails the handshake itself.
	forced := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverCA.Pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign.TLS, nil }}}}
	if code, err := get(forced, "/machine/x", ""); err == nil {
		t.Errorf("untrusted client certificate: got an answer (%d), want a failed handshake", code)
	}
	if n := len(up.received()); n != 2 {
		t.Fatalf("upstream received %d requests, want 2", n)
	}
}
