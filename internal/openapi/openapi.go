// Package openapi validates requests (and optionally responses) against an
// OpenAPI 3.0 or 3.1 document, and refuses operations the document does
// not declare. Parsing and schema validation are kin-openapi's (JSON
// Schema 2020-12 for 3.1 documents); this package matches paths under
// the document's servers, maps findings to stable decisions and keeps
// internals (schema locations, values) out of client responses.
package openapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Options choose what a route enforces with its spec.
type Options struct {
	// Monitor passes undocumented operations and logs them as shadow
	// traffic instead of refusing them.
	Monitor bool
	// Strict refuses undeclared object properties even where the schema
	// would allow them (additionalProperties unset), and undeclared query
	// parameters.
	Strict bool
	// Response is "off", "log" (validate responses, log failures) or
	// "enforce" (a failing response becomes 502 validate.response).
	Response string
	// MaxResponseBytes bounds the response body buffered for validation;
	// a larger response is passed unvalidated and logged.
	MaxResponseBytes int64
	// Events receives the findings that do not refuse the request:
	// shadow traffic in monitor mode (validate.undocumented) and logged
	// response findings (validate.response).
	Events pipeline.Events
}

// Spec is a compiled OpenAPI document.
type Spec struct {
	doc    *openapi3.T // as routes present it to the validator (see Compile)
	bases  []string    // the servers' base paths ("" for the root)
	paths  []pathEntry // every path template, the most literal first
	vopts  *openapi3filter.Options
	opts   Options
	events pipeline.Events
}

// Compile parses and checks an OpenAPI 3.0/3.1 document. References to
// other files are resolved under dir (empty: none allowed); remote
// references are never fetched.
func Compile(data []byte, dir string, o Options) (*Spec, error) {
	doc, err := load(data, dir)
	if err != nil {
		return nil, err
	}
	if o.Strict {
		tightenDocument(doc)
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 1 << 20
	}
	events := o.Events
	if events == nil {
		events = pipeline.NoEvents{}
	}
	vopts := &openapi3filter.Options{
		// Authentication is the gateway's job (authenticate stage); the
		// spec's security requirements are not checked twice.
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		MultiError:         true,
		// The request is forwarded as the client sent it: defaults are
		// never written into it.
		SkipSettingDefaults: true,
	}
	routeDoc := doc
	if doc.IsOpenAPI31OrLater() && !usesJSONSchema2020(doc) {
		// kin-openapi validates a 3.1 document with a JSON Schema 2020-12
		// validator that it compiles anew for every value (~20x the
		// cost). A document using none of the keywords only that
		// validator knows is validated by the built-in one, which reads
		// 3.1 types (["string", "null"]) and numeric exclusive bounds.
		cp := *doc
		cp.OpenAPI = "3.0.3"
		routeDoc = &cp
	}
	bases, err := serverBases(doc)
	if err != nil {
		return nil, err
	}
	return &Spec{doc: routeDoc, bases: bases, paths: compilePaths(doc), vopts: vopts, opts: o, events: events}, nil
}

// load parses, resolves and checks the document.
func load(data []byte, dir string) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = dir != ""
	loader.ReadFromURIFunc = localFiles(dir)
	doc, err := loader.LoadFromDataWithPath(data, baseURL(dir))
	if err != nil {
		return nil, fmt.Errorf("not an OpenAPI document: %w", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		return nil, fmt.Errorf("OpenAPI version %q: use 3.0 or 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("invalid OpenAPI document: %s", clipDoc(err.Error()))
	}
	return doc, nil
}

// clipDoc bounds a document error to its first lines.
func clipDoc(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 3 {
		lines = append(lines[:3], fmt.Sprintf("and %d more lines", len(lines)-3))
	}
	return strings.Join(lines, "; ")
}

// Middleware returns the route's OpenAPI stage.
func (s *Spec) Middleware() pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			input, err := s.validateRequest(r)
			if err != nil {
				return err
			}
			// A passed undocumented operation (monitor mode) has no
			// response schema to check against.
			if input == nil || s.opts.Response == "" || s.opts.Response == "off" {
				return next(w, r)
			}
			return s.checkResponse(w, r, input, next)
		}
	}
}

// checkRequest validates r; it returns the refusal, or nil.
func (s *Spec) checkRequest(r *http.Request) error {
	_, err := s.validateRequest(r)
	return err
}

