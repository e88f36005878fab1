package proxy

import (
	"net/http"
	"strings"
)

// spoofable are request headers a client could use to impersonate the
// gateway's view of the request: forwarding chains, "real IP" variants and
// URL/method overrides that some frameworks honour. The gateway removes them
// from every client request and sets its own verified values where it has
// them. Matching is on the name with '_' read as '-', so X_Forwarded_For and
// x_real_ip are removed too (servers such as PHP and WSGI map both spellings
// to the same variable).
var spoofable = map[string]bool{
	"forwarded":                true,
	"x-forwarded-for":          true,
	"x-forwarded-host":         true,
	"x-forwarded-proto":        true,
	"x-forwarded-port":         true,
	"x-forwarded-prefix":       true,
	"x-forwarded-server":       true,
	"x-forwarded-ssl":          true,
	"x-forwarded-scheme":       true,
	"x-forwarded-uri":          true,
	"x-real-ip":                true,
	"x-original-url":           true,
	"x-original-uri":           true,
	"x-rewrite-url":            true,
	"x-original-host":          true,
	"true-client-ip":           true,
	"x-client-ip":              true,
	"x-cluster-client-ip":      true,
	"cf-connecting-ip":         true,
	"fastly-client-ip":         true,
	"x-envoy-external-address": true,
	"x-http-method-override":   true,
	"x-http-method":            true,
	"x-method-override":        true,
	"x-request-id":             true,
	"http2-settings":           true,
}

// stripSpoofable removes every spoofable header, in any spelling, from h.
func stripSpoofable(h http.Header) {
	for k := range h {
		if isSpoofable(k) {
			delete(h, k)
		}
	}
}

// FoldHeaderName appends name in lower case with '_' as '-' to dst: the
// spelling under which a header is compared with a list, since servers and
// frameworks may treat X_User_Id as X-User-Id. With dst on the caller's
// stack, nothing is allocated.
func FoldHeaderName(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		dst = append(dst, c)
	}
	return dst
}

func isSpoofable(name string) bool {
	// Fast reject: every entry starts with x-, f, t, c or h.
	if len(name) < 9 {
		return false
	}
	switch name[0] {
	case 'X', 'x', 'F', 'f', 'T', 't', 'C', 'c', 'H', 'h':
	default:
		return false
	}
	var buf [40]byte
	if len(name) > len(buf) {
		if strings.HasPrefix(strings.ToLower(name), "x-envoy-") {
			return true
		}
		return false
	}
	b := FoldHeaderName(buf[:0], name)
	if spoofable[string(b)] {
		return true
	}
	return strings.HasPrefix(string(b), "x-envoy-")
}

// stripUpgrade enforces the upgrade allow-list on the inbound request:
// only "Upgrade: websocket" survives. Go's ReverseProxy passes any upgrade
// token through, and "Upgrade: h2c" would let an h2c-capable service switch
// the connection to HTTP/2 and take every later stream past the gateway.
func stripUpgrade(h http.Header) {
	delete(h, "Http2-Settings")
	up, ok := h["Upgrade"]
	if !ok {
		return
	}
	if len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket") && connectionHas(h, "upgrade") {
		return
	}
	delete(h, "Upgrade")
	// Remove the "upgrade" token from Connection so that no upgrade is
	// re-requested from the service.
	if cs, ok := h["Connection"]; ok {
		var keep []string
		for _, c := range cs {
			for _, tok := range strings.Split(c, ",") {
				if tok = strings.TrimSpace(tok); tok != "" && !strings.EqualFold(tok, "upgrade") {
					keep = append(keep, tok)
				}
			}
		}
		if len(keep) == 0 {
			delete(h, "Connection")
		} else {
			h["Connection"] = []string{strings.Join(keep, ", ")}
		}
	}
}

func connectionHas(h http.Header, token string) bool {
	for _, c := range h["Connection"] {
		for _, tok := range strings.Split(c, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}

// IsWebSocket reports whether r asks for a WebSocket upgrade.
func IsWebSocket(r *http.Request) bool {
	up := r.Header["Upgrade"]
	return len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket") && connectionHas(r.Header, "upgrade")
}
