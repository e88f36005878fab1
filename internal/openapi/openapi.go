// Package openapi validates requests (and optionally responses) against an
// OpenAPI 3.0 or 3.1 document, and refuses operations the document does
// not declare. Validation is done by pb33f/libopenapi-validator; this
// package compiles a spec once, maps its findings to stable decisions and
// keeps internals (spec lines, schema locations) out of client responses.
package openapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	vconfig "github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/pb33f/libopenapi-validator/paths"
	"github.com/pb33f/libopenapi/datamodel"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/rampart-gw/rampart/internal/pipeline"
)

// Options choose what a route enforces with its spec.
type Options struct {
	// Monitor passes undocumented operations and logs them as shadow
	// traffic instead of refusing them.
	Monitor bool
	// Strict reports undeclared properties, query parameters and headers
	// even where the spec would allow them (additionalProperties).
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

// Spec is a compiled OpenAPI document with its validator.
type Spec struct {
	v      validator.Validator
	model  *v3.Document               // for the Allow header of a 405
	vopts  *vconfig.ValidationOptions // the validator's, for path matching
	opts   Options
	events pipeline.Events
}

// Compile parses and checks an OpenAPI 3.0/3.1 document. References to
// other files are resolved under dir (empty: none allowed); remote
// references are never fetched. Errors name the spec's line where the
// parser knows it.
func Compile(data []byte, dir string, o Options) (*Spec, error) {
	dc := datamodel.NewDocumentConfiguration()
	// The parser's findings come back as errors; its own log is silenced.
	dc.Logger = slog.New(slog.DiscardHandler)
	dc.AllowRemoteReferences = false
	if dir != "" {
		dc.AllowFileReferences = true
		dc.BasePath = dir
	}
	doc, err := libopenapi.NewDocumentWithConfiguration(data, dc)
	if err != nil {
		return nil, fmt.Errorf("not an OpenAPI document: %w", err)
	}
	if v := doc.GetSpecInfo().SpecFormat; v != "oas3" && !strings.HasPrefix(doc.GetVersion(), "3.") {
		return nil, fmt.Errorf("OpenAPI version %q: use 3.0 or 3.1", doc.GetVersion())
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("building the model: %w", err)
	}
	opts := []vconfig.Option{
		// Authentication is the gateway's job (authenticate stage); the
		// spec's security requirements are not checked twice.
		vconfig.WithoutSecurityValidation(),
		// A path is matched under the document's server base path only
		// (/api/users with servers: [/api]), never also without it.
		vconfig.WithStrictServerMatching(),
	}
	if o.Strict {
		opts = append(opts, vconfig.WithStrictMode())
	}
	v, errs := validator.NewValidator(doc, opts...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("compiling the validator: %w", errors.Join(errs...))
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		var msgs []string
		for i, e := range verrs {
			if i == 3 {
				msgs = append(msgs, fmt.Sprintf("and %d more", len(verrs)-3))
				break
			}
			msgs = append(msgs, docError(e))
		}
		return nil, fmt.Errorf("invalid OpenAPI document: %s", strings.Join(msgs, "; "))
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 1 << 20
	}
	events := o.Events
	if events == nil {
		events = pipeline.NoEvents{}
	}
	return &Spec{v: v, model: &model.Model, vopts: vconfig.NewValidationOptions(opts...), opts: o, events: events}, nil
}

// docError renders a document finding with its spec location.
func docError(e *verrors.ValidationError) string {
	var b strings.Builder
	if e.SpecLine > 0 {
		fmt.Fprintf(&b, "line %d: ", e.SpecLine)
	}
	b.WriteString(e.Message)
	for i, f := range e.SchemaValidationErrors {
		if i == 2 {
			break
		}
		b.WriteString("; ")
		if f.Line > 0 {
			fmt.Fprintf(&b, "line %d: ", f.Line)
		}
		b.WriteString(f.Reason)
	}
	return b.String()
}

// Middleware returns the route's OpenAPI stage.
func (s *Spec) Middleware() pipeline.Middleware {
	return func(next pipeline.Handler) pipeline.Handler {
		return func(w http.ResponseWriter, r *http.Request) error {
			undocumented, err := s.validateRequest(r)
			if err != nil {
				return err
			}
			// A passed undocumented operation (monitor mode) has no
			// response schema to check against.
			if undocumented || s.opts.Response == "" || s.opts.Response == "off" {
				return next(w, r)
			}
			return s.checkResponse(w, r, next)
		}
	}
}

// checkRequest validates r; it returns the refusal, or nil.
func (s *Spec) checkRequest(r *http.Request) error {
	_, err := s.validateRequest(r)
	return err
}

// validateRequest validates r: the refusal, or nil; undocumented reports
// an undocumented operation passed in monitor mode.
func (s *Spec) validateRequest(r *http.Request) (undocumented bool, _ error) {
	ok, errs := s.v.ValidateHttpRequestSync(r)
	if ok {
		return false, nil
	}
	for _, e := range errs {
		if e.IsPathMissingError() || e.IsOperationMissingError() {
			status, detail := http.StatusNotFound, "the API does not document this path"
			if e.IsOperationMissingError() {
				status, detail = http.StatusMethodNotAllowed, "the API does not document this method on this path"
			}
			if s.opts.Monitor {
				s.event(r, "validate.undocumented", "", map[string]string{"mode": "monitor"})
				return true, nil
			}
			d := pipeline.Deny(status, "validate.undocumented", detail)
			if status == http.StatusMethodNotAllowed {
				if allow := s.allowed(r); allow != "" {
					d.Header = http.Header{"Allow": {allow}} // RFC 9110 §15.5.6
				}
			}
			return false, d
		}
	}
	for _, e := range errs {
		if e.ValidationType == helpers.RequestBodyValidation && e.ValidationSubType == helpers.RequestBodyContentType {
			return false, pipeline.DenyErr(http.StatusUnsupportedMediaType, "validate.content_type", "the API does not accept this content type", e)
		}
	}
	fields := Fields(errs)
	detail := "the request does not match the API's schema"
	if len(fields) > 0 {
		detail = fields[0].Pointer + ": " + fields[0].Detail
	}
	d := pipeline.DenyErr(http.StatusBadRequest, "validate.schema", detail, errors.New(errs[0].Error()))
	d.Fields = fields
	return false, d
}

// allowed lists the methods the document declares on r's path.
func (s *Spec) allowed(r *http.Request) string {
	item, _, _ := paths.FindPath(r, s.model, s.vopts)
	if item == nil {
		return ""
	}
	var m []string
	for _, op := range []struct {
		name string
		op   *v3.Operation
	}{{"GET", item.Get}, {"HEAD", item.Head}, {"POST", item.Post}, {"PUT", item.Put}, {"PATCH", item.Patch},
		{"DELETE", item.Delete}, {"OPTIONS", item.Options}, {"TRACE", item.Trace}} {
		if op.op != nil {
			m = append(m, op.name)
		}
	}
	return strings.Join(m, ", ")
}

// Fields turns validation findings into client-safe field errors: a
// location ("body", "query", "header", "path", "cookie") and JSON pointer,
// and the reason. Spec lines and schema locations stay out.
func Fields(errs []*verrors.ValidationError) []pipeline.Field {
	var out []pipeline.Field
	for _, e := range errs {
		switch {
		case len(e.SchemaValidationErrors) > 0:
			loc := location(e)
			for _, f := range e.SchemaValidationErrors {
				ptr := loc
				if loc == "/body" || loc == "/response" {
					ptr += pointer(f.InstancePath)
				} else if e.ParameterName != "" {
					ptr += "/" + escape(e.ParameterName)
				}
				out = append(out, pipeline.Field{Pointer: ptr, Detail: clip(f.Reason)})
			}
		case e.ParameterName != "":
			out = append(out, pipeline.Field{Pointer: location(e) + "/" + escape(e.ParameterName), Detail: clip(e.Message)})
		default:
			out = append(out, pipeline.Field{Pointer: location(e), Detail: clip(e.Message)})
		}
		if len(out) >= 10 {
			break
		}
	}
	return out
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

func location(e *verrors.ValidationError) string {
	switch e.ValidationType {
	case helpers.RequestBodyValidation:
		return "/body"
	case helpers.ResponseBodyValidation:
		return "/response"
	case helpers.ParameterValidation:
		return "/" + e.ValidationSubType // path, query, header, cookie
	}
	return "/" + e.ValidationType
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
func (s *Spec) checkResponse(w http.ResponseWriter, r *http.Request, next pipeline.Handler) error {
	buf := &bufferedWriter{dst: w, header: http.Header{}, limit: s.opts.MaxResponseBytes}
	if err := next(buf, r); err != nil {
		return err
	}
	if buf.overflow {
		s.event(r, "validate.response", "response larger than max_response_bytes: not validated", map[string]string{"upstream_status": strconv.Itoa(buf.status)})
		return nil
	}
	resp := &http.Response{
		StatusCode: buf.status, Header: buf.header, Request: r,
		Body: io.NopCloser(bytes.NewReader(buf.body.Bytes())), ContentLength: int64(buf.body.Len()),
	}
	ok, errs := s.v.ValidateHttpResponse(r, resp)
	if !ok {
		fields := Fields(errs)
		var ptrs []string
		for _, f := range fields {
			ptrs = append(ptrs, f.Pointer+" "+f.Detail)
		}
		findings := fmt.Sprintf("response %d: %s", buf.status, strings.Join(ptrs, "; "))
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