// validateRequest validates r: the refusal, or nil and the validation
// input a response is checked with (nil for an undocumented operation
// passed in monitor mode).
func (s *Spec) validateRequest(r *http.Request) (*openapi3filter.RequestValidationInput, error) {
	route, params, status := s.match(r)
	if status != 0 {
		return nil, s.undocumented(r, status)
	}
	if err := s.checkContentType(r, route.Operation); err != nil {
		return nil, err
	}
	if s.opts.Strict {
		if err := undeclaredQuery(r, route); err != nil {
			return nil, err
		}
	}
	input := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: s.vopts}
	err := openapi3filter.ValidateRequest(r.Context(), input)
	if err == nil {
		return input, nil
	}
	fields := Fields(err)
	detail := "the request does not match the API's schema"
	if len(fields) > 0 {
		detail = fields[0].Pointer + ": " + fields[0].Detail
	}
	// The logged cause names the fields and reasons only: the validator's
	// own message quotes the values, which may be secrets.
	d := pipeline.DenyErr(http.StatusBadRequest, "validate.schema", detail, errors.New(summary(fields)))
	d.Fields = fields
	return nil, d
}

// summary renders field errors on one line, for logs.
func summary(fields []pipeline.Field) string {
	var parts []string
	for _, f := range fields {
		parts = append(parts, f.Pointer+" "+f.Detail)
	}
	return strings.Join(parts, "; ")
}

// undocumented refuses (or, in monitor mode, reports and passes) a
// request for a path (404) or method (405) the document does not declare.
func (s *Spec) undocumented(r *http.Request, status int) error {
	if s.opts.Monitor {
		s.event(r, "validate.undocumented", "", map[string]string{"mode": "monitor"})
		return nil
	}
	if status == http.StatusNotFound {
		return pipeline.Deny(status, "validate.undocumented", "the API does not document this path")
	}
	d := pipeline.Deny(status, "validate.undocumented", "the API does not document this method on this path")
	if allow := s.allowed(r); allow != "" {
		d.Header = http.Header{"Allow": {allow}} // RFC 9110 §15.5.6
	}
	return d
}

// checkContentType refuses a body of a media type the operation does not
// accept (415).
func (s *Spec) checkContentType(r *http.Request, op *openapi3.Operation) error {
	if op.RequestBody == nil || op.RequestBody.Value == nil || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	if op.RequestBody.Value.GetMediaType(r.Header.Get("Content-Type")) == nil {
		return pipeline.Deny(http.StatusUnsupportedMediaType, "validate.content_type", "the API does not accept this content type")
	}
	return nil
}

// undeclaredQuery refuses query parameters the operation does not
// declare (strict mode).
func undeclaredQuery(r *http.Request, route *routers.Route) error {
	declared := map[string]bool{}
	for _, ps := range []openapi3.Parameters{route.PathItem.Parameters, route.Operation.Parameters} {
		for _, p := range ps {
			if p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
				declared[p.Value.Name] = true
			}
		}
	}
	for name := range r.URL.Query() {
		if !declared[name] {
			d := pipeline.Deny(http.StatusBadRequest, "validate.schema", "/query/"+escape(name)+": undeclared query parameter")
			d.Fields = []pipeline.Field{{Pointer: "/query/" + escape(name), Detail: "undeclared query parameter"}}
			return d
		}
	}
	return nil
}

// Fields turns validation findings into client-safe field errors: a
// location ("body", "query", "header", "path", "cookie", "response") and
// JSON pointer, and the reason. Schema locations and values stay out.
func Fields(err error) []pipeline.Field {
	var out []pipeline.Field
	for _, e := range flatten(err) {
		var re *openapi3filter.RequestError
		var rs *openapi3filter.ResponseError
		switch {
		case errors.As(e, &re) && re.Parameter != nil:
			ptr := "/" + re.Parameter.In + "/" + escape(re.Parameter.Name)
			out = appendSchemaFields(out, ptr, false, re.Err, re.Reason)
		case errors.As(e, &re):
			out = appendSchemaFields(out, "/body", true, re.Err, re.Reason)
		case errors.As(e, &rs):
			out = appendSchemaFields(out, "/response", true, rs.Err, rs.Reason)
		default:
			out = append(out, pipeline.Field{Pointer: "", Detail: clip(e.Error())})
		}
		if len(out) >= 10 {
			return out[:10]
		}
	}
	return out
}

