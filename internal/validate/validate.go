// Package validate checks request input at the gateway before it reaches
// a service: content types, header and query parameter counts, and JSON
// bodies (nesting depth, element and string sizes, duplicate keys, UTF-8).
package validate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Decision codes.
const (
	CodeContentType = "validate.content_type"
	CodeJSON        = "validate.json"
	CodeLimits      = "validate.limits"
	CodeMultipart   = "validate.multipart"
)

// Options are a route's input limits. Zero values disable a check.
type Options struct {
	// ContentTypes allowed for requests with a body (media types, e.g.
	// application/json); others get 415.
	ContentTypes []string
	// MaxHeaders bounds the number of header fields.
	MaxHeaders int
	// MaxQueryParams bounds the number of query parameters.
	MaxQueryParams int
	// JSON turns on JSON body checks for JSON content types.
	JSON bool
	// MaxDepth of JSON nesting.
	MaxDepth int
	// MaxElements bounds the members and items of a JSON body in total.
	MaxElements int
	// MaxStringLength bounds JSON strings (bytes).
	MaxStringLength int
	// AllowDuplicateNames lets an object name a member twice (refused by
	// default, at any depth).
	AllowDuplicateNames bool
	// Multipart turns on multipart/form-data checks.
	Multipart bool
	// MaxParts bounds the parts of a multipart body.
	MaxParts int
	// MaxPartBytes bounds one part's content (0: only the body limit).
	MaxPartBytes int64
	// PartTypes, when set, are the media types a file part may declare.
	PartTypes []string
}

// New returns the validate stage (nil when nothing is checked).
func New(o Options) pipeline.Middleware {
	if len(o.ContentTypes) == 0 && o.MaxHeaders == 0 && o.MaxQueryParams == 0 && !o.JSON && !o.Multipart {
		return nil
	}
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			if err := o.checkCounts(r); err != nil {
				return err
			}
			if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
				return next(w, r)
			}
			if err := o.checkBody(r); err != nil {
				return err
			}
			return next(w, r)
		}
	}
}

// checkCounts bounds the header fields and query parameters.
func (o Options) checkCounts(r *http.Request) error {
	if o.MaxHeaders > 0 {
		n := 0
		for _, v := range r.Header {
			n += len(v)
		}
		if n > o.MaxHeaders {
			return pipeline.Deny(http.StatusRequestHeaderFieldsTooLarge, CodeLimits, "too many header fields")
		}
	}
	if o.MaxQueryParams > 0 && r.URL.RawQuery != "" && strings.Count(r.URL.RawQuery, "&")+1 > o.MaxQueryParams {
		return pipeline.Deny(http.StatusBadRequest, CodeLimits, "too many query parameters")
	}
	return nil
}

// checkBody checks the body's media type and, for JSON and multipart
// bodies, reads it whole (bounded by the body_limit stage before this
// one), checks it and puts it back for the next stage.
func (o Options) checkBody(r *http.Request) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if len(o.ContentTypes) > 0 && (err != nil || !allowed(o.ContentTypes, mt)) {
		return pipeline.Deny(http.StatusUnsupportedMediaType, CodeContentType, "unsupported content type")
	}
	var check func([]byte) error
	switch {
	case o.JSON && (mt == "application/json" || strings.HasSuffix(mt, "+json")):
		check = func(b []byte) error {
			if err := checkJSON(b, o); err != nil {
				return pipeline.DenyErr(http.StatusBadRequest, CodeJSON, "invalid JSON body", err)
			}
			return nil
		}
	case o.Multipart && mt == "multipart/form-data":
		check = func(b []byte) error {
			if err := checkMultipart(b, params["boundary"], o); err != nil {
				return pipeline.DenyErr(http.StatusBadRequest, CodeMultipart, "invalid multipart body", err)
			}
			return nil
		}
	default:
		return nil
	}
	body, err := pipeline.ReadBody(r)
	if err != nil {
		return pipeline.BodyReadError(err)
	}
	return check(body)
}

// checkMultipart parses a multipart/form-data body completely: a
// boundary, well-formed parts, at most MaxParts of them, none larger than
// MaxPartBytes, file names without path components, and file parts of
// the allowed media types.
func checkMultipart(body []byte, boundary string, o Options) error {
	if boundary == "" {
		return errors.New("no boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for n := 1; ; n++ {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			if n == 1 {
				return errors.New("no parts")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("part %d: %w", n, err)
		}
		if o.MaxParts > 0 && n > o.MaxParts {
			return fmt.Errorf("more than %d parts", o.MaxParts)
		}
		disp, dparams, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if err != nil || disp != "form-data" || dparams["name"] == "" {
			return fmt.Errorf("part %d: missing or invalid Content-Disposition", n)
		}
		if fn, ok := dparams["filename"]; ok {
			if fn == "" || strings.ContainsAny(fn, "/\\\x00") || fn == "." || fn == ".." {
				return fmt.Errorf("part %d: file name %q", n, fn)
			}
			if len(o.PartTypes) > 0 {
				pt, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
				if err != nil || !allowed(o.PartTypes, pt) {
					return fmt.Errorf("part %d: file type not allowed", n)
				}
			}
		}
		limit := int64(len(body))
		if o.MaxPartBytes > 0 {
			limit = o.MaxPartBytes
		}
		size, err := io.Copy(io.Discard, io.LimitReader(part, limit+1))
		if err != nil {
			return fmt.Errorf("part %d: %w", n, err)
		}
		if size > limit {
			return fmt.Errorf("part %d larger than %d bytes", n, limit)
		}
	}
}

func allowed(list []string, mt string) bool {
	for _, a := range list {
		if strings.EqualFold(a, mt) {
			return true
		}
	}
	return false
}

// checkJSON walks the document once with a streaming tokenizer
// (jsontext, the encoding/json/v2 tokenizer: duplicate member names and
// invalid UTF-8 are errors in its default mode): exactly one value, within
// the depth, element and string limits.
func checkJSON(b []byte, o Options) error {
	// Security: duplicate member names are refused unless the route opts
	// out: a schema validator and a service may read different copies.
	dec := jsontext.NewDecoder(bytes.NewReader(b), jsontext.AllowDuplicateNames(o.AllowDuplicateNames))
	elements := 0
	done := false // one complete top-level value was read
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF {
			if !done {
				return errors.New("unterminated document")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("syntax: %v", err)
		}
		if done {
			return errors.New("more than one JSON value")
		}
		depth := dec.StackDepth()
		switch kind := tok.Kind(); kind {
		case '{', '[':
			if o.MaxDepth > 0 && depth > o.MaxDepth {
				return fmt.Errorf("nesting deeper than %d", o.MaxDepth)
			}
		case '}', ']':
			done = depth == 0
			continue
		case '"':
			if o.MaxStringLength > 0 && len(tok.String()) > o.MaxStringLength {
				return fmt.Errorf("string longer than %d bytes", o.MaxStringLength)
			}
			// In an object, names and values alternate: after a name the
			// object's token count is odd.
			if k, n := dec.StackIndex(depth); k == '{' && n%2 == 1 {
				continue
			}
		}
		elements++
		if o.MaxElements > 0 && elements > o.MaxElements {
			return fmt.Errorf("more than %d elements", o.MaxElements)
		}
		if depth == 0 {
			done = true
		}
	}
}
