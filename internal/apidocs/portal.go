package apidocs

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// portal holds the docs portal: our page and script, and the vendored
// Swagger UI bundle and stylesheet, gzipped (scripts/vendor-swagger-ui.sh).
//
//go:embed portal
var portal embed.FS

// portalCSP lets the page run only its own scripts and styles, talk only
// to its own origin (the gateway: "Try it out" goes through it), and be
// framed by no one.
const portalCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Routes are the handlers of the published document and its portal under
// prefix (docs.path), by exact path: PREFIX/openapi.json, .yaml, the
// portal page at PREFIX/ and its assets.
func Routes(d *Document, prefix, methodNotAllowed string) map[string]pipeline.Handler {
	out := map[string]pipeline.Handler{
		prefix + "/openapi.json": Serve(d.JSON, "application/json", methodNotAllowed),
		prefix + "/openapi.yaml": Serve(d.YAML, "application/yaml", methodNotAllowed),
		prefix:                   redirect(prefix+"/", methodNotAllowed),
	}
	for name, ctype := range map[string]string{
		"index.html": "text/html; charset=utf-8", "portal.js": "text/javascript; charset=utf-8", "portal.css": "text/css; charset=utf-8",
		"swagger-ui-bundle.js.gz": "text/javascript; charset=utf-8", "swagger-ui.css.gz": "text/css; charset=utf-8",
	} {
		body, err := portal.ReadFile("portal/" + name)
		if err != nil {
			panic("docs portal asset " + name + ": " + err.Error()) // embedded: a build error
		}
		path := prefix + "/" + strings.TrimSuffix(name, ".gz")
		if name == "index.html" {
			path = prefix + "/"
		}
		out[path] = asset(body, ctype, strings.HasSuffix(name, ".gz"), methodNotAllowed)
	}
	return out
}

// asset serves an embedded file: gzipped files as they are to clients
// that accept gzip, decompressed once for the others.
func asset(body []byte, ctype string, gz bool, methodNotAllowed string) pipeline.Handler {
	var plain []byte
	var once sync.Once
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			e := pipeline.Deny(http.StatusMethodNotAllowed, methodNotAllowed, "method not allowed")
			e.Header = http.Header{"Allow": {"GET, HEAD"}}
			return e
		}
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Content-Security-Policy", portalCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		out := body
		if gz {
			h.Set("Vary", "Accept-Encoding")
			if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				h.Set("Content-Encoding", "gzip")
			} else {
				once.Do(func() { plain = gunzip(body) })
				out = plain
			}
		}
		if r.Method == http.MethodGet {
			_, _ = w.Write(out)
		}
		return nil
	}
}

func gunzip(b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	out, _ := io.ReadAll(zr)
	return out
}

// redirect sends PREFIX to PREFIX/ (the page's relative asset paths need
// the slash).
func redirect(to, methodNotAllowed string) pipeline.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			e := pipeline.Deny(http.StatusMethodNotAllowed, methodNotAllowed, "method not allowed")
			e.Header = http.Header{"Allow": {"GET, HEAD"}}
			return e
		}
		http.Redirect(w, r, to, http.StatusMovedPermanently)
		return nil
	}
}