// appendSchemaFields adds a finding's schema errors under base (with
// their JSON pointer inside a body), or the finding's reason.
func appendSchemaFields(out []pipeline.Field, base string, inside bool, err error, reason string) []pipeline.Field {
	found := false
	for _, e := range flatten(err) {
		var se *openapi3.SchemaError
		if !errors.As(e, &se) {
			continue
		}
		found = true
		ptr := base
		if inside {
			ptr += pointer(se.JSONPointer())
		}
		out = append(out, pipeline.Field{Pointer: ptr, Detail: clip(se.Reason)})
	}
	if !found {
		if reason == "" && err != nil {
			reason = err.Error()
		}
		out = append(out, pipeline.Field{Pointer: base, Detail: clip(reason)})
	}
	return out
}

// flatten lists the errors of a (nested) MultiError, or err itself.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	// A type assertion, not errors.As: a MultiError's As matches any of
	// its elements, which would skip the RequestError around them.
	if me, ok := err.(openapi3.MultiError); ok {
		var out []error
		for _, e := range me {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// clip bounds a reason: some quote the offending value, and an error
// response must not reflect a large payload back.
func clip(s string) string {
	const max = 160
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

// pointer renders path segments as an RFC 6901 JSON pointer.
func pointer(segs []string) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(escape(s))
	}
	return b.String()
}

func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// checkResponse buffers the upstream response, validates it and then
// writes it (or, enforcing, refuses it).
func (s *Spec) checkResponse(w http.ResponseWriter, r *http.Request, input *openapi3filter.RequestValidationInput, next pipeline.Handler) error {
	buf := &bufferedWriter{dst: w, header: http.Header{}, limit: s.opts.MaxResponseBytes}
	if err := next(buf, r); err != nil {
		return err
	}
	if buf.overflow {
		s.event(r, "validate.response", "response larger than max_response_bytes: not validated", map[string]string{"upstream_status": strconv.Itoa(buf.status)})
		return nil
	}
	err := openapi3filter.ValidateResponse(r.Context(), &openapi3filter.ResponseValidationInput{RequestValidationInput: input,
		Status: buf.status, Header: buf.header, Body: io.NopCloser(bytes.NewReader(buf.body.Bytes())), Options: s.vopts})
	if err != nil {
		findings := fmt.Sprintf("response %d: %s", buf.status, summary(Fields(err)))
		if s.opts.Response == "enforce" {
			return pipeline.DenyErr(http.StatusBadGateway, "validate.response", "the service's response does not match the API's schema", errors.New(findings))
		}
		s.event(r, "validate.response", findings, map[string]string{"upstream_status": strconv.Itoa(buf.status)})
	}
	return buf.flushTo(w)
}

// event reports a finding that did not refuse the request.
func (s *Spec) event(r *http.Request, code, reason string, attrs map[string]string) {
	ev := pipeline.Event{Name: code, Code: code, Reason: reason, Attrs: attrs, Method: r.Method, Host: r.Host, Path: r.URL.EscapedPath()}
	if sc := pipeline.ScopeOf(r.Context()); sc != nil {
		ev.Route, ev.RequestID, ev.ClientIP = sc.RouteID, sc.RequestID, sc.ClientIPText
		if sc.Host != "" {
			ev.Host = sc.Host
		}
	}
	s.events.Emit(ev)
}

// bufferedWriter holds a response until it is validated. Past the limit
// it gives up: what it holds is written out and the rest streams through
// unvalidated (overflow).
type bufferedWriter struct {
	dst      http.ResponseWriter
	header   http.Header
	status   int
	body     bytes.Buffer
	limit    int64
	overflow bool
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.overflow {
		return b.dst.Write(p)
	}
	if int64(b.body.Len()+len(p)) > b.limit {
		b.overflow = true
		if err := b.flushTo(b.dst); err != nil {
			return 0, err
		}
		return b.dst.Write(p)
	}
	return b.body.Write(p)
}

// flushTo writes the held response to w.
func (b *bufferedWriter) flushTo(w http.ResponseWriter) error {
	h := w.Header()
	for k, vs := range b.header {
		h[k] = vs
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, err := w.Write(b.body.Bytes())
	b.body.Reset()
	return err
}
